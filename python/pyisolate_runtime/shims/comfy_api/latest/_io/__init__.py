"""ComfyUI's V3 node API (``from comfy_api.latest import io``) for packs run by pyisolate.

Node classes derive from :class:`ComfyNode`, describe themselves with a :class:`Schema`
built from ``io.<Type>.Input(...)`` / ``io.<Type>.Output(...)`` and return a
:class:`NodeOutput`. The schema serializes to the same ``/object_info`` entry ComfyUI
emits, and the V1 class attributes (``INPUT_TYPES``, ``RETURN_TYPES``, ``FUNCTION``, …)
are derived from it so that V1 and V3 nodes run through one executor.
"""
from __future__ import annotations

import copy
import inspect
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Dict, List, Optional

from .table import IO_TYPES

# ---------------------------------------------------------------------------------------------
# small helpers


def _prune(d: dict) -> dict:
    """The dict without its ``None`` values (``False`` and ``0`` stay)."""
    return {k: v for k, v in d.items() if v is not None}


class classproperty:
    """A read-only property on the class itself."""

    def __init__(self, fget: Callable[[Any], Any]):
        self.fget = fget

    def __get__(self, obj: Any, owner: type) -> Any:
        return self.fget(owner)


def _overrides(cls: type, name: str, base: type) -> bool:
    """Whether ``cls`` defines ``name`` somewhere below ``base`` in its MRO."""
    for klass in cls.__mro__:
        if klass is base:
            return False
        if name in klass.__dict__:
            return True
    return False


def _enum_value(v: Any) -> Any:
    return v.value if isinstance(v, Enum) else v


# ---------------------------------------------------------------------------------------------
# enums and options


class FolderType(str, Enum):
    input = "input"
    output = "output"
    temp = "temp"


class UploadType(str, Enum):
    image = "image_upload"
    audio = "audio_upload"
    video = "video_upload"
    model = "file_upload"


class NumberDisplay(str, Enum):
    number = "number"
    slider = "slider"


class RemoteOptions:
    """Where a combo fetches its options from (a route of the server)."""

    def __init__(self, route: str, refresh_button: bool, control_after_refresh: str = "first",
                 timeout: Optional[int] = None, max_retries: Optional[int] = None, refresh: Optional[int] = None):
        self.route = route
        self.refresh_button = refresh_button
        self.control_after_refresh = control_after_refresh
        self.timeout = timeout
        self.max_retries = max_retries
        self.refresh = refresh

    def as_dict(self) -> dict:
        return _prune({
            "route": self.route,
            "refresh_button": self.refresh_button,
            "control_after_refresh": self.control_after_refresh,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "refresh": self.refresh,
        })


# ---------------------------------------------------------------------------------------------
# inputs and outputs


class _ComfyType:
    """Base of every ``io.<Type>``: holds its io_type string and its Input/Output classes."""

    Type: Any = Any
    io_type: Optional[str] = None


class _IO_V3:
    """Base of Input and Output: their io_type comes from the type they belong to."""

    Parent: Any = None

    def validate(self) -> None:
        pass

    @property
    def io_type(self) -> str:
        return self.Parent.io_type

    @property
    def Type(self) -> Any:
        return self.Parent.Type


class Input(_IO_V3):
    """An input socket (and widget, for :class:`WidgetInput`) of a V3 node."""

    def __init__(self, id: str, display_name: Optional[str] = None, optional: bool = False, tooltip: Optional[str] = None,
                 lazy: Optional[bool] = None, extra_dict: Optional[dict] = None, raw_link: Optional[bool] = None,
                 advanced: Optional[bool] = None):
        self.id = id
        self.display_name = display_name
        self.optional = optional
        self.tooltip = tooltip
        self.lazy = lazy
        self.extra_dict = extra_dict if extra_dict is not None else {}
        self.rawLink = raw_link
        self.advanced = advanced

    def as_dict(self) -> dict:
        base = _prune({
            "display_name": self.display_name,
            "optional": self.optional,
            "tooltip": self.tooltip,
            "lazy": self.lazy,
            "rawLink": self.rawLink,
            "advanced": self.advanced,
        })
        return {**base, **_prune(self.extra_dict)}

    def get_io_type(self) -> str:
        return self.io_type

    def get_all(self) -> list:
        return [self]


class WidgetInput(Input):
    """An input that shows a widget (a value typed in the UI) unless linked."""

    def __init__(self, id: str, display_name: Optional[str] = None, optional: bool = False, tooltip: Optional[str] = None,
                 lazy: Optional[bool] = None, default: Any = None, socketless: Optional[bool] = None,
                 widget_type: Optional[str] = None, force_input: Optional[bool] = None, extra_dict: Optional[dict] = None,
                 raw_link: Optional[bool] = None, advanced: Optional[bool] = None):
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced)
        self.default = default
        self.socketless = socketless
        self.widget_type = widget_type
        self.force_input = force_input

    def as_dict(self) -> dict:
        return {**super().as_dict(), **_prune({
            "default": self.default,
            "socketless": self.socketless,
            "widgetType": self.widget_type,
            "forceInput": self.force_input,
        })}

    def get_io_type(self) -> str:
        return self.widget_type if self.widget_type is not None else super().get_io_type()


