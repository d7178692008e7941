"""ComfyUI's ``node_helpers`` for packs run by pyisolate without a ComfyUI checkout.

Small helpers node packs call: copy CONDITIONING entries with new values, open images with
PIL leniently, the configured file hasher, dtype names, and alpha-channel alignment.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["conditioning_set_values", "pillow", "hasher", "string_to_torch_dtype", "image_alpha_fix"]


def conditioning_set_values(conditioning: List[Any], values: Optional[Dict[str, Any]] = None, append: bool = False) -> List[list]:
    """A copy of ``conditioning`` (``[[tensor, dict], …]``) with ``values`` set in each entry's dict.

    With ``append``, a value is added to the one already there (``old + new``) when there is one.
    The tensors are shared, the dicts are new.
    """
    out: List[list] = []
    for tensor, options in conditioning:
        updated = dict(options)
        for key, value in (values or {}).items():
            if append and updated.get(key) is not None:
                value = updated[key] + value
            updated[key] = value
        out.append([tensor, updated])
    return out


def pillow(fn: Callable[[Any], Any], arg: Any) -> Any:
    """``fn(arg)`` (a PIL call); on a truncated or odd image file, retried with truncated images allowed."""
    from PIL import ImageFile, UnidentifiedImageError

    try:
        return fn(arg)
    except (OSError, UnidentifiedImageError, ValueError):
        before = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            return fn(arg)
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = before


def hasher() -> Callable[..., Any]:
    """The hash constructor ComfyUI uses for files (its default, sha256)."""
    return hashlib.sha256


def string_to_torch_dtype(string: str) -> Any:
    """``"fp32"`` / ``"fp16"`` / ``"bf16"`` → the torch dtype (None for anything else)."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}.get(string)


def image_alpha_fix(destination: Any, source: Any) -> Tuple[Any, Any]:
    """Makes two ``[..., C]`` images agree on channels: ``source`` loses its extra ones, or
    ``destination`` gains an opaque alpha channel."""
    import torch

    d, s = destination.shape[-1], source.shape[-1]
    if d < s:
        source = source[..., :d]
    elif d > s:
        destination = torch.nn.functional.pad(destination, (0, 1))
        destination[..., -1] = 1.0
    return destination, source
