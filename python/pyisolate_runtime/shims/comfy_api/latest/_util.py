"""``comfy_api.latest._util`` (also ``comfy_api.util`` and ``Types``): the video, 3D and SVG value types."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from io import BytesIO
from typing import Any, List, Optional

__all__ = ["VideoContainer", "VideoCodec", "VideoComponents", "VOXEL", "MESH", "SVG"]


class VideoCodec(str, Enum):
    AUTO = "auto"
    H264 = "h264"

    @classmethod
    def as_input(cls) -> List[str]:
        """The codec names, as a combo input offers them."""
        return [m.value for m in cls]


class VideoContainer(str, Enum):
    AUTO = "auto"
    MP4 = "mp4"

    @classmethod
    def as_input(cls) -> List[str]:
        """The container names, as a combo input offers them."""
        return [m.value for m in cls]

    @classmethod
    def get_extension(cls, value: Any) -> str:
        """The file extension of a container (``"mp4"`` for ``auto`` too)."""
        return "mp4" if cls(value) in (cls.MP4, cls.AUTO) else ""


@dataclass
class VideoComponents:
    """A video as tensors: ``images`` ``[T, H, W, C]``, its frame rate, and optional audio and metadata."""

    images: Any
    frame_rate: Fraction
    audio: Optional[dict] = None
    metadata: Optional[dict] = None


class VOXEL:
    """A voxel grid (``data``: a tensor)."""

    def __init__(self, data: Any) -> None:
        self.data = data


class MESH:
    """A triangle mesh: ``vertices`` and ``faces`` tensors."""

    def __init__(self, vertices: Any, faces: Any) -> None:
        self.vertices = vertices
        self.faces = faces


class SVG:
    """SVG documents, one ``BytesIO`` each."""

    def __init__(self, data: List[BytesIO]) -> None:
        self.data = data

    def combine(self, other: "SVG") -> "SVG":
        return SVG(self.data + other.data)

    @staticmethod
    def combine_all(svgs: List["SVG"]) -> "SVG":
        return SVG([d for s in svgs for d in s.data])
