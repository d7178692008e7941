"""Import hooks of the two ways to provide ComfyUI.

- :class:`HostModules` (core mode, first on ``sys.meta_path``): ``folder_paths`` and
  ``server`` are the shims' host-connected modules, not the checkout's, so that every
  process shares the host's one folder table and PromptServer.
- :class:`ComfyOnly` (shims, last on ``sys.meta_path``): a module that only a real ComfyUI
  has — ``comfy.sd``, ``comfy_extras.nodes_mask``, ``comfy_execution.graph``, … — is a
  ``ModuleNotFoundError`` that names it and says how to get it: ``--comfyui DIR``.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from typing import Any, Optional, Sequence

from . import SHIMS_DIR

__all__ = ["ComfyOnly", "HostModules", "COMFY_ONLY", "COMFYUI_SUBMODULES", "install_comfy_only", "install_host_modules",
           "shimmed_package_getattr"]

HOST_CONNECTED = {
    "folder_paths": os.path.join(SHIMS_DIR, "folder_paths.py"),
    "server": os.path.join(SHIMS_DIR, "server.py"),
}
"""Modules that stay one per host: in core mode they are pyisolate's, not the checkout's."""

COMFY_ONLY = frozenset({
    "comfy_extras", "comfy_api_nodes", "comfy_execution", "comfy_config", "comfyui_version", "execution",
    "protocol", "app", "api_server", "middleware", "cuda_malloc", "hook_breaker_ac10a0", "new_updater",
})
"""Top-level modules of a ComfyUI checkout that the shims do not provide."""

SHIMMED_PACKAGES = frozenset({"comfy", "comfy_api"})
"""Packages the shims provide in part: their other submodules are ComfyUI's alone."""

COMFYUI_SUBMODULES = {
    "comfy": frozenset({
        "audio_encoders", "checkpoint_pickle", "cldm", "cli_args", "clip_model", "clip_vision", "conds",
        "context_windows", "controlnet", "diffusers_convert", "diffusers_load", "extra_samplers", "float", "gligen",
        "hooks", "image_encoders", "k_diffusion", "latent_formats", "ldm", "lora", "lora_convert", "model_base",
        "model_detection", "model_patcher", "model_sampling", "nested_tensor", "ops", "options", "patcher_extension",
        "pixel_space_convert", "quant_ops", "rmsnorm", "sample", "sampler_helpers", "sd", "sd1_clip", "sdxl_clip",
        "supported_models", "supported_models_base", "t2i_adapter", "taesd", "text_encoders", "weight_adapter",
    }),
    "comfy_api": frozenset({"feature_flags", "generate_api_stubs", "internal", "torch_helpers", "v0_0_1", "version_list"}),
}
"""Submodules of ComfyUI's (0.8.0) ``comfy`` and ``comfy_api`` that the shims lack: ``from comfy import
model_detection`` names the module and says to pass ``--comfyui DIR`` instead of Python's bare
"cannot import name"."""


def shimmed_package_getattr(package: str, name: str) -> Any:
    """The module ``__getattr__`` of a shimmed package (PEP 562).

    ``from comfy import model_detection`` asks the package for an attribute first, and Python
    turns the submodule's ``ModuleNotFoundError`` into "cannot import name …", losing the
    reason. For ComfyUI's own submodule names this raises the error that says what to do;
    any other name is a plain ``AttributeError`` (so ``hasattr`` keeps working)."""
    if name in COMFYUI_SUBMODULES.get(package, ()):
        fullname = f"{package}.{name}"
        raise ModuleNotFoundError(needs_comfyui_message(fullname), name=fullname)
    raise AttributeError(f"module {package!r} has no attribute {name!r}")


class HostModules(importlib.abc.MetaPathFinder):
    """Finds ``folder_paths`` and ``server`` in the shims (core mode)."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None, target: Any = None) -> Any:
        file = HOST_CONNECTED.get(fullname)
        if file is None:
            return None
        return importlib.util.spec_from_file_location(fullname, file)


def needs_comfyui_message(fullname: str) -> str:
    return (
        f"No module named {fullname!r}: it is part of ComfyUI itself, which pyisolate's shims do not provide. "
        "Run with a ComfyUI checkout (pyisolate --comfyui DIR, PYISOLATE_COMFYUI=DIR, or createHost({ comfyui })) "
        "so that every process imports ComfyUI's real modules.")


class ComfyOnly(importlib.abc.MetaPathFinder):
    """Consulted after every other finder: names ComfyUI's own modules as needing a checkout."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None, target: Any = None) -> Any:
        top = fullname.split(".", 1)[0]
        if top in COMFY_ONLY or (top in SHIMMED_PACKAGES and "." in fullname):
            raise ModuleNotFoundError(needs_comfyui_message(fullname), name=fullname)
        return None


def _install(finder_type: type, first: bool) -> None:
    if any(isinstance(f, finder_type) for f in sys.meta_path):
        return
    if first:
        sys.meta_path.insert(0, finder_type())
    else:
        sys.meta_path.append(finder_type())


def install_host_modules() -> None:
    """Core mode: ``folder_paths`` and ``server`` come from the shims."""
    _install(HostModules, first=True)


def install_comfy_only() -> None:
    """Shims: ComfyUI-only modules raise an error that says to pass ``--comfyui DIR``."""
    _install(ComfyOnly, first=False)
