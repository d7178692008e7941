"""A node class's ``/object_info`` entry, exactly as ComfyUI emits it (V1 and V3 classes).

Entries are made JSON-ready: tuples become lists, sets sorted lists, enums their values,
integers beyond 2**53 floats (as a browser reads ComfyUI's JSON), and anything else its
``str``.
"""
from __future__ import annotations

import inspect
from enum import Enum
from typing import Any, Dict, Optional

_MAX_SAFE_INT = 2**53


def is_v3(cls: Any) -> bool:
    """Whether ``cls`` is a V3 node class (derived from ``io.ComfyNode``)."""
    from comfy_api.latest._io import _ComfyNodeInternal

    return isinstance(cls, type) and issubclass(cls, _ComfyNodeInternal)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (see the module doc)."""
    if isinstance(value, Enum):
        value = value.value
    if value is None or type(value) in (bool, str):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return float(value) if abs(value) > _MAX_SAFE_INT else int(value)
    if isinstance(value, float):
        return value
    if isinstance(value, dict):
        return {str(jsonable(k)) if not isinstance(k, str) else str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [jsonable(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    return str(value)


def v1_node_info(name: str, cls: Any, display_name: Optional[str]) -> Dict[str, Any]:
    """The ``/object_info`` entry of a V1 class (``INPUT_TYPES``, ``RETURN_TYPES``, …)."""
    inputs = cls.INPUT_TYPES()
    return_types = ["*" if isinstance(rt, list) and rt == [] else rt for rt in cls.RETURN_TYPES]
    info: Dict[str, Any] = {
        "input": inputs,
        "input_order": {key: list(value.keys()) for key, value in cls.INPUT_TYPES().items()},
        "is_input_list": getattr(cls, "INPUT_IS_LIST", False),
        "output": return_types,
        "output_is_list": cls.OUTPUT_IS_LIST if hasattr(cls, "OUTPUT_IS_LIST") else [False] * len(return_types),
        "output_name": cls.RETURN_NAMES if hasattr(cls, "RETURN_NAMES") else return_types,
        "name": name,
        "display_name": display_name if display_name is not None else name,
        "description": cls.DESCRIPTION if hasattr(cls, "DESCRIPTION") else "",
        "python_module": getattr(cls, "RELATIVE_PYTHON_MODULE", None) or "nodes",
        "category": cls.CATEGORY if hasattr(cls, "CATEGORY") else "sd",
        "output_node": getattr(cls, "OUTPUT_NODE", False) is True,
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = cls.OUTPUT_TOOLTIPS
    if getattr(cls, "DEPRECATED", False):
        info["deprecated"] = True
    if getattr(cls, "EXPERIMENTAL", False):
        info["experimental"] = True
    if getattr(cls, "DEV_ONLY", False):
        info["dev_only"] = True
    if hasattr(cls, "API_NODE"):
        info["api_node"] = cls.API_NODE
    info["search_aliases"] = getattr(cls, "SEARCH_ALIASES", [])
    return info


def node_info(name: str, cls: Any, display_name: Optional[str] = None) -> Dict[str, Any]:
    """The JSON-ready ``/object_info`` entry of a V1 or V3 node class (in core mode, V1 entries
    as the checkout's own server makes them)."""
    if is_v3(cls):
        return jsonable(cls.GET_NODE_INFO_V1())
    from pyisolate_runtime.nodes import comfy_bridge

    core = comfy_bridge.core_mode()
    if core is not None:
        from pyisolate_runtime.comfyui.node_schema import checkout_node_info

        info = checkout_node_info(core["dir"])
        if info is not None:
            return jsonable(info(name, cls, display_name))
    return jsonable(v1_node_info(name, cls, display_name))


def _defines(cls: Any, name: str) -> bool:
    """Whether a V3 class defines ``name`` itself (below ``io.ComfyNode``; shims and ComfyUI alike)."""
    from comfy_api.latest._io import ComfyNode

    for klass in cls.__mro__:
        if klass is ComfyNode or not issubclass(klass, ComfyNode):
            return False
        if name in klass.__dict__:
            return True
    return False


def node_flags(cls: Any) -> Dict[str, Any]:
    """What the executor needs to know beyond the entry: API style and optional hooks."""
    if is_v3(cls):
        schema = cls.SCHEMA or cls.GET_SCHEMA()
        return {
            "api": "v3",
            "is_changed": _defines(cls, "fingerprint_inputs"),
            "validate_inputs": _defines(cls, "validate_inputs"),
            "input_is_list": bool(schema.is_input_list),
            "not_idempotent": bool(schema.not_idempotent),
            "is_async": inspect.iscoroutinefunction(cls.execute),
        }
    function = getattr(cls, "FUNCTION", None)
    return {
        "api": "v1",
        "is_changed": callable(getattr(cls, "IS_CHANGED", None)),
        "validate_inputs": callable(getattr(cls, "VALIDATE_INPUTS", None)),
        "input_is_list": bool(getattr(cls, "INPUT_IS_LIST", False)),
        "not_idempotent": bool(getattr(cls, "NOT_IDEMPOTENT", False)),
        "is_async": bool(function) and inspect.iscoroutinefunction(getattr(cls, function, None)),
    }