class Output(_IO_V3):
    """An output socket of a V3 node."""

    def __init__(self, id: Optional[str] = None, display_name: Optional[str] = None, tooltip: Optional[str] = None,
                 is_output_list: bool = False):
        self.id = id
        self.display_name = display_name
        self.tooltip = tooltip
        self.is_output_list = is_output_list

    def as_dict(self) -> dict:
        return _prune({
            "display_name": self.display_name,
            "tooltip": self.tooltip,
            "is_output_list": self.is_output_list,
        })

    def get_io_type(self) -> str:
        return self.io_type


class DynamicInput(Input):
    """An input whose sockets depend on the values chosen (Autogrow, DynamicCombo, DynamicSlot)."""


class DynamicOutput(Output):
    """An output whose sockets depend on the values chosen."""


class ComfyTypeI(_ComfyType):
    """A type that only has inputs."""

    class Input(Input):
        pass


class ComfyTypeIO(ComfyTypeI):
    """A type with both inputs and outputs."""

    class Output(Output):
        pass


def _own_subclass(c: type) -> type:
    """A subclass of ``c`` of the same name, so that setting ``Parent`` on it leaves ``c`` alone."""
    return type(c.__name__, (c,), {"__module__": c.__module__, "__qualname__": getattr(c, "__qualname__", c.__name__)})


def comfytype(io_type: str, **kwargs: Any) -> Callable[[type], type]:
    """Class decorator: binds ``io_type`` to a type and to its ``Input``/``Output`` classes."""

    def decorate(cls: type) -> type:
        if issubclass(cls, _ComfyType):
            new_cls = cls
        else:
            attrs = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
            new_cls = type(cls.__name__, (cls, ComfyTypeIO), attrs)
        for part in ("Input", "Output"):
            inner = getattr(new_cls, part, None)
            if inner is not None:
                inner = _own_subclass(inner)
                inner.Parent = new_cls
                setattr(new_cls, part, inner)
        new_cls.io_type = io_type
        return new_cls

    return decorate


def Custom(io_type: str) -> type:
    """A type for an io_type string of the pack's own (``io.Custom("MY_TYPE")``)."""

    @comfytype(io_type=io_type)
    class CustomComfyType(ComfyTypeIO):
        pass

    return CustomComfyType


# ---------------------------------------------------------------------------------------------
# types with widget options


@comfytype(io_type="BOOLEAN")
class Boolean(ComfyTypeIO):
    Type = bool

    class Input(WidgetInput):
        """Boolean input (a toggle)."""

        def __init__(self, id: str, display_name: Optional[str] = None, optional: bool = False, tooltip: Optional[str] = None,
                     lazy: Optional[bool] = None, default: Optional[bool] = None, label_on: Optional[str] = None,
                     label_off: Optional[str] = None, socketless: Optional[bool] = None, force_input: Optional[bool] = None,
                     extra_dict: Optional[dict] = None, raw_link: Optional[bool] = None, advanced: Optional[bool] = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input, extra_dict,
                             raw_link, advanced)
            self.label_on = label_on
            self.label_off = label_off

        def as_dict(self) -> dict:
            return {**super().as_dict(), **_prune({"label_on": self.label_on, "label_off": self.label_off})}


@comfytype(io_type="INT")
class Int(ComfyTypeIO):
    Type = int

    class Input(WidgetInput):
        """Integer input."""

        def __init__(self, id: str, display_name: Optional[str] = None, optional: bool = False, tooltip: Optional[str] = None,
                     lazy: Optional[bool] = None, default: Optional[int] = None, min: Optional[int] = None,
                     max: Optional[int] = None, step: Optional[int] = None, control_after_generate: Optional[bool] = None,
                     display_mode: Optional[NumberDisplay] = None, socketless: Optional[bool] = None,
                     force_input: Optional[bool] = None, extra_dict: Optional[dict] = None, raw_link: Optional[bool] = None,
                     advanced: Optional[bool] = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input, extra_dict,
                             raw_link, advanced)
            self.min = min
            self.max = max
            self.step = step
            self.control_after_generate = control_after_generate
            self.display_mode = display_mode

        def as_dict(self) -> dict:
            return {**super().as_dict(), **_prune({
                "min": self.min,
                "max": self.max,
                "step": self.step,
                "control_after_generate": self.control_after_generate,
                "display": _enum_value(self.display_mode) if self.display_mode else None,
            })}


