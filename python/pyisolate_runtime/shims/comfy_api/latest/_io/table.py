"""The one list of V3 ``io.*`` types that have no options of their own.

Each row names the class (``io.<cls>``), its ComfyUI io_type string and what its values
are. Types with their own widget options (Int, Float, String, Boolean, Combo, …) and the
dynamic ones (MultiType, MatchType, Autogrow, DynamicCombo, DynamicSlot) are classes in
``_io.py``; every other ``io.*`` class is made from this table.

When the generated table ``pyisolate_runtime.io_types_gen.IO_TYPES`` exists, its rows come
first and this list only fills the classes it lacks.
"""
from __future__ import annotations

from typing import Any

# kind: "tensor" | "dict" | "list" | "primitive" | "opaque" (stays in its process) | "any"
_OWN: list[dict[str, Any]] = [
    {"cls": "Image", "io_type": "IMAGE", "kind": "tensor", "widget": False, "serializable": True},
    {"cls": "Mask", "io_type": "MASK", "kind": "tensor", "widget": False, "serializable": True},
    {"cls": "Latent", "io_type": "LATENT", "kind": "dict", "widget": False, "serializable": True},
    {"cls": "Conditioning", "io_type": "CONDITIONING", "kind": "list", "widget": False, "serializable": True},
    {"cls": "WanCameraEmbedding", "io_type": "WAN_CAMERA_EMBEDDING", "kind": "tensor", "widget": False, "serializable": True},
    {"cls": "Sampler", "io_type": "SAMPLER", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "Sigmas", "io_type": "SIGMAS", "kind": "tensor", "widget": False, "serializable": True},
    {"cls": "Noise", "io_type": "NOISE", "kind": "opaque", "widget": False, "serializable": True},
    {"cls": "Guider", "io_type": "GUIDER", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "Clip", "io_type": "CLIP", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "ControlNet", "io_type": "CONTROL_NET", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "Vae", "io_type": "VAE", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "Model", "io_type": "MODEL", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "ClipVision", "io_type": "CLIP_VISION", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "ClipVisionOutput", "io_type": "CLIP_VISION_OUTPUT", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "StyleModel", "io_type": "STYLE_MODEL", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "Gligen", "io_type": "GLIGEN", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "UpscaleModel", "io_type": "UPSCALE_MODEL", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "LatentUpscaleModel", "io_type": "LATENT_UPSCALE_MODEL", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "Audio", "io_type": "AUDIO", "kind": "dict", "widget": False, "serializable": True},
    {"cls": "Video", "io_type": "VIDEO", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "SVG", "io_type": "SVG", "kind": "any", "widget": False, "serializable": True},
    {"cls": "LoraModel", "io_type": "LORA_MODEL", "kind": "dict", "widget": False, "serializable": True},
    {"cls": "LossMap", "io_type": "LOSS_MAP", "kind": "dict", "widget": False, "serializable": True},
    {"cls": "Voxel", "io_type": "VOXEL", "kind": "any", "widget": False, "serializable": True},
    {"cls": "Mesh", "io_type": "MESH", "kind": "any", "widget": False, "serializable": True},
    {"cls": "Hooks", "io_type": "HOOKS", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "HookKeyframes", "io_type": "HOOK_KEYFRAMES", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "TimestepsRange", "io_type": "TIMESTEPS_RANGE", "kind": "primitive", "widget": False, "serializable": True},
    {"cls": "LatentOperation", "io_type": "LATENT_OPERATION", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "FlowControl", "io_type": "FLOW_CONTROL", "kind": "any", "widget": False, "serializable": True},
    {"cls": "Accumulation", "io_type": "ACCUMULATION", "kind": "dict", "widget": False, "serializable": True},
    {"cls": "Load3DCamera", "io_type": "LOAD3D_CAMERA", "kind": "dict", "widget": False, "serializable": True},
    {"cls": "Load3D", "io_type": "LOAD_3D", "kind": "dict", "widget": False, "serializable": True},
    {"cls": "Load3DAnimation", "io_type": "LOAD_3D_ANIMATION", "kind": "dict", "widget": False, "serializable": True},
    {"cls": "Photomaker", "io_type": "PHOTOMAKER", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "Point", "io_type": "POINT", "kind": "any", "widget": False, "serializable": True},
    {"cls": "FaceAnalysis", "io_type": "FACE_ANALYSIS", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "BBOX", "io_type": "BBOX", "kind": "any", "widget": False, "serializable": True},
    {"cls": "SEGS", "io_type": "SEGS", "kind": "any", "widget": False, "serializable": True},
    {"cls": "AnyType", "io_type": "*", "kind": "any", "widget": False, "serializable": True},
    {"cls": "MODEL_PATCH", "io_type": "MODEL_PATCH", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "AudioEncoder", "io_type": "AUDIO_ENCODER", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "AudioEncoderOutput", "io_type": "AUDIO_ENCODER_OUTPUT", "kind": "opaque", "widget": False, "serializable": False},
    {"cls": "Tracks", "io_type": "TRACKS", "kind": "dict", "widget": False, "serializable": True},
]


def _rows() -> list[dict[str, Any]]:
    try:
        from pyisolate_runtime.io_types_gen import IO_TYPES as generated  # type: ignore[import-not-found]
    except Exception:
        generated = []
    rows = [dict(r) for r in generated if isinstance(r, dict) and r.get("cls") and r.get("io_type")]
    seen = {r["cls"] for r in rows}
    rows.extend(dict(r) for r in _OWN if r["cls"] not in seen)
    return rows


IO_TYPES: list[dict[str, Any]] = _rows()
"""Every plain ``io.*`` type: ``{"cls", "io_type", "kind", "widget", "serializable", ...}``."""
