"""ComfyUI's loader and sampler nodes: importable (packs name and subclass them), but running
them needs ComfyUI's model code, so each says to pass ``--comfyui DIR``."""
from __future__ import annotations

from typing import Any, Dict

from ._common import needs_comfyui


def _files(folder: str) -> list:
    import folder_paths

    try:
        return folder_paths.get_filename_list(folder)
    except Exception:
        return []


class _NeedsComfyUI:
    RETURN_TYPES: tuple = ()
    FUNCTION = "run"

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise needs_comfyui(f"nodes.{type(self).__name__}")


class CheckpointLoaderSimple(_NeedsComfyUI):
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"ckpt_name": (_files("checkpoints"),)}}

    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    FUNCTION = "load_checkpoint"
    CATEGORY = "loaders"
    load_checkpoint = _NeedsComfyUI.run


class LoraLoader(_NeedsComfyUI):
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        strength = {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}
        return {"required": {"model": ("MODEL",), "clip": ("CLIP",), "lora_name": (_files("loras"),),
                             "strength_model": ("FLOAT", strength), "strength_clip": ("FLOAT", strength)}}

    RETURN_TYPES = ("MODEL", "CLIP")
    FUNCTION = "load_lora"
    CATEGORY = "loaders"
    load_lora = _NeedsComfyUI.run


class VAELoader(_NeedsComfyUI):
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"vae_name": (_files("vae"),)}}

    RETURN_TYPES = ("VAE",)
    FUNCTION = "load_vae"
    CATEGORY = "loaders"
    load_vae = _NeedsComfyUI.run


class CLIPLoader(_NeedsComfyUI):
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"clip_name": (_files("text_encoders"),), "type": (["stable_diffusion"],)}}

    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load_clip"
    CATEGORY = "advanced/loaders"
    load_clip = _NeedsComfyUI.run


class UNETLoader(_NeedsComfyUI):
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {"unet_name": (_files("diffusion_models"),), "weight_dtype": (["default"],)}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load_unet"
    CATEGORY = "advanced/loaders"
    load_unet = _NeedsComfyUI.run


def _sampler_inputs() -> Dict[str, Any]:
    import comfy.samplers

    return {"model": ("MODEL",), "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True}),
            "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
            "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
            "sampler_name": (comfy.samplers.KSampler.SAMPLERS,), "scheduler": (comfy.samplers.KSampler.SCHEDULERS,),
            "positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "latent_image": ("LATENT",)}


class KSampler(_NeedsComfyUI):
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        return {"required": {**_sampler_inputs(), "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"
    CATEGORY = "sampling"
    sample = _NeedsComfyUI.run


class KSamplerAdvanced(_NeedsComfyUI):
    @classmethod
    def INPUT_TYPES(cls) -> Dict[str, Any]:
        steps = {"default": 0, "min": 0, "max": 10000}
        inputs = _sampler_inputs()
        inputs["noise_seed"] = inputs.pop("seed")
        return {"required": {"add_noise": (["enable", "disable"],), **inputs, "start_at_step": ("INT", steps),
                             "end_at_step": ("INT", {**steps, "default": 10000}),
                             "return_with_leftover_noise": (["disable", "enable"],)}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"
    CATEGORY = "sampling"
    sample = _NeedsComfyUI.run


def common_ksampler(*args: Any, **kwargs: Any) -> Any:
    """ComfyUI's sampling entry point: needs a checkout."""
    raise needs_comfyui("nodes.common_ksampler")