@comfytype(io_type="FLOAT")
class Float(ComfyTypeIO):
    Type = float

    class Input(WidgetInput):
        """Float input."""

        def __init__(self, id: str, display_name: Optional[str] = None, optional: bool = False, tooltip: Optional[str] = None,
                     lazy: Optional[bool] = None, default: Optional[float] = None, min: Optional[float] = None,
                     max: Optional[float] = None, step: Optional[float] = None, round: Optional[float] = None,
                     display_mode: Optional[NumberDisplay] = None, socketless: Optional[bool] = None,
                     force_input: Optional[bool] = None, extra_dict: Optional[dict] = None, raw_link: Optional[bool] = None,
                     advanced: Optional[bool] = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input, extra_dict,
                             raw_link, advanced)
            self.min = min
            self.max = max
            self.step = step
            self.round = round
            self.display_mode = display_mode

        def as_dict(self) -> dict:
            return {**super().as_dict(), **_prune({
                "min": self.min,
                "max": self.max,
                "step": self.step,
                "round": self.round,
                "display": _enum_value(self.display_mode),
            })}


@comfytype(io_type="STRING")
class String(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        """String input (a text box)."""

        def __init__(self, id: str, display_name: Optional[str] = None, optional: bool = False, tooltip: Optional[str] = None,
                     lazy: Optional[bool] = None, multiline: bool = False, placeholder: Optional[str] = None,
                     default: Optional[str] = None, dynamic_prompts: Optional[bool] = None, socketless: Optional[bool] = None,
                     force_input: Optional[bool] = None, extra_dict: Optional[dict] = None, raw_link: Optional[bool] = None,
                     advanced: Optional[bool] = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input, extra_dict,
                             raw_link, advanced)
            self.multiline = multiline
            self.placeholder = placeholder
            self.dynamic_prompts = dynamic_prompts

        def as_dict(self) -> dict:
            return {**super().as_dict(), **_prune({
                "multiline": self.multiline,
                "placeholder": self.placeholder,
                "dynamicPrompts": self.dynamic_prompts,
            })}


@comfytype(io_type="COMBO")
class Combo(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        """Combo input (a dropdown); ``options`` may be a list or an Enum class."""

        Type = str

        def __init__(self, id: str, options: Any = None, display_name: Optional[str] = None, optional: bool = False,
                     tooltip: Optional[str] = None, lazy: Optional[bool] = None, default: Any = None,
                     control_after_generate: Optional[bool] = None, upload: Optional[UploadType] = None,
                     image_folder: Optional[FolderType] = None, remote: Optional[RemoteOptions] = None,
                     socketless: Optional[bool] = None, extra_dict: Optional[dict] = None, raw_link: Optional[bool] = None,
                     advanced: Optional[bool] = None):
            if isinstance(options, type) and issubclass(options, Enum):
                options = [member.value for member in options]
            super().__init__(id, display_name, optional, tooltip, lazy, _enum_value(default), socketless, None, None,
                             extra_dict, raw_link, advanced)
            self.multiselect = False
            self.options = options
            self.control_after_generate = control_after_generate
            self.upload = upload
            self.image_folder = image_folder
            self.remote = remote

        def as_dict(self) -> dict:
            extra = {_enum_value(self.upload): True} if self.upload is not None else {}
            return {**super().as_dict(), **_prune({
                "multiselect": self.multiselect,
                "options": self.options,
                "control_after_generate": self.control_after_generate,
                **extra,
                "image_folder": _enum_value(self.image_folder) if self.image_folder else None,
                "remote": self.remote.as_dict() if self.remote else None,
            })}

    class Output(Output):
        def __init__(self, id: Optional[str] = None, display_name: Optional[str] = None, options: Optional[list] = None,
                     tooltip: Optional[str] = None, is_output_list: bool = False):
            super().__init__(id, display_name, tooltip, is_output_list)
            self.options = options if options is not None else []


@comfytype(io_type="COMBO")
class MultiCombo(ComfyTypeI):
    """A combo where several options may be chosen."""

    Type = List[str]

    class Input(Combo.Input):
        def __init__(self, id: str, options: list, display_name: Optional[str] = None, optional: bool = False,
                     tooltip: Optional[str] = None, lazy: Optional[bool] = None, default: Optional[list] = None,
                     placeholder: Optional[str] = None, chip: Optional[bool] = None,
                     control_after_generate: Optional[bool] = None, socketless: Optional[bool] = None,
                     extra_dict: Optional[dict] = None, raw_link: Optional[bool] = None, advanced: Optional[bool] = None):
            super().__init__(id, options, display_name, optional, tooltip, lazy, default, control_after_generate,
                             socketless=socketless, extra_dict=extra_dict, raw_link=raw_link, advanced=advanced)
            self.multiselect = True
            self.placeholder = placeholder
            self.chip = chip

        def as_dict(self) -> dict:
            return {**super().as_dict(), **_prune({
                "multi_select": self.multiselect,
                "placeholder": self.placeholder,
                "chip": self.chip,
            })}


@comfytype(io_type="WEBCAM")
class Webcam(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        """Webcam capture input."""

        Type = str

        def __init__(self, id: str, display_name: Optional[str] = None, optional: bool = False, tooltip: Optional[str] = None,
                     lazy: Optional[bool] = None, default: Optional[str] = None, socketless: Optional[bool] = None,
                     extra_dict: Optional[dict] = None, raw_link: Optional[bool] = None, advanced: Optional[bool] = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, None, extra_dict,
                             raw_link, advanced)


# ---------------------------------------------------------------------------------------------
# the plain types, from the one table


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


def _plain_type(row: dict) -> type:
    attrs: Dict[str, Any] = {"__module__": __name__, "__doc__": f"``{row['io_type']}`` values."}
    if row.get("widget"):
        attrs["Input"] = _widget_input_class(row.get("options") or [])
    cls = type(row["cls"], (ComfyTypeIO,), attrs)
    cls.kind = row.get("kind")
    cls.serializable = row.get("serializable", True)
    return comfytype(io_type=row["io_type"])(cls)


_PLAIN: Dict[str, type] = {}
for _row in IO_TYPES:
    if _row["cls"] in globals():
        continue
    _PLAIN[_row["cls"]] = _plain_type(_row)
globals().update(_PLAIN)

AnyType = _PLAIN.get("AnyType") or Custom("*")


# ---------------------------------------------------------------------------------------------
# inputs of several types, matched types, dynamic inputs


@comfytype(io_type="COMFY_MULTITYPED_V3")
class MultiType(_ComfyType):
    Type = Any

    class Input(Input):
        """An input accepting several types; ``id`` may be an Input whose widget it shows."""

        def __init__(self, id: Any, types: list, display_name: Optional[str] = None, optional: bool = False,
                     tooltip: Optional[str] = None, lazy: Optional[bool] = None, extra_dict: Optional[dict] = None,
                     raw_link: Optional[bool] = None, advanced: Optional[bool] = None):
            self.input_override = None
            if isinstance(id, Input):
                self.input_override = copy.copy(id)
                optional = True if id.optional is True else optional
                tooltip = id.tooltip if id.tooltip is not None else tooltip
                display_name = id.display_name if id.display_name is not None else display_name
                lazy = id.lazy if id.lazy is not None else lazy
                id = id.id
                if isinstance(self.input_override, WidgetInput):
                    self.input_override.widget_type = self.input_override.get_io_type()
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced)
            self._io_types = types

        @property
        def io_types(self) -> list:
            return [t if isinstance(t, type) else type(t) for t in self._io_types]

        def get_io_type(self) -> str:
            names = [t.io_type for t in self.io_types]
            if self.input_override is not None:
                names.insert(0, self.input_override.get_io_type())
            return ",".join(dict.fromkeys(names))

        def as_dict(self) -> dict:
            if self.input_override is not None:
                return {**self.input_override.as_dict(), **super().as_dict()}
            return super().as_dict()


@comfytype(io_type="COMFY_MATCHTYPE_V3")
class MatchType(ComfyTypeIO):
    class Template:
        """Ties inputs and outputs to one type chosen when linking."""

        def __init__(self, template_id: str, allowed_types: Any = None):
            self.template_id = template_id
            if allowed_types is None:
                allowed_types = [AnyType]
            elif not isinstance(allowed_types, (list, tuple)):
                allowed_types = [allowed_types]
            for t in allowed_types:
                ok = issubclass(t, _ComfyType) if isinstance(t, type) else isinstance(t, _ComfyType)
                if not ok:
                    raise ValueError(f"Allowed types must be ComfyTypes (io.Image, io.Int, …), got {t!r}.")
            self.allowed_types = list(allowed_types)

        def as_dict(self) -> dict:
            return {"template_id": self.template_id, "allowed_types": ",".join(t.io_type for t in self.allowed_types)}

    class Input(Input):
        def __init__(self, id: str, template: "MatchType.Template", display_name: Optional[str] = None,
                     optional: bool = False, tooltip: Optional[str] = None, lazy: Optional[bool] = None,
                     extra_dict: Optional[dict] = None, raw_link: Optional[bool] = None, advanced: Optional[bool] = None):
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced)
            self.template = template

        def as_dict(self) -> dict:
            return {**super().as_dict(), "template": self.template.as_dict()}

    class Output(Output):
        def __init__(self, template: "MatchType.Template", id: Optional[str] = None, display_name: str = "MATCHTYPE",
                     tooltip: Optional[str] = None, is_output_list: bool = False):
            super().__init__(id, display_name, tooltip, is_output_list)
            self.template = template

        def as_dict(self) -> dict:
            return {**super().as_dict(), "template": self.template.as_dict()}


def _v1_input_dict(inputs: list) -> dict:
    out: dict = {"required": {}}
    for i in inputs:
        add_to_dict_v1(i, out)
    return out


@comfytype(io_type="COMFY_AUTOGROW_V3")
class Autogrow(ComfyTypeI):
    """Inputs that grow one at a time as the user links them (``names`` or ``prefix0..N``)."""

    Type = Dict[str, Any]
    _MaxNames = 100

    class _Template:
        def __init__(self, input: Input):
            if isinstance(input, DynamicInput):
                raise ValueError("An Autogrow template cannot itself be a dynamic input.")
            self.input = copy.copy(input)
            if isinstance(self.input, WidgetInput):
                self.input.force_input = True
            self.names: list = []

        def get_all(self) -> list:
            result = []
            for name in self.names:
                item = copy.copy(self.input)
                item.id = name
                result.append(item)
            return result

        def as_dict(self) -> dict:
            return {"input": _v1_input_dict([self.input])}

        def validate(self) -> None:
            self.input.validate()

    class TemplatePrefix(_Template):
        def __init__(self, input: Input, prefix: str, min: int = 1, max: int = 10):
            super().__init__(input)
            if min < 0 or max < 1 or max > Autogrow._MaxNames:
                raise ValueError(f"Autogrow needs 0 <= min and 1 <= max <= {Autogrow._MaxNames}, got min={min} max={max}.")
            self.prefix, self.min, self.max = prefix, min, max
            self.names = [f"{prefix}{i}" for i in range(max)]

        def as_dict(self) -> dict:
            return {**super().as_dict(), "prefix": self.prefix, "min": self.min, "max": self.max}

    class TemplateNames(_Template):
        def __init__(self, input: Input, names: list, min: int = 1):
            super().__init__(input)
            if min < 0:
                raise ValueError(f"Autogrow needs min >= 0, got {min}.")
            self.names = list(names)[: Autogrow._MaxNames]
            self.min = min

        def as_dict(self) -> dict:
            return {**super().as_dict(), "names": self.names, "min": self.min}

    class Input(DynamicInput):
        def __init__(self, id: str, template: Any, display_name: Optional[str] = None, optional: bool = False,
                     tooltip: Optional[str] = None, lazy: Optional[bool] = None, extra_dict: Optional[dict] = None):
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict)
            self.template = template

        def as_dict(self) -> dict:
            return {**super().as_dict(), "template": self.template.as_dict()}

        def get_all(self) -> list:
            return [self] + self.template.get_all()

        def validate(self) -> None:
            self.template.validate()


