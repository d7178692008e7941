"""Importing node packs by path, as ComfyUI does, and collecting what they declare.

A package directory is imported under its directory name
(``spec_from_file_location(name, dir/__init__.py, submodule_search_locations=[dir])``)
and registered in ``sys.modules``, so relative imports inside the pack work; a single
``*.py`` file is imported under its stem. The working directory is left alone.

Collectors (:func:`register_collector`) run after each successful import; the dicts they
return are merged into that pack's entry of the ``ready`` info (the node extension adds
the pack's nodes this way).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from typing import Any, Callable

from . import import_errors

__all__ = ["failed_entries", "load_pack", "load_packs", "loaded_packs", "register_collector"]

Collector = Callable[[str, types.ModuleType], "dict[str, Any] | None"]

_collectors: list[Collector] = []
_loaded: dict[str, types.ModuleType] = {}


def register_collector(fn: Collector) -> None:
    """Call ``fn(pack_name, module)`` after each pack imports; merge the dict it returns
    into that pack's entry. A collector that raises marks the pack as failed."""
    _collectors.append(fn)


def loaded_packs() -> dict[str, types.ModuleType]:
    """The modules of the packs imported so far, by pack name."""
    return dict(_loaded)


def _error_map(e: BaseException, path: str = "") -> dict[str, Any]:
    """Exception map with the import machinery's and this module's frames left out, plus where and why."""
    return import_errors.describe(e, path or os.getcwd(), [__file__])


def _import_path(name: str, path: str) -> tuple[str, types.ModuleType]:
    if os.path.isdir(path):
        module_name = os.path.basename(os.path.normpath(path))
        init = os.path.join(path, "__init__.py")
        if not os.path.isfile(init):
            raise ImportError(
                f"pack {name!r}: directory {path} has no __init__.py; a node pack directory "
                "must be a Python package"
            )
        spec = importlib.util.spec_from_file_location(module_name, init, submodule_search_locations=[path])
    elif os.path.isfile(path) and path.endswith(".py"):
        module_name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(module_name, path)
    else:
        raise ImportError(f"pack {name!r}: {path} is neither a package directory nor a .py file")
    if spec is None or spec.loader is None:
        raise ImportError(f"pack {name!r}: cannot make an import spec for {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        if sys.modules.get(module_name) is module:
            del sys.modules[module_name]
        raise
    return module_name, module


def load_pack(name: str, path: str, core: bool = False) -> tuple[dict[str, Any], types.ModuleType | None]:
    """Import one pack; returns its ``ready`` entry and its module (``None`` on failure).

    ``core``: ``path`` is a ComfyUI checkout whose built-in nodes load as one pack (core mode).
    """
    entry: dict[str, Any] = {"name": name, "module": None, "ok": False}
    try:
        if core:
            from ..comfyui import builtin

            module = builtin.load(name, path)
            module_name = "nodes"
            entry.update(builtin.entry_fields(module))
        else:
            module_name, module = _import_path(name, path)
    except BaseException as e:  # SystemExit at import time is a pack error too
        if isinstance(e, KeyboardInterrupt):
            raise
        entry["module"] = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
        entry["error"] = _error_map(e, path)
        return entry, None
    entry["module"] = module_name
    entry["ok"] = True
    _loaded[name] = module
    for fn in list(_collectors):
        try:
            extra = fn(name, module)
        except Exception as e:
            entry["ok"] = False
            entry["error"] = _error_map(e, path)
            break
        if extra:
            entry.update(extra)
    return entry, module


def load_packs(packs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Import each ``{name, path, core?}`` in order; one pack's failure does not stop the rest."""
    return [load_pack(str(p["name"]), str(p["path"]), bool(p.get("core")))[0] for p in packs]


def failed_entries(packs: list[dict[str, Any]], e: BaseException) -> list[dict[str, Any]]:
    """Every pack's entry when none can load: the process could not provide ComfyUI (``e``)."""
    error = _error_map(e)
    return [{"name": str(p["name"]), "module": os.path.basename(os.path.normpath(str(p["path"]))), "ok": False, "error": error}
            for p in packs]
