"""Core mode: ComfyUI's built-in nodes, loaded the way ComfyUI's start-up loads them.

The shared process gets a pack entry ``{core: true, path: <checkout>}`` (named ``ComfyUI``
by the host). :func:`load` imports ``nodes`` and awaits ``nodes.init_extra_nodes`` without
custom nodes — the public API versions, ``comfy_extras``' list and, unless
``--disable-api-nodes`` is among ComfyUI's arguments, the API nodes' list — exactly as
``main.py`` does before it loads ``custom_nodes``. It returns a module that stands for all of
them (``NODE_CLASS_MAPPINGS``, ``NODE_DISPLAY_NAME_MAPPINGS``), which the node extension's
collector then describes like any pack. Files ComfyUI could not import are logged by
ComfyUI itself and listed in the entry's ``import_failed``.
"""
from __future__ import annotations

import importlib
import os
import types
from typing import Any, List

from pyisolate_runtime.nodes import comfy_bridge

__all__ = ["load"]


def load(name: str, path: str) -> types.ModuleType:
    """Loads the built-in nodes of the checkout at ``path``; returns the module that lists them."""
    core = comfy_bridge.core_mode()
    if core is None:
        raise ImportError(
            f"Pack {name!r} stands for ComfyUI's built-in nodes, which load only in core mode (a ComfyUI checkout); "
            "this process runs on pyisolate's shims.")
    if os.path.abspath(path) != os.path.abspath(core["dir"]):
        raise ImportError(f"Pack {name!r} names the checkout {path}, but this process runs on {core['dir']}.")
    nodes = importlib.import_module("nodes")
    init = getattr(nodes, "init_extra_nodes", None)
    if init is None:
        raise ImportError(
            f"{os.path.join(path, 'nodes.py')} has no init_extra_nodes(): this ComfyUI checkout is too old for core mode; "
            "update it (pyisolate is tested with ComfyUI 0.8.0).")
    from pyisolate_runtime.nodes.nodes_exec import run_coroutine

    cli_args = core.get("cli_args")
    api_nodes = not bool(getattr(cli_args, "disable_api_nodes", False))
    failed: List[str] = list(run_coroutine(init(init_custom_nodes=False, init_api_nodes=api_nodes)) or [])
    module = types.ModuleType("pyisolate_comfyui_builtin")
    module.__file__ = os.path.join(path, "nodes.py")
    module.NODE_CLASS_MAPPINGS = dict(nodes.NODE_CLASS_MAPPINGS)
    module.NODE_DISPLAY_NAME_MAPPINGS = dict(nodes.NODE_DISPLAY_NAME_MAPPINGS)
    module.__pyisolate_core__ = {"version": core.get("version"), "import_failed": failed}
    return module


def entry_fields(module: Any) -> dict:
    """What the core pack's ``ready`` entry says beyond its nodes."""
    info = getattr(module, "__pyisolate_core__", None) or {}
    return {"core": True, "comfyui_version": info.get("version"), "import_failed": list(info.get("import_failed") or [])}