@comfytype(io_type="COMFY_DYNAMICCOMBO_V3")
class DynamicCombo(ComfyTypeI):
    """A combo whose chosen option brings its own inputs."""

    Type = Dict[str, Any]

    class Option:
        def __init__(self, key: str, inputs: list):
            self.key = key
            self.inputs = inputs

        def as_dict(self) -> dict:
            return {"key": self.key, "inputs": _v1_input_dict(self.inputs)}

    class Input(DynamicInput):
        def __init__(self, id: str, options: list, display_name: Optional[str] = None, optional: bool = False,
                     tooltip: Optional[str] = None, lazy: Optional[bool] = None, extra_dict: Optional[dict] = None):
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict)
            self.options = options

        def get_all(self) -> list:
            return [self] + [i for o in self.options for i in o.inputs]

        def as_dict(self) -> dict:
            return {**super().as_dict(), "options": [o.as_dict() for o in self.options]}

        def validate(self) -> None:
            for o in self.options:
                for i in o.inputs:
                    i.validate()


@comfytype(io_type="COMFY_DYNAMICSLOT_V3")
class DynamicSlot(ComfyTypeI):
    """A socket that, once linked, brings more inputs."""

    Type = Dict[str, Any]

    class Input(DynamicInput):
        def __init__(self, slot: Input, inputs: list, display_name: Optional[str] = None, tooltip: Optional[str] = None,
                     lazy: Optional[bool] = None, extra_dict: Optional[dict] = None):
            if isinstance(slot, DynamicInput):
                raise ValueError("A DynamicSlot's slot cannot itself be a dynamic input.")
            self.slot = copy.copy(slot)
            if self.slot.display_name is None:
                self.slot.display_name = display_name
            if self.slot.tooltip is None:
                self.slot.tooltip = tooltip
            if self.slot.lazy is None:
                self.slot.lazy = lazy
            super().__init__(slot.id, self.slot.display_name, True, self.slot.tooltip, self.slot.lazy, self.slot.extra_dict)
            self.inputs = inputs
            self.force_input = None
            if isinstance(self.slot, WidgetInput):
                self.force_input = True
                self.slot.force_input = True

        def get_all(self) -> list:
            return [self.slot] + list(self.inputs)

        def as_dict(self) -> dict:
            return {**super().as_dict(), **_prune({
                "slotType": str(self.slot.get_io_type()),
                "inputs": _v1_input_dict(self.inputs),
                "forceInput": self.force_input,
            })}

        def validate(self) -> None:
            self.slot.validate()
            for i in self.inputs:
                i.validate()


