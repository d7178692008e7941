"""Every ``io.<Type>`` class but the dynamic ones, made from the one table (:mod:`.table`).

:func:`make_type` turns a row into its class: a widget type that :data:`~.table.WIDGETS`
describes gets an ``Input`` with exactly the parameters listed there (the same signature
as ComfyUI's), any other row a plain type.
"""
from __future__ import annotations

import inspect
from enum import Enum
from typing import Any, Callable, Dict, List, Optional

from .base import ComfyTypeI, ComfyTypeIO, Custom, Output, WidgetInput, _enum_value, _prune, comfytype
from .table import HAND_MADE, IO_TYPES, WIDGETS

_MODULE = __name__.rpartition(".")[0]
"""The classes belong to the ``io`` module itself (``comfy_api.latest._io``)."""


def _enum_members(v: Any) -> Any:
    return [member.value for member in v] if isinstance(v, type) and issubclass(v, Enum) else v


_CONVERT: Dict[Optional[str], Callable[[Any], Any]] = {
    None: lambda v: v,
    "enum": _enum_value,
    "enum_if_set": lambda v: _enum_value(v) if v else None,
    "dict_if_set": lambda v: v.as_dict() if v else None,
    "enum_members": _enum_members,
    "list": lambda v: v if v is not None else [],
}
"""How the table converts a parameter or a schema value (by the name it uses)."""

_FALSE_BY_DEFAULT = ("optional", "multiline", "is_output_list")


def _signature(spec: Dict[str, Any]) -> inspect.Signature:
    """The constructor's signature (``self`` first) of a :data:`~.table.WIDGETS` entry."""
    required = spec.get("required", ("id",))
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for name in spec["params"].split():
        default = inspect.Parameter.empty if name in required else (False if name in _FALSE_BY_DEFAULT else None)
        params.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default))
    return inspect.Signature(params)


def _socket_class(qualname: str, spec: Dict[str, Any], base: type, doc: Optional[str]) -> type:
    """An ``Input`` or ``Output`` class over ``base`` taking the parameters ``spec`` lists:
    those ``base`` takes are passed on to it, the others are kept as attributes."""
    sig = _signature(spec)
    taken = set(inspect.signature(base.__init__).parameters) - {"self"}
    own = [n for n in list(sig.parameters)[1:] if n not in taken]
    convert = {name: _CONVERT[how] for name, how in spec.get("convert", {}).items()}
    fixed = dict(spec.get("set", {}))
    schema = [(e, e, None) if isinstance(e, str) else e for e in spec.get("schema", ())]

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = bound.arguments
        for name, fn in convert.items():
            values[name] = fn(values[name])
        base.__init__(self, **{k: v for k, v in values.items() if k in taken})
        for name, value in fixed.items():
            setattr(self, name, value)
        for name in own:
            setattr(self, name, values[name])

    def as_dict(self: Any) -> dict:
        extra: Dict[Any, Any] = {}
        for key, attr, how in schema:
            value = getattr(self, attr)
            if how == "flag":
                if value is not None:
                    extra[_enum_value(value)] = True
            else:
                extra[key] = _CONVERT[how](value)
        return {**base.as_dict(self), **_prune(extra)}

    __init__.__signature__ = sig  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{qualname}.__init__"
    attrs: Dict[str, Any] = {"__module__": _MODULE, "__qualname__": qualname, "__doc__": doc, "__init__": __init__}
    if schema:
        as_dict.__qualname__ = f"{qualname}.as_dict"
        attrs["as_dict"] = as_dict
    if "input_type" in spec:
        attrs["Type"] = spec["input_type"]
    return type(qualname.rpartition(".")[2], (base,), attrs)


def _widget_type(row: Dict[str, Any], spec: Dict[str, Any], made: Dict[str, type]) -> type:
    """A type whose ``Input`` takes the parameters its :data:`~.table.WIDGETS` entry lists."""
    name = row["cls"]
    base = made[spec["base"]].Input if "base" in spec else WidgetInput
    attrs: Dict[str, Any] = {
        "__module__": _MODULE,
        "__qualname__": name,
        "__doc__": spec.get("type_doc"),
        "Type": spec["type"],
        "Input": _socket_class(f"{name}.Input", spec, base, spec.get("doc")),
    }
    if "output" in spec:
        attrs["Output"] = _socket_class(f"{name}.Output", spec["output"], Output, None)
    cls = type(name, (ComfyTypeI if row["input_only"] else ComfyTypeIO,), attrs)
    return comfytype(io_type=row["io_type"])(cls)


def _widget_input_class(option_names: list) -> type:
    """A WidgetInput taking the type's own options (from the table) as keyword arguments."""
    own = [o for o in option_names if isinstance(o, str)]

    class _Input(WidgetInput):
        def __init__(self, id: str, display_name: Optional[str] = None, optional: bool = False,
                     tooltip: Optional[str] = None, lazy: Optional[bool] = None, default: Any = None,
                     socketless: Optional[bool] = None, force_input: Optional[bool] = None,
                     extra_dict: Optional[dict] = None, raw_link: Optional[bool] = None, advanced: Optional[bool] = None,
                     **options: Any):
            unknown = [k for k in options if k not in own]
            if unknown:
                raise TypeError(f"{type(self).__qualname__} got unexpected options {unknown}; it takes {own}.")
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, raw_link, advanced)
            self.options = options

        def as_dict(self) -> dict:
            return {**super().as_dict(), **_prune({k: _enum_value(v) for k, v in self.options.items()})}

    _Input.__name__ = _Input.__qualname__ = "Input"
    return _Input


def _plain_type(row: Dict[str, Any]) -> type:
    """A type with the common socket options only (a widget type: and its own, as keywords)."""
    attrs: Dict[str, Any] = {"__module__": _MODULE, "__doc__": f"``{row['io_type']}`` values."}
    if row.get("widget"):
        attrs["Input"] = _widget_input_class(row.get("options") or [])
    cls = type(row["cls"], (ComfyTypeIO,), attrs)
    cls.kind = row.get("kind")
    cls.serializable = row.get("serializable", True)
    return comfytype(io_type=row["io_type"])(cls)


def make_types(rows: List[Dict[str, Any]]) -> Dict[str, type]:
    """The class of every row but :data:`~.table.HAND_MADE`, by class name, in table order."""
    made: Dict[str, type] = {}
    for row in rows:
        name = row["cls"]
        if name in HAND_MADE:
            continue
        spec = WIDGETS.get(name)
        made[name] = _widget_type(row, spec, made) if spec is not None else _plain_type(row)
    return made


TYPES: Dict[str, type] = make_types(IO_TYPES)
"""Every table-made ``io.*`` class, by name."""

AnyType: type = TYPES.get("AnyType") or Custom("*")
