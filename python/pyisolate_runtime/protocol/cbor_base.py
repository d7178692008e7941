"""What the CBOR encoder and decoder share: the codec's own tags and value types, its
errors, and the registries of extensions (see :mod:`pyisolate_runtime.cbor`).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = [
    "CBORDecodeError",
    "CBOREncodeError",
    "DecodeFn",
    "EncodeFn",
    "Raw",
    "Simple",
    "TAG_FLOAT",
    "TAG_MAP",
    "TAG_TUPLE",
    "Tagged",
    "register_encoder",
    "register_encoder_predicate",
    "register_tag",
]

TAG_TUPLE = 41500
"""Our tag for a Python tuple (content: an array)."""

TAG_FLOAT = 41506
"""Our tag for a whole-number float (content: a float, or an integer a JavaScript peer wrote)."""

TAG_MAP = 259
"""The standard tag of a map whose keys are not all text or numbers (content: the map). The
encoder puts it around a ``dict`` with a tuple, bytes or other non-scalar key, so that a
JavaScript peer decodes it as a ``Map`` and keeps those keys; the decoder accepts it."""

EncodeFn = Callable[[Any], "tuple[int, Any]"]
"""An encoder extension: object → ``(tag, content)``; the content is encoded in turn."""
DecodeFn = Callable[[Any], Any]
"""A tag extension: decoded content → object."""


class CBORDecodeError(ValueError):
    """The input is not well-formed CBOR (or uses something this codec refuses)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte offset {offset})")
        self.offset = offset


class CBOREncodeError(TypeError):
    """An object has no CBOR encoding (no built-in rule and no registered encoder)."""


class Tagged:
    """A tagged item whose tag has no registered decoder."""

    __slots__ = ("tag", "value")

    def __init__(self, tag: int, value: Any) -> None:
        self.tag = tag
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tagged) and other.tag == self.tag and other.value == self.value

    def __hash__(self) -> int:
        return hash((self.tag, repr(self.value)))

    def __repr__(self) -> str:
        return f"Tagged({self.tag}, {self.value!r})"


class Raw:
    """An item encoded already: its bytes are written as they are (one whole CBOR item).

    Lets a value be encoded ahead of the message that carries it, where an error can still
    name which part failed (a node's output, say). ``keep`` is the value it was encoded from,
    held as long as this is: proxies in it stay alive until the message is sent, so their
    release (sent when they die) can never reach the host before the message that holds them."""

    __slots__ = ("data", "keep")

    def __init__(self, data: bytes, keep: object = None) -> None:
        self.data = data
        self.keep = keep

    def __repr__(self) -> str:
        return f"Raw({len(self.data)} bytes)"


class Simple(int):
    """A CBOR simple value other than false/true/null/undefined."""

    def __repr__(self) -> str:
        return f"Simple({int(self)})"


# The codec's types are imported, and errors reported, as pyisolate_runtime.cbor's.
for _t in (CBORDecodeError, CBOREncodeError, Raw, Tagged, Simple):
    _t.__module__ = "pyisolate_runtime.cbor"
del _t


# --------------------------------------------------------------------------- registries

# Filled by the register_* functions below, read by the encoder and the decoder.
exact_encoders: dict[type, EncodeFn] = {}
isinstance_encoders: list[tuple[type, EncodeFn]] = []
predicate_encoders: list[tuple[Callable[[Any], bool], EncodeFn]] = []
tag_decoders: dict[int, DecodeFn] = {}


def register_encoder(pytype: type, fn: EncodeFn) -> None:
    """Encode instances of ``pytype`` (exact type first, subclasses through ``isinstance``)
    as ``fn(obj) -> (tag, content)``. A later registration for the same type replaces the
    earlier one."""
    exact_encoders[pytype] = fn
    for i, (t, _) in enumerate(isinstance_encoders):
        if t is pytype:
            isinstance_encoders[i] = (pytype, fn)
            break
    else:
        isinstance_encoders.append((pytype, fn))


def register_encoder_predicate(pred: Callable[[Any], bool], fn: EncodeFn) -> None:
    """Encode objects for which ``pred(obj)`` is true as ``fn(obj) -> (tag, content)``.
    Predicates are tried after exact types and ``isinstance`` rules, in registration order;
    they let a module recognise types it does not want to import (``torch.Tensor``)."""
    predicate_encoders.append((pred, fn))


def register_tag(tag: int, fn: DecodeFn) -> None:
    """Decode items tagged ``tag`` as ``fn(content)``, where ``content`` is already decoded."""
    if tag in (2, 3, TAG_MAP, TAG_TUPLE, TAG_FLOAT):
        raise ValueError(f"tag {tag} is built into the codec and cannot be replaced")
    tag_decoders[tag] = fn