# ---------------------------------------------------------------------------------------------
# hidden inputs


class Hidden(str, Enum):
    """Values the executor hands to nodes that ask for them."""

    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"
    dynprompt = "DYNPROMPT"
    auth_token_comfy_org = "AUTH_TOKEN_COMFY_ORG"
    api_key_comfy_org = "API_KEY_COMFY_ORG"


class HiddenHolder:
    """``cls.hidden`` during ``execute``: the hidden values, ``None`` for those not given."""

    def __init__(self, unique_id: Any = None, prompt: Any = None, extra_pnginfo: Any = None, dynprompt: Any = None,
                 auth_token_comfy_org: Any = None, api_key_comfy_org: Any = None, **kwargs: Any):
        self.unique_id = unique_id
        self.prompt = prompt
        self.extra_pnginfo = extra_pnginfo
        self.dynprompt = dynprompt
        self.auth_token_comfy_org = auth_token_comfy_org
        self.api_key_comfy_org = api_key_comfy_org
        for k, v in kwargs.items():
            setattr(self, k, v)

    def __getattr__(self, key: str) -> Any:
        return None

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "HiddenHolder":
        """From a dict keyed by :class:`Hidden` values (``"UNIQUE_ID"``) or names (``"unique_id"``)."""
        d = d or {}
        values = {}
        for h in Hidden:
            if h.value in d:
                values[h.name] = d[h.value]
            elif h.name in d:
                values[h.name] = d[h.name]
        return cls(**values)


