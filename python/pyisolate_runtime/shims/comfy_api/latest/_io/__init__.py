"""ComfyUI's V3 node API (``from comfy_api.latest import io``) for packs run by pyisolate.

Node classes derive from :class:`ComfyNode`, describe themselves with a :class:`Schema`
built from ``io.<Type>.Input(...)`` / ``io.<Type>.Output(...)`` and return a
:class:`NodeOutput`. The schema serializes to the same ``/object_info`` entry ComfyUI
emits, and the V1 class attributes (``INPUT_TYPES``, ``RETURN_TYPES``, ``FUNCTION``, …)
are derived from it so that V1 and V3 nodes run through one executor.

The parts: :mod:`.base` (Input/Output classes, :func:`comfytype`, enums and options),
:mod:`.table` and :mod:`.io_types` (every ``io.<Type>`` made from one table),
:mod:`.dynamic` (MultiType, MatchType, Autogrow, DynamicCombo, DynamicSlot),
:mod:`.schema` (Schema, Hidden, NodeOutput) and :mod:`.node` (ComfyNode).
"""
from __future__ import annotations

from .base import (  # noqa: F401 (the io module's API, and what its parts share)
    ComfyTypeI,
    ComfyTypeIO,
    Custom,
    DynamicInput,
    DynamicOutput,
    FolderType,
    Input,
    NumberDisplay,
    Output,
    RemoteOptions,
    UploadType,
    WidgetInput,
    _ComfyType,
    _IO_V3,
    _enum_value,
    _overrides,
    _prune,
    add_to_dict_v1,
    add_to_dict_v3,
    classproperty,
    comfytype,
)
from .dynamic import Autogrow, DynamicCombo, DynamicSlot, MatchType, MultiType
from .io_types import TYPES as _TYPES
from .io_types import AnyType
from .node import ComfyNode, ComfyNodeV3, _ComfyNodeInternal  # noqa: F401
from .schema import Hidden, HiddenHolder, NodeOutput, Schema, _normalize_output, _UIOutput  # noqa: F401
from .table import IO_TYPES  # noqa: F401

globals().update(_TYPES)

_WIDGET_TYPES = ["Boolean", "Int", "Float", "String", "Combo", "MultiCombo", "Webcam"]

__all__ = [
    "FolderType", "UploadType", "RemoteOptions", "NumberDisplay",
    "comfytype", "Custom", "Input", "WidgetInput", "Output", "DynamicInput", "DynamicOutput",
    "ComfyTypeI", "ComfyTypeIO",
    *_WIDGET_TYPES,
    *sorted(n for n in _TYPES if n not in _WIDGET_TYPES),
    "MultiType", "MatchType", "Autogrow", "DynamicCombo", "DynamicSlot",
    "HiddenHolder", "Hidden", "Schema", "ComfyNode", "NodeOutput", "add_to_dict_v1", "add_to_dict_v3",
]
