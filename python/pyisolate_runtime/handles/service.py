"""``$obj``: what the owner of an object does when a proxy elsewhere uses it.

The host routes every ``$obj.call(handle, op, args, kwargs)`` of a proxy to the process that
owns the handle; there the handle has already decoded to the object itself. ``op`` is one of
:data:`OPS`. ``getattr`` answers ``("method", {name: is_async, ...})`` when the attribute is
a method of the object (the proxy then knows every method of the type and calls them
without asking again), else ``("value", attribute)``. Results cross like any value: by value
when they have a wire form, else as new handles.
"""

from __future__ import annotations

import copy
import inspect
import operator
import weakref
from typing import Any, Callable

from ..rpc import NotCallable, inline
from .imported import ProxyTable
from .proxy import RemoteObject, where, _ref
from .table import EPOCH, HandleError, ObjectTable

__all__ = ["OPS", "ObjectService", "methods_of"]

_methods: "weakref.WeakKeyDictionary[type, dict[str, bool]]" = weakref.WeakKeyDictionary()


def methods_of(cls: type) -> dict[str, bool]:
    """The methods a class defines (name → whether it is ``async def``), dunders left out
    but ``__call__``."""
    try:
        got = _methods.get(cls)
    except TypeError:
        got = None
    if got is not None:
        return got
    table: dict[str, bool] = {}
    for name in dir(cls):
        if name.startswith("__") and name != "__call__":
            continue
        try:
            attr = inspect.getattr_static(cls, name)
        except AttributeError:
            continue
        if isinstance(attr, (staticmethod, classmethod)):
            fn = attr.__func__
        elif inspect.isfunction(attr) or inspect.ismethoddescriptor(attr):
            fn = attr
        else:
            continue
        table[name] = inspect.iscoroutinefunction(fn)
    try:
        _methods[cls] = table
    except TypeError:
        pass
    return table


def _unpack_key(key: Any) -> Any:
    kind = key[0]
    if kind == "value":
        return key[1]
    if kind == "slice":
        return slice(key[1], key[2], key[3])
    if kind == "...":
        return Ellipsis
    if kind == "tuple":
        return tuple(_unpack_key(k) for k in key[1])
    raise ValueError(f"unknown subscript form {kind!r}")


def _getattr(obj: Any, name: str) -> Any:
    attr = getattr(obj, name)
    bound_to = getattr(attr, "__self__", None)
    if (inspect.ismethod(attr) or inspect.isbuiltin(attr)) and (bound_to is obj or bound_to is type(obj)):
        return ("method", methods_of(type(obj)))
    return ("value", attr)


def _method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(obj, name)(*args, **kwargs)


def _exit(obj: Any, exc: Any) -> Any:
    if isinstance(exc, BaseException):
        return obj.__exit__(type(exc), exc, exc.__traceback__)
    return obj.__exit__(None, None, None)


def _aexit(obj: Any, exc: Any) -> Any:
    if isinstance(exc, BaseException):
        return obj.__aexit__(type(exc), exc, exc.__traceback__)
    return obj.__aexit__(None, None, None)


_OPERATORS = {"and": "and_", "or": "or_"}


def _op(obj: Any, name: str, other: Any) -> Any:
    return getattr(operator, _OPERATORS.get(name) or name)(obj, other)


def _rop(obj: Any, name: str, other: Any) -> Any:
    return getattr(operator, _OPERATORS.get(name) or name)(other, obj)


def _op1(obj: Any, name: str) -> Any:
    if name in ("int", "float", "complex"):
        return {"int": int, "float": float, "complex": complex}[name](obj)
    return getattr(operator, name)(obj)


OPS: dict[str, Callable[..., Any]] = {
    "getattr": _getattr,
    "setattr": lambda obj, name, value: setattr(obj, name, value),
    "delattr": lambda obj, name: delattr(obj, name),
    "dir": lambda obj: dir(obj),
    "method": _method,
    "call": lambda obj, *a, **k: obj(*a, **k),
    "len": lambda obj: len(obj),
    "iter": lambda obj: iter(obj),
    "next": lambda obj: next(obj),
    "getitem": lambda obj, key: obj[_unpack_key(key)],
    "setitem": lambda obj, key, value: operator.setitem(obj, _unpack_key(key), value),
    "delitem": lambda obj, key: operator.delitem(obj, _unpack_key(key)),
    "contains": lambda obj, item: item in obj,
    "bool": lambda obj: bool(obj),
    "str": lambda obj: str(obj),
    "enter": lambda obj: obj.__enter__(),
    "exit": _exit,
    "aenter": lambda obj: obj.__aenter__(),
    "aexit": _aexit,
    "copy": lambda obj: copy.copy(obj),
    "deepcopy": lambda obj: copy.deepcopy(obj),
    "op": _op,
    "rop": _rop,
    "op1": _op1,
}
"""What a proxy can ask of the object: ``op`` → ``fn(obj, *args, **kwargs)``."""


class ObjectService:
    """``$obj``, served by every process: the objects it owns, used from elsewhere."""

    def __init__(self, table: ObjectTable, proxies: ProxyTable) -> None:
        self._table = table
        self._proxies = proxies

    def call(self, target: Any, op: str, args: Any = None, kwargs: Any = None) -> Any:
        """Runs ``op`` on ``target`` (already the object itself: handles of this process
        decode to their objects). An ``async def`` method's coroutine is awaited."""
        if isinstance(target, RemoteObject):
            ref = _ref(target)
            raise HandleError(
                f"$obj.call reached process {self._table.owner!r}, but the {ref.type} object lives in {where(ref)}."
            )
        fn = OPS.get(op) if isinstance(op, str) else None
        if fn is None:
            raise NotCallable(f"$obj.call cannot {op!r}: known operations are {', '.join(sorted(OPS))}")
        return fn(target, *(args or ()), **(kwargs or {}))

    def release(self, pairs: Any) -> int:
        """The host no longer holds ``n`` sends of each ``[id, n]``: objects nobody holds go."""
        return self._table.release(pairs)

    @inline
    def stats(self) -> dict[str, Any]:
        """``{owner, epoch, objects, proxies}``: the sizes of this process's two tables."""
        return {"owner": self._table.owner, "epoch": EPOCH, "objects": len(self._table), "proxies": self._proxies.live()}

    def entries(self) -> list[dict[str, Any]]:
        """The objects this process holds for others (``{id, type, repr, pack, sent}``)."""
        return self._table.entries()

    def flush(self) -> None:
        """Sends the releases of proxies that died (they also go by themselves, soon)."""
        self._proxies.flush()
