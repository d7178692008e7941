"""ComfyUI node packs inside a pyisolate process: finds their nodes and runs them.

``setup(rt)`` is called by the runtime before any pack is imported. It

- answers the host's ModelManagement events (interrupt, free memory) at once, even while a
  node runs;
- registers a collector that, after each pack's import, finds its nodes (V1
  ``NODE_CLASS_MAPPINGS``, V3 ``comfy_entrypoint``) and its ``WEB_DIRECTORY``, and adds
  ``nodes`` (``/object_info`` entries by class name), ``node_flags``, ``web_directory``
  and ``node_errors`` to the pack's entry of the ``ready`` info;
- serves ``$nodes``: ``object_info()``, ``execute(...)``, ``is_changed(...)``,
  ``validate_inputs(...)``, ``forget(node_id)`` (see :mod:`pyisolate_runtime.nodes.nodes_exec`
  for the input representation).
"""
from __future__ import annotations

import inspect
import logging
import os
import sys
import traceback
from typing import Any, Dict, List, Optional, Tuple

from pyisolate_runtime.nodes.nodes_exec import NodeRunner, run_coroutine, set_node_loop
from pyisolate_runtime.nodes.nodes_info import node_flags, node_info
from pyisolate_runtime.nodes.outputs import encode_outputs

log = logging.getLogger("pyisolate.nodes")


class NodeNotFound(KeyError):
    """The host asked for a node class this process does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "node not found"


def _pack_dir(module: Any) -> Tuple[str, str]:
    """(directory, module name as ComfyUI names it) of a loaded pack module."""
    path = getattr(module, "__file__", None) or ""
    if os.path.basename(path) == "__init__.py":
        directory = os.path.dirname(os.path.abspath(path))
        return directory, os.path.basename(directory)
    if path:
        return os.path.dirname(os.path.abspath(path)), os.path.splitext(os.path.basename(path))[0]
    name = getattr(module, "__name__", "pack")
    return os.getcwd(), name.rsplit(".", 1)[-1]


def _v3_classes(module: Any) -> Tuple[Any, List[type]]:
    """The pack's ``ComfyExtension`` (what ``comfy_entrypoint`` made) and its node classes."""
    from comfy_api.latest import ComfyExtension

    entry = getattr(module, "comfy_entrypoint")
    if not callable(entry):
        raise TypeError("comfy_entrypoint is not callable; define `async def comfy_entrypoint() -> ComfyExtension`.")
    extension = entry()
    if inspect.isawaitable(extension):
        extension = run_coroutine(extension)
    if not isinstance(extension, ComfyExtension):
        raise TypeError(f"comfy_entrypoint returned {type(extension).__name__}, not a ComfyExtension.")

    async def load() -> list:
        await extension.on_load()
        return list(await extension.get_node_list())

    return extension, run_coroutine(load())


def _nodes_module() -> Any:
    """ComfyUI's ``nodes`` module, whose mappings list the loaded classes: the shim's (cheap to
    import), or in core mode the real one only when something already imported it."""
    from pyisolate_runtime.nodes import comfy_bridge

    if comfy_bridge.core_mode() is not None:
        return sys.modules.get("nodes")
    import nodes

    return nodes


