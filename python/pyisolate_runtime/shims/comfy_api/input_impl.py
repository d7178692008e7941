"""``comfy_api.input_impl``: the same names as ``comfy_api.latest._input_impl``."""
from comfy_api.latest._input_impl import VideoFromFile, VideoFromComponents  # noqa: F401

__all__ = ["VideoFromFile", "VideoFromComponents"]
