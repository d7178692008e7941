"""``comfy_api.v0_0_2``: the same API as ``comfy_api.latest`` in this runtime."""
from comfy_api.latest import *  # noqa: F401,F403
from comfy_api.latest import ComfyAPI, ComfyAPISync, ComfyExtension, IO, UI, io, ui  # noqa: F401
