"""The device half of ``comfy.model_management``: which device this process computes on,
what it supports, and which dtypes to use.

These questions concern this process's own torch, so they are answered here; torch is
imported on first use. Import them from ``comfy.model_management``.
"""
from __future__ import annotations

import os
from enum import Enum
from typing import Any

__all__ = [
    "CPUState", "VRAMState",
    "cpu_mode", "mps_mode", "get_torch_device", "vram_device", "intermediate_device", "unet_offload_device",
    "unet_inital_load_device", "text_encoder_device", "text_encoder_offload_device", "vae_device",
    "vae_offload_device", "get_torch_device_name", "is_device_type", "is_device_cpu", "is_device_mps",
    "is_device_cuda", "is_nvidia", "is_amd", "is_intel_xpu", "directml_enabled", "xformers_enabled",
    "xformers_enabled_vae", "pytorch_attention_enabled", "pytorch_attention_flash_attention",
    "device_supports_non_blocking", "get_autocast_device", "should_use_fp16", "should_use_bf16", "unet_dtype",
    "vae_dtype", "text_encoder_dtype", "intermediate_dtype", "supports_cast", "cast_to_device", "module_size",
]


class VRAMState(Enum):
    DISABLED = 0
    NO_VRAM = 1
    LOW_VRAM = 2
    NORMAL_VRAM = 3
    HIGH_VRAM = 4
    SHARED = 5


class CPUState(Enum):
    GPU = 0
    CPU = 1
    MPS = 2


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            "comfy.model_management needs torch for device questions, and this pack's environment has none; "
            "set share_torch: true in its pyisolate.yaml (or add torch to its dependencies).") from e
    return torch


def _force_cpu() -> bool:
    return os.environ.get("PYISOLATE_CPU", "") not in ("", "0", "false")


def _cpu_state() -> CPUState:
    if _force_cpu():
        return CPUState.CPU
    try:
        torch = _torch()
    except ImportError:
        return CPUState.CPU
    if torch.cuda.is_available():
        return CPUState.GPU
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return CPUState.MPS
    return CPUState.CPU


def cpu_mode() -> bool:
    """Whether this process computes on the CPU only."""
    return _cpu_state() == CPUState.CPU


def mps_mode() -> bool:
    return _cpu_state() == CPUState.MPS


def get_torch_device() -> Any:
    """This process's compute device (``cuda:N``, ``mps`` or ``cpu``)."""
    torch = _torch()
    state = _cpu_state()
    if state == CPUState.GPU:
        return torch.device("cuda", torch.cuda.current_device())
    if state == CPUState.MPS:
        return torch.device("mps")
    return torch.device("cpu")


def vram_device() -> Any:
    """The device models run on (the compute device)."""
    return get_torch_device()


def intermediate_device() -> Any:
    return _torch().device("cpu")


def unet_offload_device() -> Any:
    """Where models are parked when not in use: the CPU."""
    return _torch().device("cpu")


def unet_inital_load_device(parameters: int = 0, dtype: Any = None) -> Any:
    return get_torch_device()


def text_encoder_device() -> Any:
    return get_torch_device()


def text_encoder_offload_device() -> Any:
    return _torch().device("cpu")


def vae_device() -> Any:
    return get_torch_device()


def vae_offload_device() -> Any:
    return _torch().device("cpu")


def get_torch_device_name(device: Any) -> str:
    """A readable name of ``device`` (e.g. ``"cuda:0 NVIDIA H100 : cudaMallocAsync"``, or ``"cpu"``)."""
    kind = getattr(device, "type", None)
    if kind == "cuda":
        torch = _torch()
        try:
            backend = torch.cuda.get_allocator_backend()
        except Exception:
            backend = ""
        return f"{device} {torch.cuda.get_device_name(device)} : {backend}"
    if kind is not None:
        return f"{kind}"
    return f"{device}"


def is_device_type(device: Any, kind: str) -> bool:
    return getattr(device, "type", None) == kind


def is_device_cpu(device: Any) -> bool:
    return is_device_type(device, "cpu")


def is_device_mps(device: Any) -> bool:
    return is_device_type(device, "mps")


def is_device_cuda(device: Any) -> bool:
    return is_device_type(device, "cuda")


def is_nvidia() -> bool:
    if _cpu_state() != CPUState.GPU:
        return False
    return getattr(_torch().version, "cuda", None) is not None


def is_amd() -> bool:
    if _cpu_state() != CPUState.GPU:
        return False
    return getattr(_torch().version, "hip", None) is not None


def is_intel_xpu() -> bool:
    return False


def directml_enabled() -> bool:
    return False


def xformers_enabled() -> bool:
    return False


def xformers_enabled_vae() -> bool:
    return False


def pytorch_attention_enabled() -> bool:
    return True


def pytorch_attention_flash_attention() -> bool:
    return is_nvidia()


def device_supports_non_blocking(device: Any) -> bool:
    return is_device_cuda(device)


def get_autocast_device(dev: Any) -> str:
    return getattr(dev, "type", "cuda")


def _capability(device: Any) -> "tuple[int, int]":
    torch = _torch()
    props = torch.cuda.get_device_properties(device)
    return props.major, props.minor


def _device_asked(device: Any) -> Any:
    """``device``, or this process's device when ``None`` (``None`` still in CPU mode)."""
    if device is None and not cpu_mode():
        return get_torch_device()
    return device


def should_use_fp16(device: Any = None, model_params: int = 0, prioritize_performance: bool = True,
                    manual_cast: bool = False) -> bool:
    """Whether to compute in fp16 on ``device`` (default: this process's device)."""
    device = _device_asked(device)
    if device is None or is_device_cpu(device):
        return False
    if is_device_mps(device):
        return True
    if is_device_cuda(device):
        major, _minor = _capability(device)
        if major >= 7:
            return True
        return major == 6 and not prioritize_performance
    return False


def should_use_bf16(device: Any = None, model_params: int = 0, prioritize_performance: bool = True,
                    manual_cast: bool = False) -> bool:
    """Whether to compute in bf16 on ``device`` (CUDA compute capability 8 and above)."""
    device = _device_asked(device)
    if device is not None and is_device_cuda(device):
        return _capability(device)[0] >= 8
    return False


def _dtype_for(device: Any = None) -> Any:
    torch = _torch()
    if should_use_bf16(device):
        return torch.bfloat16
    if should_use_fp16(device):
        return torch.float16
    return torch.float32


def unet_dtype(device: Any = None, model_params: int = 0, supported_dtypes: Any = None, weight_dtype: Any = None) -> Any:
    return _dtype_for(device)


def vae_dtype(device: Any = None, allowed_dtypes: Any = None) -> Any:
    return _dtype_for(device)


def text_encoder_dtype(device: Any = None) -> Any:
    return _dtype_for(device)


def intermediate_dtype() -> Any:
    return _torch().float32


def supports_cast(device: Any, dtype: Any) -> bool:
    return True


def cast_to_device(tensor: Any, device: Any, dtype: Any, copy: bool = False) -> Any:
    return tensor.to(device=device, dtype=dtype, copy=copy, non_blocking=device_supports_non_blocking(device))


def module_size(module: Any) -> int:
    """Bytes of a module's parameters and buffers."""
    total = 0
    for t in list(module.parameters()) + list(module.buffers()):
        total += t.nelement() * t.element_size()
    return total
