"""``comfy_api.util``: the same names as ``comfy_api.latest._util``."""
from comfy_api.latest._util import VideoContainer, VideoCodec, VideoComponents, VOXEL, MESH, SVG  # noqa: F401

__all__ = ["VideoContainer", "VideoCodec", "VideoComponents", "VOXEL", "MESH", "SVG"]
