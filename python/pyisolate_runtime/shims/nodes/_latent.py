"""ComfyUI's built-in latent nodes (V1 classes), for packs that subclass or call them."""
from __future__ import annotations

from typing import Any, Dict, Tuple

from ._common import MAX_RESOLUTION

UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]


class EmptyLatentImage:
    """Zeros ``[batch, 4, height/8, width/8]`` (SD-style latents) on ComfyUI's intermediate device."""

    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        size = {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}
        return {"required": {"width": ("INT", size), "height": ("INT", size),
                             "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096})}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"
    CATEGORY = "latent"

    def generate(self, width: int, height: int, batch_size: int = 1) -> Tuple[dict]:
        import torch
        from comfy import model_management

        device = model_management.intermediate_device() if hasattr(model_management, "intermediate_device") else "cpu"
        return ({"samples": torch.zeros([batch_size, 4, height // 8, width // 8], device=device)},)


def _upscale(samples: dict, method: str, width: int, height: int, crop: str) -> dict:
    import comfy.utils

    out = dict(samples)
    out["samples"] = comfy.utils.common_upscale(samples["samples"], width, height, method, crop)
    return out


class LatentUpscale:
    upscale_methods = UPSCALE_METHODS
    crop_methods = ["disabled", "center"]

    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        size = {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 8}
        return {"required": {"samples": ("LATENT",), "upscale_method": (cls.upscale_methods,), "width": ("INT", size),
                             "height": ("INT", size), "crop": (cls.crop_methods,)}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "upscale"
    CATEGORY = "latent"

    def upscale(self, samples: dict, upscale_method: str, width: int, height: int, crop: str) -> Tuple[dict]:
        if width == 0 and height == 0:
            return (samples,)
        h, w = samples["samples"].shape[-2], samples["samples"].shape[-1]
        if width == 0:  # keep the aspect ratio from the height
            height = max(64, height)
            width = max(64, round(w * height / h))
        elif height == 0:
            width = max(64, width)
            height = max(64, round(h * width / w))
        else:
            width, height = max(64, width), max(64, height)
        return (_upscale(samples, upscale_method, width // 8, height // 8, crop),)


class LatentUpscaleBy:
    upscale_methods = UPSCALE_METHODS

    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"samples": ("LATENT",), "upscale_method": (cls.upscale_methods,),
                             "scale_by": ("FLOAT", {"default": 1.5, "min": 0.01, "max": 8.0, "step": 0.01})}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "upscale"
    CATEGORY = "latent"

    def upscale(self, samples: dict, upscale_method: str, scale_by: float) -> Tuple[dict]:
        s = samples["samples"]
        return (_upscale(samples, upscale_method, round(s.shape[-1] * scale_by), round(s.shape[-2] * scale_by), "disabled"),)


class LatentFromBatch:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"samples": ("LATENT",), "batch_index": ("INT", {"default": 0, "min": 0, "max": 63}),
                             "length": ("INT", {"default": 1, "min": 1, "max": 64})}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "frombatch"
    CATEGORY = "latent/batch"

    def frombatch(self, samples: dict, batch_index: int, length: int) -> Tuple[dict]:
        out = dict(samples)
        s = samples["samples"]
        batch_index = min(s.shape[0] - 1, batch_index)
        length = min(s.shape[0] - batch_index, length)
        out["samples"] = s[batch_index:batch_index + length].clone()
        mask = samples.get("noise_mask")
        if mask is not None:
            out["noise_mask"] = mask[batch_index:batch_index + length].clone() if mask.shape[0] > 1 else mask.clone()
        indices = samples.get("batch_index") or list(range(s.shape[0]))
        out["batch_index"] = indices[batch_index:batch_index + length]
        return (out,)