# ---------------------------------------------------------------------------------------------
# schema


@dataclass
class Schema:
    """What a V3 node is: its id, inputs, outputs and flags."""

    node_id: str
    display_name: Optional[str] = None
    category: str = "sd"
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    hidden: list = field(default_factory=list)
    description: str = ""
    search_aliases: list = field(default_factory=list)
    essentials_category: Optional[str] = None
    is_input_list: bool = False
    is_output_node: bool = False
    has_intermediate_output: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_dev_only: bool = False
    is_api_node: bool = False
    price_badge: Any = None
    not_idempotent: bool = False
    enable_expand: bool = False
    accept_all_inputs: bool = False

    def validate(self) -> None:
        """Checks that input and output ids are unique, within and across both lists."""
        nested: list = []
        for i in self.inputs:
            if not isinstance(i, DynamicInput):
                nested.extend(i.get_all())
        input_ids = [i.id for i in nested]
        output_ids = [o.id for o in self.outputs]
        problems = []
        dup_in = [k for k, n in Counter(input_ids).items() if n > 1]
        dup_out = [k for k, n in Counter(output_ids).items() if n > 1]
        if dup_in:
            problems.append(f"Input ids must be unique, but {dup_in} are not.")
        if dup_out:
            problems.append(f"Output ids must be unique, but {dup_out} are not.")
        both = set(input_ids) & set(output_ids)
        if both:
            problems.append(f"Ids must be unique between inputs and outputs, but {both} are not.")
        if problems:
            raise ValueError(f"Schema of node {self.node_id!r} is invalid: " + " ".join(problems))
        for i in self.inputs:
            i.validate()
        for o in self.outputs:
            o.validate()

    def finalize(self) -> None:
        """Adds the hidden inputs output and API nodes need, and default ids to outputs."""
        self.inputs = list(self.inputs or [])
        self.outputs = list(self.outputs or [])
        self.hidden = [h if isinstance(h, Hidden) else Hidden(h) for h in (self.hidden or [])]
        if self.is_api_node:
            for h in (Hidden.auth_token_comfy_org, Hidden.api_key_comfy_org):
                if h not in self.hidden:
                    self.hidden.append(h)
        if self.is_output_node:
            for h in (Hidden.prompt, Hidden.extra_pnginfo):
                if h not in self.hidden:
                    self.hidden.append(h)
        for n, o in enumerate(self.outputs):
            if o.id is None:
                o.id = f"_{n}_{o.io_type}_"

    def v1_inputs(self) -> dict:
        """``INPUT_TYPES()`` as a V1 node would return it, hidden inputs included."""
        result = _v1_input_dict(self.inputs)
        for h in self.hidden:
            result.setdefault("hidden", {})[h.name] = (h.value,)
        return result

    def get_v1_info(self, cls: type) -> dict:
        """The node's ``/object_info`` entry, as ComfyUI emits it for V3 nodes."""
        inputs = self.v1_inputs()
        outputs = self.outputs or []
        matchtypes = [o.template.template_id if isinstance(o, MatchType.Output) else None for o in outputs]
        return {
            "input": inputs,
            "input_order": {key: list(value.keys()) for key, value in inputs.items()},
            "is_input_list": self.is_input_list,
            "output": [o.io_type for o in outputs],
            "output_is_list": [o.is_output_list for o in outputs],
            "output_name": [o.display_name if o.display_name else o.io_type for o in outputs],
            "output_tooltips": [o.tooltip if o.tooltip else None for o in outputs],
            "output_matchtypes": matchtypes if any(m is not None for m in matchtypes) else None,
            "name": self.node_id,
            "display_name": self.display_name,
            "description": self.description,
            "python_module": getattr(cls, "RELATIVE_PYTHON_MODULE", None) or "nodes",
            "category": self.category,
            "output_node": self.is_output_node,
            "has_intermediate_output": self.has_intermediate_output,
            "deprecated": self.is_deprecated,
            "experimental": self.is_experimental,
            "dev_only": self.is_dev_only,
            "api_node": self.is_api_node,
            "price_badge": self.price_badge.as_dict(self.inputs) if self.price_badge is not None else None,
            "search_aliases": self.search_aliases if self.search_aliases else None,
            "essentials_category": self.essentials_category,
        }

    def get_v3_info(self, cls: type) -> dict:
        """The V3 form of the entry: inputs and outputs keyed by id with their full options."""
        return {
            "input": {i.id: (i.get_io_type(), i.as_dict()) for i in self.inputs},
            "output": {o.id: (o.get_io_type(), o.as_dict()) for o in self.outputs},
            "hidden": [h.value for h in self.hidden],
            "name": self.node_id,
            "display_name": self.display_name,
            "description": self.description,
            "category": self.category,
            "output_node": self.is_output_node,
            "deprecated": self.is_deprecated,
            "experimental": self.is_experimental,
            "api_node": self.is_api_node,
            "python_module": getattr(cls, "RELATIVE_PYTHON_MODULE", None) or "nodes",
        }


