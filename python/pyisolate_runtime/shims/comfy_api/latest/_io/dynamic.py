"""The io types whose sockets are not fixed: inputs of several types (:class:`MultiType`),
types matched when linking (:class:`MatchType`), and inputs that grow or depend on the value
chosen (:class:`Autogrow`, :class:`DynamicCombo`, :class:`DynamicSlot`).
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Optional

from .base import ComfyTypeI, ComfyTypeIO, DynamicInput, Input, Output, WidgetInput, _ComfyType, _prune, _v1_input_dict, comfytype
from .io_types import AnyType



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
