"""The parts of ComfyUI's ``comfy.utils`` that node packs use, provided by pyisolate.

``ProgressBar(total).update(n)`` reports ``{value, max, node, prompt_id}`` to the host's
``Progress`` service for the node being executed (with its preview image, encoded, when
``update_absolute`` gets one), and stops the node with
``InterruptProcessingException`` when the host interrupted processing, as in ComfyUI.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from pyisolate_runtime.nodes import comfy_bridge

PROGRESS_BAR_ENABLED = True


def _host_progress_hook(value: float, total: float, preview: Any, prompt_id: Optional[str] = None,
                        node_id: Optional[str] = None) -> None:
    from comfy import model_management

    model_management.throw_exception_if_processing_interrupted()
    from pyisolate_runtime.web.previews import encode_preview

    comfy_bridge.send_progress(value, total, node_id=node_id, prompt_id=prompt_id, preview=encode_preview(preview))


PROGRESS_BAR_HOOK: Optional[Callable[..., Any]] = _host_progress_hook
"""Called by every ProgressBar update as ``hook(value, total, preview, node_id=...)``."""


def set_progress_bar_enabled(enabled: bool) -> None:
    global PROGRESS_BAR_ENABLED
    PROGRESS_BAR_ENABLED = enabled


def set_progress_bar_global_hook(function: Optional[Callable[..., Any]]) -> None:
    """Replaces the hook new ProgressBars call (None: no reports)."""
    global PROGRESS_BAR_HOOK
    PROGRESS_BAR_HOOK = function


class ProgressBar:
    """A node's progress: ``update(1)`` per step, or ``update_absolute(value, total)``."""

    def __init__(self, total: float, node_id: Optional[str] = None):
        self.total = total
        self.current = 0
        self.hook = PROGRESS_BAR_HOOK
        self.node_id = node_id

    def update_absolute(self, value: float, total: Optional[float] = None, preview: Any = None) -> None:
        if total is not None:
            self.total = total
        if value > self.total:
            value = self.total
        self.current = value
        if self.hook is not None:
            self.hook(self.current, self.total, preview, node_id=self.node_id)

    def update(self, value: float) -> None:
        self.update_absolute(self.current + value)


def _center_crop(samples: Any, width: int, height: int) -> Any:
    old_w, old_h = samples.shape[-1], samples.shape[-2]
    old_aspect = old_w / old_h
    new_aspect = width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    return samples.narrow(-2, y, old_h - y * 2).narrow(-1, x, old_w - x * 2)


def common_upscale(samples: Any, width: int, height: int, upscale_method: str, crop: str) -> Any:
    """Resizes ``[B, C, H, W]`` samples to ``width`` × ``height`` (``crop="center"`` keeps the aspect)."""
    import torch.nn.functional as F

    s = _center_crop(samples, width, height) if crop == "center" else samples
    modes = {"nearest-exact": "nearest-exact", "bilinear": "bilinear", "area": "area", "bicubic": "bicubic"}
    mode = modes.get(upscale_method)
    if mode is None:
        raise ValueError(f"Upscale method {upscale_method!r} is not available here; use one of {sorted(modes)}.")
    return F.interpolate(s, size=(height, width), mode=mode)


def repeat_to_batch_size(tensor: Any, batch_size: int, dim: int = 0) -> Any:
    """Repeats (or cuts) ``tensor`` along ``dim`` to ``batch_size`` items."""
    if tensor.shape[dim] > batch_size:
        return tensor.narrow(dim, 0, batch_size)
    if tensor.shape[dim] < batch_size:
        reps = [1] * tensor.ndim
        reps[dim] = -(-batch_size // tensor.shape[dim])
        return tensor.repeat(*reps).narrow(dim, 0, batch_size)
    return tensor


def load_torch_file(ckpt: str, safe_load: bool = False, device: Any = None, return_metadata: bool = False) -> Any:
    """Loads a state dict from ``.safetensors``/``.sft`` (needs the safetensors package) or a torch pickle."""
    import torch

    if device is None:
        device = torch.device("cpu")
    metadata = None
    if ckpt.lower().endswith((".safetensors", ".sft")):
        try:
            import safetensors
            import safetensors.torch
        except ImportError as e:
            raise ImportError(f"Loading {ckpt} needs the safetensors package in the pack's dependencies.") from e
        with safetensors.safe_open(ckpt, framework="pt", device=str(device)) as f:
            sd = {k: f.get_tensor(k) for k in f.keys()}
            metadata = f.metadata() if return_metadata else None
    else:
        loaded = torch.load(ckpt, map_location=device, weights_only=True)
        sd = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded
    return (sd, metadata) if return_metadata else sd
