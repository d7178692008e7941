"""The one table the ``io.*`` types are made from (by :mod:`.io_types`).

:data:`IO_TYPES` is the generated list of every V3 io type
(``pyisolate_runtime.io_types_gen``, from ``codegen/io_types.ts``): the class name, its
io_type string, what its values are. A row becomes a plain type (sockets with the common
options, and for a widget type its options as keywords), unless :data:`WIDGETS` describes
its input's own parameters, or its class is one of :data:`HAND_MADE` (in :mod:`.dynamic`).

A :data:`WIDGETS` entry:

* ``type`` — what values of the type are (``io.Int.Type``); ``doc`` — the docstring of
  the type's ``Input`` (``type_doc``: of the type itself);
* ``params`` — the ``Input`` constructor's parameters in order; those named in ``required``
  (default: ``id``) have no default, ``optional``, ``multiline`` and ``is_output_list``
  default to ``False``, the others to ``None``;
* ``base`` — the class whose ``Input`` this one extends (default: ``WidgetInput``); the
  parameters the base takes are passed on to it, the others are kept as attributes of the
  same name, and ``set`` gives further attributes fixed values;
* ``convert`` — a parameter's value converted before use (see ``_CONVERT`` in
  :mod:`.io_types`);
* ``schema`` — what the input adds to its entry, in order: ``name`` (key and attribute
  alike) or ``(key, attribute, conversion)``; a ``flag`` conversion adds the attribute's
  value itself as a key set to ``True``;
* ``input_type`` — ``Type`` of the ``Input`` class itself; ``output`` — an ``Output``
  taking parameters of its own (``params``, ``convert``), as ``Input`` does.
"""
from __future__ import annotations

from typing import Any, Dict, List

from pyisolate_runtime.io_types_gen import IO_TYPES as _GENERATED

IO_TYPES: List[Dict[str, Any]] = [dict(r) for r in _GENERATED]
"""Every ``io.*`` type: ``{"cls", "io_type", "kind", "widget", "input_only", "serializable", "options", ...}``."""

HAND_MADE = ("MultiType", "MatchType", "Autogrow", "DynamicCombo", "DynamicSlot")
"""The types whose sockets are classes of their own, in :mod:`.dynamic`."""

_NUMBER_TAIL = "display_mode socketless force_input extra_dict raw_link advanced"

WIDGETS: Dict[str, Dict[str, Any]] = {
    "Boolean": {
        "type": bool,
        "doc": "Boolean input (a toggle).",
        "params": "id display_name optional tooltip lazy default label_on label_off socketless force_input extra_dict "
                  "raw_link advanced",
        "schema": ["label_on", "label_off"],
    },
    "Int": {
        "type": int,
        "doc": "Integer input.",
        "params": f"id display_name optional tooltip lazy default min max step control_after_generate {_NUMBER_TAIL}",
        "schema": ["min", "max", "step", "control_after_generate", ("display", "display_mode", "enum_if_set")],
    },
    "Float": {
        "type": float,
        "doc": "Float input.",
        "params": f"id display_name optional tooltip lazy default min max step round {_NUMBER_TAIL}",
        "schema": ["min", "max", "step", "round", ("display", "display_mode", "enum")],
    },
    "String": {
        "type": str,
        "doc": "String input (a text box).",
        "params": "id display_name optional tooltip lazy multiline placeholder default dynamic_prompts socketless "
                  "force_input extra_dict raw_link advanced",
        "schema": ["multiline", "placeholder", ("dynamicPrompts", "dynamic_prompts", None)],
    },
    "Combo": {
        "type": str,
        "input_type": str,
        "doc": "Combo input (a dropdown); ``options`` may be a list or an Enum class.",
        "params": "id options display_name optional tooltip lazy default control_after_generate upload image_folder "
                  "remote socketless extra_dict raw_link advanced",
        "convert": {"options": "enum_members", "default": "enum"},
        "set": {"multiselect": False},
        "schema": ["multiselect", "options", "control_after_generate", (None, "upload", "flag"),
                   ("image_folder", "image_folder", "enum_if_set"), ("remote", "remote", "dict_if_set")],
        "output": {"params": "id display_name options tooltip is_output_list", "required": (),
                   "convert": {"options": "list"}},
    },
    "MultiCombo": {
        "type": List[str],
        "type_doc": "A combo where several options may be chosen.",
        "base": "Combo",
        "params": "id options display_name optional tooltip lazy default placeholder chip control_after_generate "
                  "socketless extra_dict raw_link advanced",
        "required": ("id", "options"),
        "set": {"multiselect": True},
        "schema": [("multi_select", "multiselect", None), "placeholder", "chip"],
    },
    "Webcam": {
        "type": str,
        "input_type": str,
        "doc": "Webcam capture input.",
        "params": "id display_name optional tooltip lazy default socketless extra_dict raw_link advanced",
    },
}
"""The widget types whose ``Input`` takes parameters of its own, by class name."""
