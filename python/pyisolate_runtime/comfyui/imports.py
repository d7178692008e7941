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

__all__ = ["ComfyOnly", "HostModules", "COMFY_ONLY", "install_comfy_only", "install_host_modules"]

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
