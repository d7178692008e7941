"""Remote object handles: Python objects (MODEL, CLIP, VAE, a pack's own class, …) used
across processes without leaving the process that made them.

A value without a wire form — at any depth of a node's outputs, a call's arguments or its
result — stays in this process's object table (:mod:`.table`) and crosses as a handle
(CBOR tag 41502). A handle that comes back here is the identical object again; one that
arrives in another process is a proxy (:mod:`.proxy`) whose use is forwarded to the owner
over the host (``$obj``, :mod:`.service`). The host counts who holds each handle and tells
the owner when nobody does; proxies that die are reported by :mod:`.imported`.

This module is the extension the runtime loads (:func:`setup`) and the API packs use:
:func:`is_proxy`, :func:`handle_of`, :func:`register_proxy`, :class:`ProxyError`,
:class:`HandleError`, and :func:`stats` (the sizes of the two tables).
"""

from __future__ import annotations

import functools
import types
from typing import Any

from ..rpc.callables import RemoteCallable
from .imported import ProxyTable
from .proxy import ProxyError, RemoteMethod, RemoteObject, handle_of, is_proxy, proxy_class, register_proxy
from .service import OPS, ObjectService, methods_of
from .table import EPOCH, TAG_HANDLE, HandleError, ObjectTable

__all__ = [
    "EPOCH",
    "HandleError",
    "OPS",
    "ObjectService",
    "ObjectTable",
    "ProxyError",
    "ProxyTable",
    "RemoteMethod",
    "RemoteObject",
    "TAG_HANDLE",
    "decode",
    "handle_of",
    "is_proxy",
    "methods_of",
    "objects",
    "proxies",
    "proxy_class",
    "register_proxy",
    "setup",
    "stats",
]

objects = ObjectTable()
"""This process's objects that crossed as handles."""
proxies = ProxyTable()
"""This process's proxies of other processes' objects."""

# Functions cross as callbacks (tag 41503), not as handles: calling one is all there is to it.
_FUNCTIONS = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.MethodWrapperType,
    functools.partial,
    RemoteCallable,
)


def is_function(obj: Any) -> bool:
    """Whether ``obj`` crosses as a callback (a plain function, method or partial) rather
    than as a handle."""
    return isinstance(obj, _FUNCTIONS)


def decode(content: Any) -> Any:
    """A handle as it arrives here: the object itself when this process owns it, else a
    proxy."""
    if isinstance(content, dict) and content.get("owner") == objects.owner:
        return objects.resolve(content)
    return proxies.decode(content)


def _encode_proxy(p: RemoteObject) -> tuple[int, Any]:
    return TAG_HANDLE, object.__getattribute__(p, "_RemoteObject__ref").content


def _export(obj: Any) -> tuple[int, Any]:
    return TAG_HANDLE, objects.export(obj)


def _current_pack() -> str | None:
    from ..nodes import comfy_bridge, nodes_service

    node = comfy_bridge.current()
    if node is None or not node.class_type:
        return None
    found = nodes_service.service.classes.get(node.class_type)
    return found[0] if found else None


def stats() -> dict[str, Any]:
    """``{owner, epoch, objects, proxies}``: how many objects this process holds for others,
    and how many proxies of others' objects are alive here."""
    return {"owner": objects.owner, "epoch": EPOCH, "objects": len(objects), "proxies": proxies.live()}


_set_up = False


def setup(rt: Any) -> None:
    """Installs handles into this process's connection (called by the runtime at start)."""
    global _set_up
    if _set_up:
        return
    from .. import cbor, rpc
    from ..values import io_check

    endpoint = rt.endpoint
    objects.owner = rt.pack or ""
    objects.pack_of_current_node = _current_pack
    cbor.register_encoder(RemoteObject, _encode_proxy)
    endpoint.set_object_codec(TAG_HANDLE, encode=_export, decode=decode, guard=objects, is_function=is_function)
    proxies.bind(lambda pairs: endpoint.emit("$obj", "release", [pairs]))
    rpc.serve("$obj", ObjectService(objects, proxies))
    io_check.ENCODABLE.append(lambda _v: True)  # any object crosses, as a handle
    _set_up = True
