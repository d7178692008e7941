"""A PNG and WAV writer with the standard library only (numpy or torch for the pixel math).

ComfyUI saves previews with Pillow; a pack's environment may not have it, so the ``ui``
helpers write their files here.
"""
from __future__ import annotations

import struct
import wave
import zlib
from typing import Any, Optional


def _to_uint8_hwc(image: Any) -> Any:
    """A ``[H, W, C]`` float image in 0..1 (torch tensor or numpy array) as a uint8 numpy-like array."""
    try:
        import numpy as np
    except ImportError:  # torch alone
        np = None
    if hasattr(image, "detach"):
        image = image.detach().cpu()
        if np is not None:
            image = image.float().numpy()
        else:
            return (image.float() * 255.0).clamp(0, 255).to(dtype=__import__("torch").uint8)
    if np is None:
        raise ImportError("Writing a preview needs numpy or torch in the pack's environment.")
    return np.clip(np.asarray(image, dtype="float32") * 255.0, 0, 255).astype("uint8")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: Any, text: Optional[dict] = None, compress_level: int = 4) -> bytes:
    """PNG bytes of one ``[H, W, C]`` (C = 1, 3 or 4) or ``[H, W]`` float image in 0..1."""
    pixels = _to_uint8_hwc(image)
    shape = tuple(pixels.shape)
    if len(shape) == 2:
        shape = (shape[0], shape[1], 1)
        pixels = pixels.reshape(shape)
    height, width, channels = shape
    color = {1: 0, 2: 4, 3: 2, 4: 6}.get(channels)
    if color is None:
        raise ValueError(f"Cannot write an image with {channels} channels as PNG; expected 1, 2, 3 or 4.")
    raw = bytes(pixels.reshape(height, width * channels).tobytes()) if hasattr(pixels, "tobytes") else bytes(pixels.numpy().tobytes())
    stride = width * channels
    rows = b"".join(b"\x00" + raw[y * stride:(y + 1) * stride] for y in range(height))
    out = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0))]
    for key, value in (text or {}).items():
        out.append(_chunk(b"tEXt", key.encode("latin-1", "replace") + b"\x00" + value.encode("latin-1", "replace")))
    out.append(_chunk(b"IDAT", zlib.compress(rows, compress_level)))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def write_wav(path: str, waveform: Any, sample_rate: int) -> None:
    """Writes a ``[channels, samples]`` float waveform in -1..1 as 16-bit PCM WAV."""
    if hasattr(waveform, "detach"):
        waveform = waveform.detach().cpu().float().numpy()
    import numpy as np

    data = np.clip(np.asarray(waveform, dtype="float32"), -1.0, 1.0)
    if data.ndim == 1:
        data = data[None, :]
    pcm = (data.T * 32767.0).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(data.shape[0])
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