def add_to_dict_v1(i: Input, d: dict) -> None:
    """Puts one input into a V1 ``INPUT_TYPES`` dict (``required`` or ``optional``)."""
    key = "optional" if i.optional else "required"
    options = i.as_dict()
    options.pop("optional", None)
    d.setdefault(key, {})[i.id] = (i.get_io_type(), options)


def add_to_dict_v3(io: Any, d: dict) -> None:
    """Puts one input or output into a V3 dict keyed by id."""
    d[io.id] = (io.get_io_type(), io.as_dict())


# ---------------------------------------------------------------------------------------------
# node output


class _UIOutput:
    """Base of the ``ui.*`` helpers: something that becomes the node's ``ui`` dict."""

    def as_dict(self) -> dict:
        raise NotImplementedError


class NodeOutput:
    """What ``execute`` returns: the output values in order, and optionally ``ui``."""

    def __init__(self, *args: Any, ui: Any = None, expand: Optional[dict] = None, block_execution: Optional[str] = None):
        self.args = args
        self.ui = ui
        self.expand = expand
        self.block_execution = block_execution

    @property
    def result(self) -> Optional[tuple]:
        return self.args if len(self.args) > 0 else None

    @classmethod
    def from_dict(cls, data: dict) -> "NodeOutput":
        return cls(*tuple(data.get("result", ())), ui=data.get("ui"), expand=data.get("expand"))

    def __getitem__(self, index: int) -> Any:
        return self.args[index]


def _normalize_output(node_cls: type, value: Any) -> NodeOutput:
    if value is None:
        value = NodeOutput()
    elif isinstance(value, NodeOutput):
        pass
    elif isinstance(value, tuple):
        value = NodeOutput(*value)
    elif isinstance(value, dict):
        value = NodeOutput.from_dict(value)
    else:
        raise TypeError(f"Node {node_cls.__name__} returned {type(value).__name__}; return io.NodeOutput(...), a tuple or a dict.")
    if value.expand is not None and not (node_cls.SCHEMA and node_cls.SCHEMA.enable_expand):
        raise ValueError(f"Node {node_cls.__name__} returned 'expand' but its Schema does not set enable_expand=True.")
    return value


# ---------------------------------------------------------------------------------------------
# the node base class


class _ComfyNodeInternal:
    """Marks V3 node classes (``issubclass(cls, _ComfyNodeInternal)``)."""


