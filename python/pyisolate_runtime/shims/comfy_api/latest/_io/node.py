"""``io.ComfyNode``, the base class of every V3 node: it derives the V1 class attributes
(``INPUT_TYPES``, ``RETURN_TYPES``, ``FUNCTION``, …) from the node's schema, so that V1 and
V3 nodes run through one executor.
"""
from __future__ import annotations

import inspect
from typing import Any, Optional

from .base import _overrides, classproperty
from .schema import HiddenHolder, NodeOutput, Schema, _normalize_output

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
