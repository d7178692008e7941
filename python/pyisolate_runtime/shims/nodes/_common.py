"""What the built-in node classes share."""
from __future__ import annotations

MAX_RESOLUTION = 16384


def needs_comfyui(what: str) -> NotImplementedError:
    return NotImplementedError(
        f"{what} runs ComfyUI's own model code, which pyisolate's shims do not provide; run with a ComfyUI checkout "
        "(--comfyui DIR or PYISOLATE_COMFYUI) so that ComfyUI's real nodes module is used.")
