"""The building blocks of the V3 ``io`` module: helpers, enums and options, the Input and
Output classes every type's sockets derive from, and :func:`comfytype`, which binds an
io_type string to a type and its sockets.
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Callable, Optional

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
# V1 input dicts


def _v1_input_dict(inputs: list) -> dict:
    """``INPUT_TYPES()``-style dict of ``inputs`` (``required`` always present)."""
    out: dict = {"required": {}}
    for i in inputs:
        add_to_dict_v1(i, out)
    return out


def add_to_dict_v1(i: Input, d: dict) -> None:
    """Puts one input into a V1 ``INPUT_TYPES`` dict (``required`` or ``optional``)."""
    key = "optional" if i.optional else "required"
    options = i.as_dict()
    options.pop("optional", None)
    d.setdefault(key, {})[i.id] = (i.get_io_type(), options)


def add_to_dict_v3(io: Any, d: dict) -> None:
    """Puts one input or output into a V3 dict keyed by id."""
    d[io.id] = (io.get_io_type(), io.as_dict())
