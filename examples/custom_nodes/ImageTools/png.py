"""A small PNG reader and writer with the standard library only (``zlib``, ``struct``).

Reads 8-bit, non-interlaced PNGs of every colour type (grey, grey+alpha, RGB, RGBA,
palette) with all five row filters; writes 8-bit grey, RGB or RGBA with ``tEXt`` chunks,
as ComfyUI's SaveImage stores the prompt and workflow. Pixels are plain ``bytes``, row by
row, ``channels`` bytes per pixel, so the module needs neither Pillow nor numpy.
"""
from __future__ import annotations

import struct
import zlib
from typing import NamedTuple, Optional

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class Decoded(NamedTuple):
    """A decoded image: ``pixels`` holds ``height * width * channels`` bytes."""

    width: int
    height: int
    channels: int
    pixels: bytes
    text: dict


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> bytearray:
    out = bytearray(height * stride)
    prev = bytearray(stride)
    pos = 0
    for y in range(height):
        kind = raw[pos]
        row = bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:  # Up
            row = bytearray((a + b) & 0xFF for a, b in zip(row, prev))
        elif kind == 3:  # Average
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                upleft = prev[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + _paeth(left, prev[i], upleft)) & 0xFF
        elif kind != 0:
            raise ValueError(f"PNG row {y} has unknown filter type {kind}; the file is damaged.")
        out[y * stride : (y + 1) * stride] = row
        prev = row
    return out


def decode_png(data: bytes) -> Decoded:
    """Decodes PNG bytes. Raises ``ValueError`` for damaged files and for what this reader
    does not handle (bit depths other than 8, interlacing)."""
    if data[:8] != SIGNATURE:
        raise ValueError("Not a PNG file: the signature is missing.")
    pos = 8
    header: Optional[tuple] = None
    palette = b""
    transparency = b""
    idat = []
    text: dict = {}
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"tRNS":
            transparency = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"tEXt" and b"\x00" in body:
            key, value = body.split(b"\x00", 1)
            text[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("PNG file has no IHDR chunk.")
    width, height, depth, color, _compression, _filter, interlace = header
    if depth != 8 or color not in _CHANNELS:
        raise ValueError(f"Only 8-bit PNGs can be read here (this one: bit depth {depth}, colour type {color}).")
    if interlace:
        raise ValueError("Interlaced PNGs cannot be read here; save the image without interlacing.")
    channels = _CHANNELS[color]
    stride = width * channels
    raw = zlib.decompress(b"".join(idat))
    if len(raw) < height * (stride + 1):
        raise ValueError(f"PNG image data is truncated ({len(raw)} bytes for {width}x{height}).")
    pixels = bytes(_unfilter(raw, height, stride, channels))
    if color == 3:  # palette: expand to RGB, or RGBA when tRNS gives alphas
        alpha = len(transparency) > 0
        out = bytearray()
        for index in pixels:
            out += palette[index * 3 : index * 3 + 3]
            if alpha:
                out.append(transparency[index] if index < len(transparency) else 255)
        return Decoded(width, height, 4 if alpha else 3, bytes(out), text)
    return Decoded(width, height, channels, pixels, text)


def read_png(path: str) -> Decoded:
    """Decodes the PNG file at ``path``."""
    with open(path, "rb") as f:
        return decode_png(f.read())


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def encode_png(width: int, height: int, channels: int, pixels: bytes, text: Optional[dict] = None, level: int = 4) -> bytes:
    """PNG bytes of ``height * width * channels`` 8-bit samples (channels 1, 3 or 4), each
    row unfiltered; ``text`` entries become ``tEXt`` chunks."""
    color = {1: 0, 3: 2, 4: 6}.get(channels)
    if color is None:
        raise ValueError(f"Cannot write {channels} channels as PNG; expected 1, 3 or 4.")
    stride = width * channels
    if len(pixels) != height * stride:
        raise ValueError(f"Expected {height * stride} bytes for a {width}x{height}x{channels} image, got {len(pixels)}.")
    rows = b"".join(b"\x00" + pixels[y * stride : (y + 1) * stride] for y in range(height))
    parts = [SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0))]
    for key, value in (text or {}).items():
        parts.append(_chunk(b"tEXt", key.encode("latin-1", "replace") + b"\x00" + value.encode("latin-1", "replace")))
    parts.append(_chunk(b"IDAT", zlib.compress(rows, level)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def write_png(path: str, width: int, height: int, channels: int, pixels: bytes, text: Optional[dict] = None) -> None:
    """Writes :func:`encode_png`'s bytes to ``path``."""
    with open(path, "wb") as f:
        f.write(encode_png(width, height, channels, pixels, text))
