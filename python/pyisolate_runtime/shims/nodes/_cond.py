"""ComfyUI's built-in conditioning and VAE/CLIP nodes (V1 classes).

They work on whatever CLIP or VAE object they are given (``clip.tokenize``,
``vae.decode``, …); CONDITIONING is ComfyUI's ``[[tensor, {options}], …]``.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from ._common import MAX_RESOLUTION


def _set(conditioning: list, values: dict, append: bool = False) -> list:
    import node_helpers

    return node_helpers.conditioning_set_values(conditioning, values, append)


class CLIPTextEncode:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"text": ("STRING", {"multiline": True, "dynamicPrompts": True}), "clip": ("CLIP",)}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"
    CATEGORY = "conditioning"

    def encode(self, clip: Any, text: str) -> Tuple[list]:
        if clip is None:
            raise RuntimeError("ERROR: clip input is invalid: None\n\nIf the clip is from a checkpoint loader node your checkpoint does not contain a valid clip or text encoder model.")
        return (clip.encode_from_tokens_scheduled(clip.tokenize(text)),)


class ConditioningCombine:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"conditioning_1": ("CONDITIONING",), "conditioning_2": ("CONDITIONING",)}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "combine"
    CATEGORY = "conditioning"

    def combine(self, conditioning_1: list, conditioning_2: list) -> Tuple[list]:
        return (conditioning_1 + conditioning_2,)


class ConditioningConcat:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"conditioning_to": ("CONDITIONING",), "conditioning_from": ("CONDITIONING",)}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "concat"
    CATEGORY = "advanced/conditioning"

    def concat(self, conditioning_to: list, conditioning_from: list) -> Tuple[list]:
        import torch

        source = conditioning_from[0][0]
        return ([[torch.cat((t, source), 1), dict(o)] for t, o in conditioning_to],)


class ConditioningAverage:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"conditioning_to": ("CONDITIONING",), "conditioning_from": ("CONDITIONING",),
                             "conditioning_to_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "addWeighted"
    CATEGORY = "conditioning"

    def addWeighted(self, conditioning_to: list, conditioning_from: list, conditioning_to_strength: float) -> Tuple[list]:
        import torch

        source, source_pooled = conditioning_from[0][0], conditioning_from[0][1].get("pooled_output")
        out = []
        for t, options in conditioning_to:
            src = source[:, :t.shape[1]]
            if src.shape[1] < t.shape[1]:
                src = torch.cat([src, torch.zeros((1, t.shape[1] - src.shape[1], t.shape[2]))], dim=1)
            o = dict(options)
            pooled = o.get("pooled_output")
            if pooled is not None and source_pooled is not None:
                o["pooled_output"] = torch.mul(pooled, conditioning_to_strength) + torch.mul(source_pooled, 1.0 - conditioning_to_strength)
            elif source_pooled is not None:
                o["pooled_output"] = source_pooled
            out.append([torch.mul(t, conditioning_to_strength) + torch.mul(src, 1.0 - conditioning_to_strength), o])
        return (out,)


class ConditioningZeroOut:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"conditioning": ("CONDITIONING",)}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "zero_out"
    CATEGORY = "advanced/conditioning"

    def zero_out(self, conditioning: list) -> Tuple[list]:
        import torch

        out = []
        for t, options in conditioning:
            o = dict(options)
            for key in ("pooled_output", "lyrics_strength"):
                if o.get(key) is not None:
                    o[key] = torch.zeros_like(o[key]) if key == "pooled_output" else 0.0
            out.append([torch.zeros_like(t), o])
        return (out,)


class ConditioningSetTimestepRange:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        pct = {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}
        return {"required": {"conditioning": ("CONDITIONING",), "start": ("FLOAT", pct), "end": ("FLOAT", {**pct, "default": 1.0})}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "set_range"
    CATEGORY = "advanced/conditioning"

    def set_range(self, conditioning: list, start: float, end: float) -> Tuple[list]:
        return (_set(conditioning, {"start_percent": start, "end_percent": end}),)


class ConditioningSetArea:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        size = {"default": 64, "min": 64, "max": MAX_RESOLUTION, "step": 8}
        pos = {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 8}
        return {"required": {"conditioning": ("CONDITIONING",), "width": ("INT", size), "height": ("INT", size),
                             "x": ("INT", pos), "y": ("INT", pos),
                             "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01})}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "append"
    CATEGORY = "conditioning"

    def append(self, conditioning: list, width: int, height: int, x: int, y: int, strength: float) -> Tuple[list]:
        return (_set(conditioning, {"area": (height // 8, width // 8, y // 8, x // 8), "strength": strength, "set_area_to_bounds": False}),)


class ConditioningSetMask:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"conditioning": ("CONDITIONING",), "mask": ("MASK",),
                             "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}),
                             "set_cond_area": (["default", "mask bounds"],)}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "append"
    CATEGORY = "conditioning"

    def append(self, conditioning: list, mask: Any, set_cond_area: str, strength: float) -> Tuple[list]:
        if len(mask.shape) < 3:
            mask = mask.unsqueeze(0)
        return (_set(conditioning, {"mask": mask, "set_area_to_bounds": set_cond_area != "default", "mask_strength": strength}),)


class VAEDecode:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"samples": ("LATENT",), "vae": ("VAE",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"
    CATEGORY = "latent"

    def decode(self, vae: Any, samples: dict) -> Tuple[Any]:
        images = vae.decode(samples["samples"])
        if len(images.shape) == 5:  # video: frames into the batch
            images = images.reshape(-1, images.shape[-3], images.shape[-2], images.shape[-1])
        return (images,)


class VAEEncode:
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"pixels": ("IMAGE",), "vae": ("VAE",)}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "encode"
    CATEGORY = "latent"

    def encode(self, vae: Any, pixels: Any) -> Tuple[dict]:
        return ({"samples": vae.encode(pixels[:, :, :, :3])},)
