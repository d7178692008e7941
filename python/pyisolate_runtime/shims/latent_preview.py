"""ComfyUI's ``latent_preview`` for packs run by pyisolate without a ComfyUI checkout.

Sampling code asks for a previewer and a step callback. Here there is no preview to send
(decoding latents to images needs ComfyUI's latent formats and TAESD models): the previewer
returns nothing, and the callback only advances the node's progress bar — which also
stops the node when the host interrupts it.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

__all__ = ["MAX_PREVIEW_RESOLUTION", "LatentPreviewer", "get_previewer", "prepare_callback", "set_preview_method"]

MAX_PREVIEW_RESOLUTION = 512


class LatentPreviewer:
    """What sampling code asks for previews: here it has none to give."""

    def decode_latent_to_preview(self, x0: Any) -> Any:
        return None

    def decode_latent_to_preview_image(self, preview_format: str, x0: Any) -> Any:
        return None


def get_previewer(device: Any, latent_format: Any) -> Optional[LatentPreviewer]:
    """No previewer: previews are not sent from this process."""
    return None


def prepare_callback(model: Any, steps: int, x0_output_dict: Optional[dict] = None) -> Callable[..., None]:
    """A sampler step callback that updates the node's progress (``step + 1`` of ``steps``)."""
    from comfy.utils import ProgressBar

    bar = ProgressBar(steps)

    def callback(step: int, x0: Any, x: Any, total_steps: int) -> None:
        if x0_output_dict is not None:
            x0_output_dict["x0"] = x0
        bar.update_absolute(step + 1, total_steps, None)

    return callback


def set_preview_method(override: Optional[str] = None) -> None:
    """Accepted and ignored: no previews are sent from this process."""
