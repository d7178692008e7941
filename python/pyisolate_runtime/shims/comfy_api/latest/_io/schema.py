"""What a V3 node declares and returns: its :class:`Schema` (with the hidden inputs it asks
for) and :class:`NodeOutput`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from .base import DynamicInput, _v1_input_dict
from .dynamic import MatchType

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
