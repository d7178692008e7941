"""``comfy_api.input``: the same names as ``comfy_api.latest._input``."""
from comfy_api.latest._input import ImageInput, AudioInput, MaskInput, LatentInput, VideoInput  # noqa: F401

__all__ = ["ImageInput", "AudioInput", "MaskInput", "LatentInput", "VideoInput"]
