"""``comfy_api.latest._input`` (also ``comfy_api.input`` and ``Input``): the types of node input values."""
from __future__ import annotations

import abc
from fractions import Fraction
from typing import Any, Optional, TypedDict, Union

from ._util import VideoComponents

__all__ = ["ImageInput", "AudioInput", "MaskInput", "LatentInput", "VideoInput"]

ImageInput = Any
"""A ``torch.Tensor`` ``[B, H, W, C]`` (float, 0..1)."""

MaskInput = Any
"""A ``torch.Tensor`` ``[B, H, W]``."""


class AudioInput(TypedDict):
    waveform: Any
    """``[B, C, T]``."""
    sample_rate: int


class LatentInput(TypedDict, total=False):
    samples: Any
    """``[B, C, H, W]``."""
    noise_mask: Optional[Any]
    batch_index: Optional[list]


class VideoInput(abc.ABC):
    """A video: implementations (``InputImpl.VideoFromFile``, ``VideoFromComponents``) say how it is stored."""

    @abc.abstractmethod
    def get_components(self) -> VideoComponents:
        """The frames (and audio) as tensors."""

    @abc.abstractmethod
    def save_to(self, path: str, format: Any = "auto", codec: Any = "auto", metadata: Optional[dict] = None) -> None:
        """Writes the video to ``path``."""

    def get_stream_source(self) -> Union[str, Any]:
        """A path or a ``BytesIO`` holding the encoded video (by default: encoded now)."""
        import io
        import os
        import tempfile

        fd, path = tempfile.mkstemp(suffix=".mp4")
        os.close(fd)
        try:
            self.save_to(path)
            with open(path, "rb") as f:
                return io.BytesIO(f.read())
        finally:
            os.unlink(path)

    def get_dimensions(self) -> "tuple[int, int]":
        """``(width, height)``."""
        images = self.get_components().images
        return int(images.shape[2]), int(images.shape[1])

    def get_frame_count(self) -> int:
        return int(self.get_components().images.shape[0])

    def get_frame_rate(self) -> Fraction:
        return Fraction(self.get_components().frame_rate)

    def get_duration(self) -> float:
        """Seconds."""
        return float(self.get_frame_count() / self.get_frame_rate())

    def get_container_format(self) -> str:
        return "mp4"