class NodesService:
    """The ``$nodes`` service: every node class loaded in this process, by class name."""

    def __init__(self) -> None:
        self.classes: Dict[str, Tuple[str, type]] = {}
        self.entries: Dict[str, Dict[str, Any]] = {}
        self.extensions: Dict[str, Any] = {}
        """Each V3 pack's ``ComfyExtension``, by pack name (its methods may serve manifest routes)."""
        self.runner = NodeRunner()

    # -- loading ------------------------------------------------------------------------------

    def collect(self, pack_name: str, module: Any) -> Dict[str, Any]:
        """Registers a pack's nodes; returns what goes into its ``ready`` entry."""
        comfy_nodes = _nodes_module()
        builtin = getattr(module, "__pyisolate_core__", None) is not None  # ComfyUI's own nodes (core mode)
        directory, module_name = _pack_dir(module)
        found: List[Tuple[str, type, Optional[str]]] = []
        errors: Dict[str, str] = {}
        mappings = getattr(module, "NODE_CLASS_MAPPINGS", None)
        if mappings is not None:
            display = getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", None) or {}
            found = [(name, cls, display.get(name)) for name, cls in mappings.items()]
        elif hasattr(module, "comfy_entrypoint"):
            extension, classes = _v3_classes(module)
            self.extensions[pack_name] = extension
            for cls in classes:
                schema = cls.GET_SCHEMA()
                found.append((schema.node_id, cls, schema.display_name))
        else:
            log.warning("Pack %s defines neither NODE_CLASS_MAPPINGS nor comfy_entrypoint; it has no nodes.", pack_name)

        nodes: Dict[str, Any] = {}
        flags: Dict[str, Any] = {}
        for name, cls, display_name in found:
            if name in self.classes:
                owner = self.classes[name][0]
                errors[name] = f"Node class {name} is already defined by pack {owner} in this process; the first one is kept."
                continue
            try:
                if not builtin:
                    cls.RELATIVE_PYTHON_MODULE = f"custom_nodes.{module_name}"
                entry = node_info(name, cls, display_name)
                flags[name] = node_flags(cls)
            except Exception as e:  # one broken node does not hide the others
                errors[name] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
                continue
            self.classes[name] = (pack_name, cls)
            self.entries[name] = entry
            nodes[name] = entry
            if comfy_nodes is not None:
                comfy_nodes.NODE_CLASS_MAPPINGS[name] = cls
                if display_name is not None:
                    comfy_nodes.NODE_DISPLAY_NAME_MAPPINGS[name] = display_name

        web_directory = None
        web = getattr(module, "WEB_DIRECTORY", None)
        if web is not None:
            candidate = os.path.abspath(os.path.join(directory, str(web)))
            if os.path.isdir(candidate):
                web_directory = candidate
                if comfy_nodes is not None:
                    comfy_nodes.EXTENSION_WEB_DIRS[module_name] = candidate
        return {"nodes": nodes, "node_flags": flags, "web_directory": web_directory, "node_errors": errors}

    def _class(self, class_type: str) -> type:
        found = self.classes.get(class_type)
        if found is None:
            known = ", ".join(sorted(self.classes)) or "none"
            raise NodeNotFound(f"Node class {class_type!r} is not loaded in this process (loaded: {known}).")
        return found[1]

    # -- the service --------------------------------------------------------------------------

    def object_info(self) -> Dict[str, Any]:
        """Every loaded node's ``/object_info`` entry, by class name."""
        return dict(self.entries)

    def execute(self, class_type: str, inputs: Dict[str, Any], hidden: Optional[dict] = None,
                node_id: Optional[str] = None) -> Dict[str, Any]:
        """Runs a node: ``inputs`` maps names to lists of values; returns ``{"result", "ui"}``."""
        return self.runner.execute(class_type, self._class(class_type), inputs, hidden, node_id)

    def is_changed(self, class_type: str, inputs: Dict[str, Any], hidden: Optional[dict] = None,
                   node_id: Optional[str] = None) -> Optional[list]:
        """The node's ``IS_CHANGED`` / ``fingerprint_inputs`` values (one per list index), or None."""
        return self.runner.is_changed(class_type, self._class(class_type), inputs, hidden, node_id)

    fingerprint_inputs = is_changed

    def validate_inputs(self, class_type: str, inputs: Dict[str, Any], node_id: Optional[str] = None,
                        input_types: Optional[dict] = None) -> Any:
        """True, or the reason the node's own validation refuses these inputs."""
        return self.runner.validate_inputs(class_type, self._class(class_type), inputs, node_id, input_types)

    def forget(self, node_id: Optional[str] = None) -> None:
        """Drops the V1 node objects kept for ``node_id`` (all when None)."""
        self.runner.forget(node_id)


service = NodesService()
"""The process's one ``$nodes`` service."""


class NodesEndpoint:
    """What the host may call of :data:`service` as ``$nodes``; ``execute`` answers with its
    outputs encoded already (see :mod:`pyisolate_runtime.nodes.outputs`)."""

    def __init__(self, nodes: NodesService) -> None:
        self._nodes = nodes

    def object_info(self) -> Dict[str, Any]:
        return self._nodes.object_info()

    def execute(self, class_type: str, inputs: Dict[str, Any], hidden: Optional[dict] = None,
                node_id: Optional[str] = None) -> Dict[str, Any]:
        nodes = self._nodes
        cls = nodes._class(class_type)
        pack = nodes.classes[class_type][0]
        return encode_outputs(class_type, cls, node_id, nodes.runner.execute(class_type, cls, inputs, hidden, node_id), pack)

    def is_changed(self, class_type: str, inputs: Dict[str, Any], hidden: Optional[dict] = None,
                   node_id: Optional[str] = None) -> Optional[list]:
        return self._nodes.is_changed(class_type, inputs, hidden, node_id)

    fingerprint_inputs = is_changed

    def validate_inputs(self, class_type: str, inputs: Dict[str, Any], node_id: Optional[str] = None,
                        input_types: Optional[dict] = None) -> Any:
        return self._nodes.validate_inputs(class_type, inputs, node_id, input_types)

    def forget(self, node_id: Optional[str] = None) -> None:
        self._nodes.forget(node_id)


def _on_event(rt: Any, name: str, method: str, fn: Any) -> None:
    register = getattr(rt, "on_event", None)
    if register is not None:
        register(name, method, fn)


def setup(rt: Any) -> None:
    """Installs the node API into this process (called by the runtime before packs load)."""
    from comfy import model_management  # noqa: F401 (registers its host hooks: the shim's, or core mode's)
    from pyisolate_runtime.nodes import comfy_bridge, loader

    set_node_loop(getattr(rt, "node_loop", None))
    _on_event(rt, "ModelManagement", "interrupt", lambda value=True, *_: comfy_bridge.host_interrupt(value))
    _on_event(rt, "ModelManagement", "soft_empty_cache", lambda force=False, *_: comfy_bridge.host_memory_event("soft_empty_cache", force))
    _on_event(rt, "ModelManagement", "unload_all_models", lambda *_: comfy_bridge.host_memory_event("unload_all_models"))
    loader.register_collector(service.collect)
    rt.serve("$nodes", NodesEndpoint(service))
