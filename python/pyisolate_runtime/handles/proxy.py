"""Proxies: objects of another process, used here as if they were local.

A handle (tag 41502) of an object owned by another process decodes to a
:class:`RemoteObject`, an instance of a subclass named after the object's type (or of the
class :func:`register_proxy` names for that type). Attribute reads and writes, method calls
(``async def`` methods give an awaitable in a thread that runs an event loop), calling the
object, ``len``, iteration, indexing, ``in``, ``bool``, ``str``, ``with`` / ``async with``,
arithmetic and ordering operators, ``copy.copy`` and ``copy.deepcopy`` are forwarded to the
owner over the host (``$obj.call``); what comes back is a value when it has a wire form
(tensors through shared memory), else another proxy. ``is`` and ``==`` compare identity (one
proxy per handle), ``repr`` is local, and ``isinstance(proxy, C)`` holds when ``C`` is the
object's class and its module is imported here (the proxy reports it as ``__class__``).

What cannot be forwarded — pickling, numpy conversion, passing it to torch — raises
:class:`ProxyError`, naming the type, where the object lives and the operation.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from .. import host as _host
from ..rpc.errors import type_name

__all__ = ["ProxyError", "RemoteMethod", "RemoteObject", "handle_of", "is_proxy", "proxy_class", "register_proxy"]

_MISSING = object()
_REF = "_RemoteObject__ref"


class Kind:
    """What this process knows of one type of one owner: its methods (name → is async),
    once the owner told, and the local class of the same name, if any."""

    __slots__ = ("methods", "local", "looked_up")

    def __init__(self) -> None:
        self.methods: dict[str, bool] | None = None
        self.local: type | None = None
        self.looked_up = False


class Ref:
    """One handle as this process holds it: its map, and how many times it arrived."""

    __slots__ = ("hid", "owner", "type", "repr", "pack", "arrivals", "kind", "content")

    def __init__(self, content: dict[str, Any], kind: Kind) -> None:
        self.hid = str(content.get("id"))
        self.owner = str(content.get("owner") or "?")
        self.type = str(content.get("type") or "object")
        self.repr = str(content.get("repr") or "")
        self.pack = content.get("pack")
        self.arrivals = 0
        self.kind = kind
        self.content = {k: content[k] for k in ("id", "owner", "type", "repr", "pack") if k in content}


def where(ref: Ref) -> str:
    """Where the object lives, for messages: its pack and process."""
    if ref.pack and ref.pack != ref.owner:
        return f"pack {ref.pack!r} (process {ref.owner!r})"
    return f"pack {ref.owner!r} (its own process)" if ref.owner != "shared" else "the shared process"


class ProxyError(TypeError):
    """An operation a proxy cannot forward to the object it stands for."""

    def __init__(self, ref: Ref | None, op: str) -> None:
        if ref is None:
            super().__init__(f"Cannot {op}: an argument is a proxy of an object of another process.")
            return
        super().__init__(
            f"Cannot {op} the {ref.type} object: this is a proxy, and the object itself lives in "
            f"{where(ref)}. Only attribute access, calls, len, iteration, indexing, with and identity "
            "comparison are forwarded there; run this node in the same process as the node that made "
            "the object (the same pack, or both without a manifest) to use the object itself."
        )
        self.type = ref.type
        self.owner = ref.owner
        self.op = op


ProxyError.__module__ = "pyisolate"


def _ref(p: Any) -> Ref:
    return object.__getattribute__(p, _REF)


def forward(p: Any, op: str, args: Any = (), kwargs: Any = None, is_async: bool = False) -> Any:
    """Runs ``op`` on the object ``p`` stands for, in its owner (``$obj.call`` over the host)."""
    ref = _ref(p)
    ep = _host._ep(f"use the {ref.type} object of {where(ref)}")
    payload = [p, op, list(args), kwargs or {}]
    if is_async:
        return ep.call_auto("$obj", "call", payload)
    return ep.call("$obj", "call", payload)


def _pack_key(key: Any) -> Any:
    """A subscript as it crosses: slices and ``...`` (which have no wire form) spelled out."""
    if isinstance(key, slice):
        return ("slice", key.start, key.stop, key.step)
    if key is Ellipsis:
        return ("...",)
    if isinstance(key, tuple) and any(isinstance(k, slice) or k is Ellipsis for k in key):
        return ("tuple", [_pack_key(k) for k in key])
    return ("value", key)


class RemoteMethod:
    """A method of an object of another process: calling it calls it there."""

    __slots__ = ("_obj", "_name", "_async")

    def __init__(self, obj: "RemoteObject", name: str, is_async: bool) -> None:
        self._obj = obj
        self._name = name
        self._async = is_async

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return forward(self._obj, "method", (self._name, *args), kwargs, self._async)

    @property
    def __self__(self) -> "RemoteObject":
        return self._obj

    @property
    def __name__(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"<remote method {_ref(self._obj).type}.{self._name}>"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise ProxyError(_ref(self._obj), f"pickle method {self._name} of")


class RemoteObject:
    """Stands for an object that lives in another process (see the module docs)."""

    __slots__ = (_REF, "__weakref__")

    def __init__(self, ref: Ref) -> None:
        object.__setattr__(self, _REF, ref)

    # -- attributes -------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__") or name == _REF:
            raise AttributeError(name)
        ref = _ref(self)
        methods = ref.kind.methods
        if methods is not None and name in methods:
            return RemoteMethod(self, name, methods[name])
        what, payload = forward(self, "getattr", (name,))
        if what == "method":
            ref.kind.methods = dict(payload)
            return RemoteMethod(self, name, bool(payload.get(name, False)))
        return payload

    def __setattr__(self, name: str, value: Any) -> None:
        if name == _REF:
            raise AttributeError(f"{name} cannot be set")
        forward(self, "setattr", (name, value))

    def __delattr__(self, name: str) -> None:
        forward(self, "delattr", (name,))

    def __dir__(self) -> list[str]:
        return list(forward(self, "dir"))

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        kind = _ref(self).kind
        if not kind.looked_up:
            kind.local = _local_class(_ref(self).type)
            kind.looked_up = True
        return kind.local if kind.local is not None else type(self)

    def __repr__(self) -> str:
        ref = _ref(self)
        return f"<proxy of {ref.repr or ref.type} in {where(ref)}>"

    # -- calls, containers, context managers ------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        methods = _ref(self).kind.methods or {}
        return forward(self, "call", args, kwargs, methods.get("__call__", False))

    def __len__(self) -> int:
        return forward(self, "len")

    def __iter__(self) -> Any:
        return forward(self, "iter")

    def __next__(self) -> Any:
        return forward(self, "next")

    def __getitem__(self, key: Any) -> Any:
        return forward(self, "getitem", (_pack_key(key),))

    def __setitem__(self, key: Any, value: Any) -> None:
        forward(self, "setitem", (_pack_key(key), value))

    def __delitem__(self, key: Any) -> None:
        forward(self, "delitem", (_pack_key(key),))

    def __contains__(self, item: Any) -> bool:
        return forward(self, "contains", (item,))

    def __bool__(self) -> bool:
        return forward(self, "bool")

    def __str__(self) -> str:
        return forward(self, "str")

    def __enter__(self) -> Any:
        return forward(self, "enter")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return bool(forward(self, "exit", (exc,)))

    async def __aenter__(self) -> Any:
        return await forward(self, "aenter", is_async=True)

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return bool(await forward(self, "aexit", (exc,), is_async=True))

    def __copy__(self) -> Any:
        return forward(self, "copy")

    def __deepcopy__(self, memo: Any) -> Any:
        return forward(self, "deepcopy")

    # -- what cannot be forwarded -----------------------------------------------------------

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise ProxyError(_ref(self), "pickle")

    def __reduce__(self) -> Any:
        raise ProxyError(_ref(self), "pickle")

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise ProxyError(_ref(self), "convert to a numpy array")

    def __buffer__(self, flags: int) -> Any:
        raise ProxyError(_ref(self), "take a memoryview of")

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        found = [a for a in [*args, *(kwargs or {}).values()] if isinstance(a, RemoteObject)]
        name = getattr(func, "__name__", str(func))
        raise ProxyError(_ref(found[0]) if found else None, f"pass to torch's {name}()")


def _binary(name: str, reflected: bool) -> Any:
    op = "rop" if reflected else "op"

    def method(self: RemoteObject, other: Any) -> Any:
        return forward(self, op, (name, other))

    method.__name__ = f"__r{name}__" if reflected else f"__{name}__"
    return method


def _unary(name: str) -> Any:
    def method(self: RemoteObject) -> Any:
        return forward(self, "op1", (name,))

    method.__name__ = f"__{name}__"
    return method


for _n in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "lshift", "rshift", "and", "or", "xor"):
    setattr(RemoteObject, f"__{_n}__", _binary(_n, False))
    setattr(RemoteObject, f"__r{_n}__", _binary(_n, True))
for _n in ("lt", "le", "gt", "ge"):
    setattr(RemoteObject, f"__{_n}__", _binary(_n, False))
for _n in ("neg", "pos", "abs", "invert", "index", "int", "float", "complex"):
    setattr(RemoteObject, f"__{_n}__", _unary(_n))
del _n


# ------------------------------------------------------------------ proxy classes

_lock = threading.Lock()
_made: dict[str, type] = {}
_registered: dict[str, type] = {}


def register_proxy(type_qualname: str, cls: type) -> None:
    """Use ``cls`` (a subclass of :class:`RemoteObject`) for proxies of objects of type
    ``type_qualname`` (``"comfy.sd.CLIP"``): it may add local methods or override forwarded
    ones."""
    if not (isinstance(cls, type) and issubclass(cls, RemoteObject)):
        raise TypeError(f"register_proxy({type_qualname!r}, ...) needs a subclass of RemoteObject, got {cls!r}")
    with _lock:
        _registered[type_qualname] = cls


def proxy_class(type_qualname: str) -> type:
    """The class of proxies of ``type_qualname`` objects: a registered one, else a subclass of
    :class:`RemoteObject` named after the type."""
    cls = _registered.get(type_qualname) or _made.get(type_qualname)
    if cls is not None:
        return cls
    with _lock:
        cls = _registered.get(type_qualname) or _made.get(type_qualname)
        if cls is None:
            short = type_qualname.rsplit(".", 1)[-1] or "object"
            cls = type(short, (RemoteObject,), {
                "__slots__": (),
                "__module__": "pyisolate.remote",
                "__qualname__": short,
                "__doc__": f"Proxy of a {type_qualname} object of another process.",
            })
            _made[type_qualname] = cls
    return cls


def _local_class(type_qualname: str) -> type | None:
    """The class ``type_qualname`` names in a module already imported here, if any."""
    parts = type_qualname.split(".")
    for i in range(len(parts) - 1, 0, -1):
        mod = sys.modules.get(".".join(parts[:i]))
        if mod is None:
            continue
        obj: Any = mod
        for attr in parts[i:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                return None
        return obj if isinstance(obj, type) else None
    return None


def is_proxy(obj: Any) -> bool:
    """Whether ``obj`` is a proxy of an object of another process."""
    return isinstance(obj, RemoteObject)


def handle_of(obj: Any) -> dict[str, Any]:
    """The handle map ``{id, owner, type, repr, pack?}`` a proxy stands for."""
    if not isinstance(obj, RemoteObject):
        raise TypeError(f"handle_of() needs a proxy, got {type_name(type(obj))}")
    return dict(_ref(obj).content)
