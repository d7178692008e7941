"""The parts of ComfyUI's ``comfy.utils`` that node packs use, provided by pyisolate.

``ProgressBar(total).update(n)`` reports ``{value, max, node, prompt_id}`` to the host's
``Progress`` service for the node being executed (with its preview image, encoded, when
``update_absolute`` gets one), and stops the node with
``InterruptProcessingException`` when the host interrupted processing, as in ComfyUI.
Beside it: image resizing (``common_upscale``), batch resizing (``repeat_to_batch_size``,
``resize_to_batch_size``, ``resize_list_to_batch_size``), tiled processing (``tiled_scale``,
``tiled_scale_multidim``, ``get_tiled_scale_steps``) and state dicts (``load_torch_file``,
``save_torch_file``, ``state_dict_prefix_replace``).
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


# --- state dicts and files -------------------------------------------------------------------


def state_dict_prefix_replace(state_dict: dict, replace_prefix: dict, filter_keys: bool = False) -> dict:
    """Renames keys starting with each prefix of ``replace_prefix`` to start with its value instead.

    The renamed entries leave ``state_dict``; they go into a new dict with ``filter_keys`` (which
    then holds only them), else back into ``state_dict`` under their new names (returned too).
    """
    out = {} if filter_keys else state_dict
    for old, new in replace_prefix.items():
        for key in [k for k in state_dict.keys() if k.startswith(old)]:
            out[new + key[len(old):]] = state_dict.pop(key)
    return out


def save_torch_file(sd: dict, ckpt: str, metadata: Optional[dict] = None) -> None:
    """Saves a state dict as ``.safetensors`` (needs the safetensors package)."""
    try:
        import safetensors.torch
    except ImportError as e:
        raise ImportError(f"Saving {ckpt} needs the safetensors package in the pack's dependencies.") from e
    if metadata is not None:
        safetensors.torch.save_file(sd, ckpt, metadata=metadata)
    else:
        safetensors.torch.save_file(sd, ckpt)


# --- batches ---------------------------------------------------------------------------------


def _batch_indices(have: int, want: int) -> list:
    """Which of ``have`` items make a batch of ``want``: spread evenly, first and last kept."""
    import math

    if want < have:
        step = (have - 1) / (want - 1)
        return [min(round(i * step), have - 1) for i in range(want)]
    step = have / want
    return [min(math.floor((i + 0.5) * step), have - 1) for i in range(want)]


def resize_to_batch_size(tensor: Any, batch_size: int) -> Any:
    """``tensor`` with ``batch_size`` items along dim 0, picked evenly from its own (repeating or skipping)."""
    import torch

    have = tensor.shape[0]
    if have == batch_size:
        return tensor
    if batch_size <= 1:
        return tensor[:batch_size]
    out = torch.empty([batch_size] + list(tensor.shape)[1:], dtype=tensor.dtype, device=tensor.device)
    for i, j in enumerate(_batch_indices(have, batch_size)):
        out[i] = tensor[j]
    return out


def resize_list_to_batch_size(items: list, batch_size: int) -> list:
    """The list counterpart of :func:`resize_to_batch_size`."""
    have = len(items)
    if have == batch_size or have == 0:
        return items
    if batch_size <= 1:
        return items[:batch_size]
    return [items[j] for j in _batch_indices(have, batch_size)]


# --- tiled processing ------------------------------------------------------------------------


def get_tiled_scale_steps(width: int, height: int, tile_x: int, tile_y: int, overlap: int) -> int:
    """How many tiles :func:`tiled_scale` processes for one ``width`` × ``height`` sample."""
    import math

    rows = 1 if height <= tile_y else math.ceil((height - overlap) / (tile_y - overlap))
    cols = 1 if width <= tile_x else math.ceil((width - overlap) / (tile_x - overlap))
    return rows * cols


def _per_dim(value: Any, dims: int) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value] * dims


def tiled_scale_multidim(samples: Any, function: Callable[[Any], Any], tile: Any = (64, 64), overlap: Any = 8,
                         upscale_amount: Any = 4, out_channels: int = 3, output_device: Any = "cpu",
                         downscale: bool = False, index_formulas: Any = None, pbar: Any = None) -> Any:
    """Applies ``function`` (a scaler: ``[1, C, *tile]`` → ``[1, out_channels, *scaled]``) tile by tile
    over ``samples`` ``[B, C, *spatial]``, blending overlapping tiles with linear feathering."""
    import itertools

    import torch

    dims = len(tile)
    amounts = _per_dim(upscale_amount, dims)
    overlaps = _per_dim(overlap, dims)
    formulas = _per_dim(amounts if index_formulas is None else index_formulas, dims)

    def scaled(table: list, d: int, v: float) -> float:
        f = table[d]
        return f(v) if callable(f) else (v / f if downscale else f * v)

    size = [round(scaled(amounts, d, samples.shape[d + 2])) for d in range(dims)]
    with torch.inference_mode():
        output = torch.empty([samples.shape[0], out_channels] + size, device=output_device)
        for b in range(samples.shape[0]):
            s = samples[b:b + 1]
            if all(s.shape[d + 2] <= tile[d] for d in range(dims)):
                output[b:b + 1] = function(s).to(output_device)
                if pbar is not None:
                    pbar.update(1)
                continue
            acc = torch.zeros([1, out_channels] + size, device=output_device)
            weight = torch.zeros([1, out_channels] + size, device=output_device)
            starts = [range(0, s.shape[d + 2] - overlaps[d], tile[d] - overlaps[d]) if s.shape[d + 2] > tile[d] else [0]
                      for d in range(dims)]
            for corner in itertools.product(*starts):
                piece, at = s, []
                for d in range(dims):
                    pos = max(0, min(s.shape[d + 2] - overlaps[d], corner[d]))
                    piece = piece.narrow(d + 2, pos, min(tile[d], s.shape[d + 2] - pos))
                    at.append(round(scaled(formulas, d, pos)))
                result = function(piece).to(output_device)
                mask = torch.ones_like(result)
                for d in range(2, dims + 2):
                    feather = round(scaled(amounts, d - 2, overlaps[d - 2]))
                    if feather >= mask.shape[d]:
                        continue
                    for t in range(feather):
                        ramp = (t + 1) / feather
                        mask.narrow(d, t, 1).mul_(ramp)
                        mask.narrow(d, mask.shape[d] - 1 - t, 1).mul_(ramp)
                a, w = acc, weight
                for d in range(dims):
                    a = a.narrow(d + 2, at[d], mask.shape[d + 2])
                    w = w.narrow(d + 2, at[d], mask.shape[d + 2])
                a.add_(result * mask)
                w.add_(mask)
                if pbar is not None:
                    pbar.update(1)
            output[b:b + 1] = acc / weight
    return output


def tiled_scale(samples: Any, function: Callable[[Any], Any], tile_x: int = 64, tile_y: int = 64, overlap: int = 8,
                upscale_amount: float = 4, out_channels: int = 3, output_device: Any = "cpu", pbar: Any = None) -> Any:
    """:func:`tiled_scale_multidim` over the last two dims (``[B, C, H, W]``), tiles ``tile_y`` × ``tile_x``."""
    return tiled_scale_multidim(samples, function, (tile_y, tile_x), overlap=overlap, upscale_amount=upscale_amount,
                                out_channels=out_channels, output_device=output_device, pbar=pbar)
