"""The checks of node values against their io types, over the generated table.

:func:`check_crossing` runs where a value is about to leave its process (a node's outputs
before they are sent to the host): in a pyisolate process every object crosses (objects
without a wire form as remote handles, registered in :data:`ENCODABLE`); elsewhere it
refuses opaque values (MODEL, CLIP, VAE, ...) with :class:`OpaqueTypeError` naming the type.
:func:`validate` checks a value's shape and raises :class:`IoTypeError`. The table they read is :mod:`pyisolate_runtime.io_types_gen`
(generated from ``codegen/io_types.ts``), which re-exports them; import them from there.

Standard library only; torch and numpy are looked up in ``sys.modules``, never imported.
"""

from __future__ import annotations

from typing import Any, Callable

from ..rpc.errors import type_name
from .libs import import_torch, is_ndarray, is_numpy_scalar, is_torch_tensor

__all__ = [
    "ENCODABLE",
    "IoTypeError",
    "OpaqueTypeError",
    "check_crossing",
    "index_rows",
    "is_opaque",
    "is_serializable",
    "is_tensor",
    "validate",
]

ENCODABLE: list[Callable[[Any], bool]] = []
"""Predicates for further leaf values the process codec can encode (registered by runtime
modules: the remote handles extension registers one that accepts any object); a value
passing one of them crosses."""


