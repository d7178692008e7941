"""ComfyUI's ``nodes`` module as far as node packs use it without a ComfyUI checkout.

``MAX_RESOLUTION``, the mappings of the nodes loaded in this process, the interrupt
helpers, and the built-in node classes packs subclass or call: images (``SaveImage``,
``PreviewImage``, ``LoadImage``, ``LoadImageMask``, ``ImageScale``, …), latents
(``EmptyLatentImage``, ``LatentUpscale``, …), conditioning (``ConditioningCombine``,
``ConditioningZeroOut``, ``CLIPTextEncode``, …, which work on whatever CLIP/VAE object they
are given). The loaders and samplers (``CheckpointLoaderSimple``, ``LoraLoader``,
``KSampler``, ``common_ksampler``) import, so packs that name them load, and say when run
that they need ComfyUI itself (``--comfyui DIR``). These classes are not registered as nodes
here: ComfyUI's built-in nodes run in core mode.
"""
from __future__ import annotations

from typing import Any, Dict

from ._cond import (  # noqa: F401
    CLIPTextEncode,
    ConditioningAverage,
    ConditioningCombine,
    ConditioningConcat,
    ConditioningSetArea,
    ConditioningSetMask,
    ConditioningSetTimestepRange,
    ConditioningZeroOut,
    VAEDecode,
    VAEEncode,
)
from ._image import (  # noqa: F401
    EmptyImage,
    ImageBatch,
    ImageInvert,
    ImagePadForOutpaint,
    ImageScale,
    ImageScaleBy,
    LoadImage,
    LoadImageMask,
    PreviewImage,
    SaveImage,
)
from ._latent import EmptyLatentImage, LatentFromBatch, LatentUpscale, LatentUpscaleBy  # noqa: F401
from ._models import (  # noqa: F401
    CheckpointLoaderSimple,
    CLIPLoader,
    KSampler,
    KSamplerAdvanced,
    LoraLoader,
    UNETLoader,
    VAELoader,
    common_ksampler,
)
from ._common import MAX_RESOLUTION  # noqa: F401

NODE_CLASS_MAPPINGS: Dict[str, Any] = {}
"""Every node class loaded in this process, by class name."""

NODE_DISPLAY_NAME_MAPPINGS: Dict[str, str] = {}

EXTENSION_WEB_DIRS: Dict[str, str] = {}
"""Each loaded pack's web directory, by module name."""


def interrupt_processing(value: bool = True) -> None:
    from comfy import model_management

    model_management.interrupt_current_processing(value)


def before_node_execution() -> None:
    from comfy import model_management

    model_management.throw_exception_if_processing_interrupted()
