"""ComfyUI's ``comfy.model_management`` for node packs run by pyisolate.

Device questions (which device, how much memory, fp16 or not) concern this process's own
torch, so they are answered here (the device functions are in ``comfy/_devices.py``); torch
is imported on first use. Freeing memory (``soft_empty_cache``, ``unload_all_models``) is
done here and then fanned out by the host's ``ModelManagement`` service to every other live
process.

Interrupts are driven by the host: ``host.interrupt()`` reaches this process as an event
that sets the flag at once, even while a node runs; the node stops at its next
``throw_exception_if_processing_interrupted()`` (or ``ProgressBar`` update) with
:class:`InterruptProcessingException`.
"""
from __future__ import annotations

import gc
import os
import threading
from typing import Any, Optional

from pyisolate_runtime.nodes import comfy_bridge

from ._devices import *  # noqa: F401,F403 (device questions: get_torch_device, should_use_fp16, ...)
from ._devices import CPUState, VRAMState, _cpu_state, _torch, get_torch_device, is_device_cpu, is_device_mps

_SERVICE = "ModelManagement"


class InterruptProcessingException(Exception):
    """Raised in a node when the host interrupted processing."""


# --- interrupts ------------------------------------------------------------------------------

_interrupt_lock = threading.Lock()
_interrupt_processing = False


def _set_interrupt_flag(value: bool) -> None:
    """Sets the flag without telling the host (the host's own events come here)."""
    global _interrupt_processing
    with _interrupt_lock:
        _interrupt_processing = bool(value)


def interrupt_current_processing(value: bool = True) -> None:
    """Interrupts (or, with False, resumes) processing everywhere: here, and through the host in every process."""
    _set_interrupt_flag(value)
    _fan_out("interrupt_current_processing", bool(value))


def processing_interrupted() -> bool:
    """Whether an interrupt is pending."""
    with _interrupt_lock:
        return _interrupt_processing


def throw_exception_if_processing_interrupted() -> None:
    """Raises :class:`InterruptProcessingException` (and clears the flag) when an interrupt is pending."""
    global _interrupt_processing
    with _interrupt_lock:
        if _interrupt_processing:
            _interrupt_processing = False
            raise InterruptProcessingException()


# --- attributes computed when read (ComfyUI sets them at import) -----------------------------


def __getattr__(name: str) -> Any:
    if name == "cpu_state":
        return _cpu_state()
    if name == "vram_state":
        return VRAMState.NORMAL_VRAM if _cpu_state() == CPUState.GPU else (
            VRAMState.SHARED if _cpu_state() == CPUState.MPS else VRAMState.DISABLED)
    if name == "torch_version":
        return _torch().version.__version__
    if name == "OOM_EXCEPTION":
        torch = _torch()
        return getattr(torch.cuda, "OutOfMemoryError", Exception)
    if name == "total_vram":
        return get_total_memory(get_torch_device()) / (1024 * 1024)
    if name == "total_ram":
        return _ram()[0] / (1024 * 1024)
    raise AttributeError(f"module 'comfy.model_management' has no attribute {name!r}")


DISABLE_SMART_MEMORY = False
current_loaded_models: list = []
"""Models this process keeps loaded; ``unload_all_models`` empties it."""

# --- memory ----------------------------------------------------------------------------------


def _ram() -> "tuple[int, int]":
    """(total, available) bytes of system memory."""
    total = available = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                kib = int(rest.split()[0]) * 1024
                if key == "MemTotal":
                    total = kib
                elif key == "MemAvailable":
                    available = kib
    except (OSError, ValueError, IndexError):
        pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
        page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
        total = pages * page
        available = total
    return total, available


def _device_or_default(dev: Any) -> Any:
    if dev is not None:
        return dev
    try:
        return get_torch_device()
    except ImportError:
        return None


def _in_system_memory(dev: Any) -> bool:
    """Whether ``dev`` (``None``: no torch) computes in system memory: the CPU, or MPS."""
    return dev is None or is_device_cpu(dev) or is_device_mps(dev)


def get_total_memory(dev: Any = None, torch_total_too: bool = False) -> Any:
    """Total memory of ``dev`` (bytes); with ``torch_total_too``, also what torch reserved."""
    dev = _device_or_default(dev)
    if _in_system_memory(dev):
        total = _ram()[0]
        torch_total = total
    else:
        torch = _torch()
        _free, total = torch.cuda.mem_get_info(dev)
        torch_total = torch.cuda.memory_stats(dev).get("reserved_bytes.all.current", 0)
    return (total, torch_total) if torch_total_too else total


def get_free_memory(dev: Any = None, torch_free_too: bool = False) -> Any:
    """Free memory of ``dev`` (bytes); with ``torch_free_too``, also what torch holds but does not use."""
    dev = _device_or_default(dev)
    if _in_system_memory(dev):
        free_total = _ram()[1]
        free_torch = free_total
    else:
        torch = _torch()
        stats = torch.cuda.memory_stats(dev)
        free_torch = stats.get("reserved_bytes.all.current", 0) - stats.get("active_bytes.all.current", 0)
        free_cuda, _total = torch.cuda.mem_get_info(dev)
        free_total = free_cuda + free_torch
    return (free_total, free_torch) if torch_free_too else free_total


memory_events = {"soft_empty_cache": 0, "unload_all_models": 0}
"""How many times another process's memory release reached this one through the host."""


def _on_host_memory_event(kind: str, force: bool = False) -> None:
    """A memory release fanned out by the host (another process called it)."""
    memory_events[kind] = memory_events.get(kind, 0) + 1
    if kind == "unload_all_models":
        _unload_all_models_local()
    else:
        _soft_empty_cache_local(force)


def _soft_empty_cache_local(force: bool = False) -> None:
    torch = __import__("sys").modules.get("torch")
    if torch is None:
        return
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()
    mps = getattr(torch, "mps", None)
    if mps is not None and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        mps.empty_cache()


def _unload_all_models_local() -> None:
    current_loaded_models.clear()
    gc.collect()
    _soft_empty_cache_local(True)


def _fan_out(method: str, *args: Any) -> None:
    try:
        comfy_bridge.emit(_SERVICE, method, *args, comfy_bridge.process_name())
    except comfy_bridge.HostUnavailable:
        pass


def soft_empty_cache(force: bool = False) -> None:
    """Releases cached accelerator memory here and, through the host, in every other live process."""
    _soft_empty_cache_local(force)
    _fan_out("soft_empty_cache", bool(force))


def unload_all_models() -> None:
    """Drops loaded models here and, through the host, in every other live process."""
    _unload_all_models_local()
    _fan_out("unload_all_models")


def free_memory(memory_required: int, device: Any, keep_loaded: Optional[list] = None) -> list:
    """Makes room on ``device``: models loaded here are dropped when free memory is short."""
    if get_free_memory(device) < memory_required:
        _unload_all_models_local()
    else:
        _soft_empty_cache_local()
    return []


def load_models_gpu(models: list, memory_required: int = 0, force_patch_weights: bool = False,
                    minimum_memory_required: Any = None, force_full_load: bool = False) -> None:
    """Remembers the models as loaded; models stay in the process that made them."""
    for m in models:
        if m not in current_loaded_models:
            current_loaded_models.append(m)


def load_model_gpu(model: Any) -> None:
    load_models_gpu([model])


def cleanup_models(keep_clone_weights_loaded: bool = False) -> None:
    gc.collect()


def cleanup_models_gc() -> None:
    gc.collect()


comfy_bridge.set_host_hooks(interrupt=_set_interrupt_flag, memory=_on_host_memory_event)
