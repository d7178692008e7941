"""``comfy_api.latest._input_impl`` (also ``comfy_api.input_impl`` and ``InputImpl``): video inputs.

Decoding and encoding use PyAV (the ``av`` package of a ComfyUI environment), imported when
first needed.
"""
from __future__ import annotations

import io
from fractions import Fraction
from typing import Any, Optional, Union

from ._input import VideoInput
from ._util import VideoComponents

__all__ = ["VideoFromFile", "VideoFromComponents"]


def _av() -> Any:
    try:
        import av
    except ImportError as e:
        raise ImportError("Videos need the av package (PyAV): add it to the pack's dependencies or the host environment.") from e
    return av


class VideoFromFile(VideoInput):
    """A video in a file (path) or in memory (``BytesIO``)."""

    def __init__(self, file: Union[str, io.BytesIO]) -> None:
        self._file = file

    def get_stream_source(self) -> Union[str, io.BytesIO]:
        if isinstance(self._file, io.BytesIO):
            self._file.seek(0)
        return self._file

    def _open(self) -> Any:
        return _av().open(self.get_stream_source(), mode="r")

    def get_dimensions(self) -> "tuple[int, int]":
        with self._open() as c:
            stream = c.streams.video[0]
            return int(stream.width), int(stream.height)

    def get_frame_rate(self) -> Fraction:
        with self._open() as c:
            rate = c.streams.video[0].average_rate
            return Fraction(rate) if rate else Fraction(1)

    def get_frame_count(self) -> int:
        with self._open() as c:
            stream = c.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            return sum(1 for _ in c.decode(stream))

    def get_container_format(self) -> str:
        with self._open() as c:
            return str(c.format.name)

    def get_components(self) -> VideoComponents:
        import numpy as np
        import torch

        with self._open() as c:
            stream = c.streams.video[0]
            frames = [torch.from_numpy(np.asarray(f.to_ndarray(format="rgb24"), dtype=np.float32) / 255.0) for f in c.decode(stream)]
            rate = Fraction(stream.average_rate) if stream.average_rate else Fraction(1)
        images = torch.stack(frames) if frames else torch.zeros((0, 0, 0, 3))
        return VideoComponents(images=images, frame_rate=rate)

    def save_to(self, path: str, format: Any = "auto", codec: Any = "auto", metadata: Optional[dict] = None) -> None:
        if metadata is None and str(format) in ("auto", "mp4") and str(codec) in ("auto", "h264"):
            source = self.get_stream_source()
            data = source.getvalue() if isinstance(source, io.BytesIO) else open(source, "rb").read()
            with open(path, "wb") as f:
                f.write(data)
            return
        VideoFromComponents(self.get_components()).save_to(path, format, codec, metadata)


class VideoFromComponents(VideoInput):
    """A video made of tensors (``VideoComponents``)."""

    def __init__(self, components: VideoComponents) -> None:
        self._components = components

    def get_components(self) -> VideoComponents:
        return self._components

    def save_to(self, path: str, format: Any = "auto", codec: Any = "auto", metadata: Optional[dict] = None) -> None:
        import numpy as np

        av = _av()
        comp = self._components
        with av.open(path, mode="w", format="mp4") as out:
            for key, value in (metadata or {}).items():
                out.metadata[str(key)] = value if isinstance(value, str) else __import__("json").dumps(value)
            stream = out.add_stream("h264", rate=Fraction(comp.frame_rate))
            stream.width, stream.height = int(comp.images.shape[2]), int(comp.images.shape[1])
            stream.pix_fmt = "yuv420p"
            for frame in comp.images:
                rgb = (frame.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb[..., :3], format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