def index_rows(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """``row[key]`` → the first row with that value (COMBO: ``Combo``, not ``MultiCombo``)."""
    index: dict[str, dict[str, Any]] = {}
    for row in rows:
        index.setdefault(row[key], row)
    return index


def _table() -> Any:
    # The generated module imports this one at its top, so it is looked up when a check
    # runs, not when this module is imported.
    from .. import io_types_gen

    return io_types_gen


class IoTypeError(ValueError):
    """A value does not have the shape its io type requires."""

    def __init__(self, io_type: str, path: str, problem: str, where: str = "") -> None:
        self.io_type = io_type
        self.path = path
        self.problem = problem
        at = f" (at value{path})" if path else ""
        super().__init__(f"{io_type} value{where} is not valid: {problem}{at}.")


class OpaqueTypeError(TypeError):
    """A value of an opaque io type (or an opaque part of a value) would cross a process boundary."""

    def __init__(self, io_type: str, path: str, py_type: str, where: str = "") -> None:
        self.io_type = io_type
        self.path = path
        self.py_type = py_type
        if is_opaque(io_type):
            what = f"it is a Python object ({py_type}) that stays in the process that made it"
        else:
            what = f"value{path} is a {py_type} object, which has no cross-process form"
        super().__init__(
            f"{io_type} value cannot cross a process boundary{where}: {what}, and this process "
            "has no object table to keep it in (objects cross as remote handles only in a process "
            "a pyisolate host started). Run the nodes through a pyisolate host, or pass tensors and "
            "plain values instead."
        )


# Reported (and found again by restore_exception) under the name they are imported by.
IoTypeError.__module__ = OpaqueTypeError.__module__ = "pyisolate_runtime.io_types_gen"


def _type_name(v: Any) -> str:
    return type_name(type(v))


def _where(node: str | None, slot: str | None) -> str:
    parts = []
    if node:
        parts.append(f"node {node!r}")
    if slot:
        parts.append(f"slot {slot!r}")
    return f" ({', '.join(parts)})" if parts else ""


def is_tensor(v: Any) -> bool:
    """Whether ``v`` is a torch tensor or a numpy array (without importing either)."""
    return is_torch_tensor(v) or is_ndarray(v)


def _dtype_family(v: Any) -> str:
    if is_torch_tensor(v):
        torch = import_torch()  # loaded already: v is one of its tensors
        if v.dtype == torch.bool:
            return "bool"
        if v.dtype.is_floating_point:
            return "floating"
        if v.dtype.is_complex:
            return "complex"
        return "integral"
    kind = v.dtype.kind
    return {"b": "bool", "f": "floating", "c": "complex", "i": "integral", "u": "integral"}.get(kind, "other")


def _check(io_type: str, shape: dict[str, Any], v: Any, path: str, where: str) -> None:
    t = shape["t"]

    def fail(problem: str) -> None:
        raise IoTypeError(io_type, path, problem, where)

    if t == "bool":
        if not isinstance(v, bool):
            fail(f"expected a bool, got {_type_name(v)}")
    elif t == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            fail(f"expected an int, got {_type_name(v)}")
    elif t in ("float", "number"):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            fail(f"expected a number, got {_type_name(v)}")
    elif t == "str":
        if not isinstance(v, str):
            fail(f"expected a str, got {_type_name(v)}")
    elif t == "none":
        if v is not None:
            fail(f"expected None, got {_type_name(v)}")
    elif t == "tensor":
        if not is_tensor(v):
            fail(f"expected a tensor, got {_type_name(v)}")
        rank = shape.get("rank")
        if rank is not None and v.ndim not in rank:
            fail(f"expected a tensor of rank {' or '.join(map(str, rank))}, got shape {list(v.shape)}")
        dtype = shape.get("dtype")
        if dtype is not None and _dtype_family(v) != dtype:
            fail(f"expected a {dtype} tensor, got dtype {v.dtype}")
    elif t == "dict":
        if not isinstance(v, dict):
            fail(f"expected a dict, got {_type_name(v)}")
        for key, field in shape["fields"].items():
            if key not in v:
                if not field.get("optional"):
                    fail(f"missing key {key!r}")
                continue
            _check(io_type, field["shape"], v[key], f"{path}[{key!r}]", where)
        rest = shape.get("rest")
        if rest is not None:
            for key, item in v.items():
                if key not in shape["fields"]:
                    _check(io_type, rest, item, f"{path}[{key!r}]", where)
    elif t == "map":
        if not isinstance(v, dict):
            fail(f"expected a dict, got {_type_name(v)}")
        for key, item in v.items():
            if not isinstance(key, str):
                fail(f"expected str keys, got {_type_name(key)}")
            _check(io_type, shape["value"], item, f"{path}[{key!r}]", where)
    elif t == "list":
        if not isinstance(v, (list, tuple)):
            fail(f"expected a list, got {_type_name(v)}")
        for i, item in enumerate(v):
            _check(io_type, shape["item"], item, f"{path}[{i}]", where)
    elif t == "seq":
        items = shape["items"]
        if not isinstance(v, (list, tuple)):
            fail(f"expected a sequence of {len(items)} items, got {_type_name(v)}")
        if len(v) != len(items):
            fail(f"expected {len(items)} items, got {len(v)}")
        for i, (s, item) in enumerate(zip(items, v)):
            _check(io_type, s, item, f"{path}[{i}]", where)
    elif t == "union":
        errors = []
        for s in shape["of"]:
            try:
                _check(io_type, s, v, path, where)
                return
            except IoTypeError as e:
                errors.append(e.problem)
        fail("; or ".join(errors))
    elif t == "opaque":
        pass


def validate(io_type: str, value: Any, node: str | None = None, slot: str | None = None) -> None:
    """Checks ``value`` against the shape of ``io_type`` (several definitions, as COMBO: any of them).

    Unknown (custom) io types accept anything. Raises :class:`IoTypeError` naming the type, the
    path inside the value and the problem.
    """
    where = _where(node, slot)
    defs = [t for t in _table().IO_TYPES if t["io_type"] == io_type]
    if not defs:
        return
    errors: list[IoTypeError] = []
    for d in defs:
        try:
            _check(io_type, d["shape"], value, "", where)
            return
        except IoTypeError as e:
            errors.append(e)
    raise errors[0]


def is_opaque(io_type: str) -> bool:
    """Whether values of ``io_type`` are Python objects that cannot cross (unknown types are not)."""
    entry = _table().BY_IO_TYPE.get(io_type)
    return entry is not None and entry["kind"] == "opaque"


def is_serializable(io_type: str) -> bool:
    """Whether values of ``io_type`` can cross a process boundary (unknown types: when their parts can)."""
    return not is_opaque(io_type)


_PLAIN = (type(None), bool, int, float, str, bytes, bytearray)


def _walk(io_type: str, v: Any, path: str, where: str, seen: set[int]) -> None:
    if isinstance(v, _PLAIN) or is_tensor(v) or is_numpy_scalar(v):
        return
    if isinstance(v, (list, tuple, dict)):
        if id(v) in seen:
            return
        seen.add(id(v))
        if isinstance(v, dict):
            for key, item in v.items():
                _walk(io_type, key, f"{path}<key {key!r}>", where, seen)
                _walk(io_type, item, f"{path}[{key!r}]", where, seen)
        else:
            for i, item in enumerate(v):
                _walk(io_type, item, f"{path}[{i}]", where, seen)
        return
    for pred in ENCODABLE:
        if pred(v):
            return
    raise OpaqueTypeError(io_type, path, _type_name(v), where)


def check_crossing(io_type: str, value: Any, node: str | None = None, slot: str | None = None) -> None:
    """Raises :class:`OpaqueTypeError` naming ``io_type`` when ``value`` cannot leave this process.

    A value crosses when every part is None, bool, int, float, str, bytes, a list, tuple or dict
    of such, a torch tensor, a numpy array or scalar, or passes one of the :data:`ENCODABLE`
    predicates — in a pyisolate process, any object does (as a remote handle). A value of an
    opaque type (MODEL, CLIP, VAE, ...) crosses only that way (None, an absent optional value,
    always does).
    """
    where = _where(node, slot)
    if is_opaque(io_type):
        if value is None or any(pred(value) for pred in ENCODABLE):
            return
        raise OpaqueTypeError(io_type, "", _type_name(value), where)
    _walk(io_type, value, "", where, set())