class ComfyNode(_ComfyNodeInternal):
    """Base class of every V3 node: override ``define_schema`` and ``execute`` (classmethods)."""

    RELATIVE_PYTHON_MODULE: Optional[str] = None
    SCHEMA: Optional[Schema] = None
    hidden: Optional[HiddenHolder] = None

    @classmethod
    def define_schema(cls) -> Schema:
        """Return this node's :class:`Schema`."""
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs: Any) -> NodeOutput:
        """Do the node's work; may be ``async``."""
        raise NotImplementedError

    @classmethod
    def validate_inputs(cls, **kwargs: Any) -> Any:
        """Optional: ``True``, or a message saying why these inputs are refused (V1's VALIDATE_INPUTS)."""
        raise NotImplementedError

    @classmethod
    def fingerprint_inputs(cls, **kwargs: Any) -> Any:
        """Optional: a value that changes when the node must run again (V1's IS_CHANGED)."""
        raise NotImplementedError

    @classmethod
    def check_lazy_status(cls, **kwargs: Any) -> list:
        """Optional: the names of lazy inputs still needed."""
        return [name for name, value in kwargs.items() if value is None]

    def __init__(self) -> None:
        type(self).VALIDATE_CLASS()

    @classmethod
    def GET_BASE_CLASS(cls) -> type:
        return ComfyNode

    @classmethod
    def VALIDATE_CLASS(cls) -> None:
        if not _overrides(cls, "define_schema", ComfyNode):
            raise TypeError(f"Node class {cls.__name__} defines no define_schema classmethod.")
        if not _overrides(cls, "execute", ComfyNode):
            raise TypeError(f"Node class {cls.__name__} defines no execute classmethod.")

    @classmethod
    def FINALIZE_SCHEMA(cls) -> Schema:
        schema = cls.define_schema()
        schema.finalize()
        return schema

    @classmethod
    def GET_SCHEMA(cls) -> Schema:
        """The validated, finalized schema; also fills the V1 class attributes."""
        cls.VALIDATE_CLASS()
        schema = cls.FINALIZE_SCHEMA()
        schema.validate()
        cls.SCHEMA = schema
        return schema

    @classmethod
    def _schema(cls) -> Schema:
        s = cls.__dict__.get("SCHEMA")
        return s if s is not None else cls.GET_SCHEMA()

    @classmethod
    def GET_NODE_INFO_V1(cls) -> dict:
        return cls.GET_SCHEMA().get_v1_info(cls)

    @classmethod
    def GET_NODE_INFO_V3(cls) -> dict:
        return cls.GET_SCHEMA().get_v3_info(cls)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return cls.FINALIZE_SCHEMA().v1_inputs()

    @classmethod
    def PREPARE_CLASS_CLONE(cls, hidden: Optional[dict]) -> type:
        """A throw-away subclass carrying this run's hidden values as ``cls.hidden``."""
        clone = type(cls.__name__, (cls,), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
        clone.hidden = HiddenHolder.from_dict(hidden)
        clone.SCHEMA = cls._schema()
        return clone

    @classmethod
    def EXECUTE_NORMALIZED(cls, *args: Any, **kwargs: Any) -> NodeOutput:
        return _normalize_output(cls, cls.execute(*args, **kwargs))

    @classmethod
    async def EXECUTE_NORMALIZED_ASYNC(cls, *args: Any, **kwargs: Any) -> NodeOutput:
        return _normalize_output(cls, await cls.execute(*args, **kwargs))

    @classproperty
    def FUNCTION(cls) -> str:  # noqa: N802
        return "EXECUTE_NORMALIZED_ASYNC" if inspect.iscoroutinefunction(cls.execute) else "EXECUTE_NORMALIZED"

    @classproperty
    def DESCRIPTION(cls) -> str:  # noqa: N802
        return cls._schema().description

    @classproperty
    def CATEGORY(cls) -> str:  # noqa: N802
        return cls._schema().category

    @classproperty
    def EXPERIMENTAL(cls) -> bool:  # noqa: N802
        return cls._schema().is_experimental

    @classproperty
    def DEPRECATED(cls) -> bool:  # noqa: N802
        return cls._schema().is_deprecated

    @classproperty
    def API_NODE(cls) -> bool:  # noqa: N802
        return cls._schema().is_api_node

    @classproperty
    def OUTPUT_NODE(cls) -> bool:  # noqa: N802
        return cls._schema().is_output_node

    @classproperty
    def INPUT_IS_LIST(cls) -> bool:  # noqa: N802
        return cls._schema().is_input_list

    @classproperty
    def NOT_IDEMPOTENT(cls) -> bool:  # noqa: N802
        return cls._schema().not_idempotent

    @classproperty
    def RETURN_TYPES(cls) -> list:  # noqa: N802
        return [o.io_type for o in cls._schema().outputs]

    @classproperty
    def RETURN_NAMES(cls) -> list:  # noqa: N802
        return [o.display_name if o.display_name else o.io_type for o in cls._schema().outputs]

    @classproperty
    def OUTPUT_IS_LIST(cls) -> list:  # noqa: N802
        return [o.is_output_list for o in cls._schema().outputs]

    @classproperty
    def OUTPUT_TOOLTIPS(cls) -> list:  # noqa: N802
        return [o.tooltip if o.tooltip else None for o in cls._schema().outputs]


ComfyNodeV3 = ComfyNode

__all__ = [
    "FolderType", "UploadType", "RemoteOptions", "NumberDisplay",
    "comfytype", "Custom", "Input", "WidgetInput", "Output", "DynamicInput", "DynamicOutput",
    "ComfyTypeI", "ComfyTypeIO",
    "Boolean", "Int", "Float", "String", "Combo", "MultiCombo", "Webcam",
    *sorted(_PLAIN),
    "MultiType", "MatchType", "Autogrow", "DynamicCombo", "DynamicSlot",
    "HiddenHolder", "Hidden", "Schema", "ComfyNode", "NodeOutput", "add_to_dict_v1", "add_to_dict_v3",
]
