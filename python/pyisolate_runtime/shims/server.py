"""ComfyUI's ``server`` module for node packs run by pyisolate: ``PromptServer.instance``.

``send_sync(event, data, sid)`` and ``await send(...)`` put ``{type, data}`` events, with
the client id, onto the host's event bus through its ``PromptServer`` service.
``client_id`` is the id of the client whose prompt runs.

HTTP routes a pack registers at import time (``@PromptServer.instance.routes.get(path)`` and
the other methods, ``routes.static``, ``app.add_routes``, ``app.router.add_get`` …) are
recorded, not served: the decorator returns the handler unchanged, so the pack imports as it
does inside ComfyUI, and :func:`take_routes` hands what was recorded to the node loader,
which reports it with the pack (``routes`` in its ready entry). ``add_on_prompt_handler``
handlers are recorded the same way and not called.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, List, Optional

from pyisolate_runtime.nodes import comfy_bridge

_SERVICE = "PromptServer"


class BinaryEventTypes:
    PREVIEW_IMAGE = 1
    UNENCODED_PREVIEW_IMAGE = 2
    TEXT = 3
    PREVIEW_IMAGE_WITH_METADATA = 4


_recorded: List[Dict[str, Any]] = []
_prompt_handlers: List[Callable[..., Any]] = []


def _handler_name(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    return f"{module}.{name}" if module else str(name)


def _record(method: str, path: Any, handler: Any = None, **extra: Any) -> None:
    entry: Dict[str, Any] = {"method": method.upper(), "path": str(path)}
    if handler is not None:
        entry["handler"] = _handler_name(handler)
        code = getattr(handler, "__code__", None)
        if code is not None:
            entry["file"] = os.path.abspath(code.co_filename)
    for key, value in extra.items():
        if value is not None:
            entry[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
    _recorded.append(entry)


def take_routes() -> List[Dict[str, Any]]:
    """The routes recorded since the last call (``{method, path, handler?, file?, directory?}``,
    ``file`` the handler's source file), in order."""
    out = list(_recorded)
    _recorded.clear()
    return out


class _RouteDef:
    """What ``routes`` yields when iterated (aiohttp's RouteDef: method, path, handler)."""

    def __init__(self, method: str, path: str, handler: Any) -> None:
        self.method, self.path, self.handler = method, path, handler


class _Routes:
    """Stands where aiohttp's RouteTableDef would: the decorators record each route and
    return the handler unchanged."""

    def __init__(self) -> None:
        self._defs: List[_RouteDef] = []

    def route(self, method: str, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        def decorate(handler: Any) -> Any:
            _record(method, path, handler)
            self._defs.append(_RouteDef(method.upper(), path, handler))
            return handler
        return decorate

    def get(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("DELETE", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("HEAD", path, **kwargs)

    def view(self, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        return self.route("*", path, **kwargs)

    def static(self, prefix: str, path: Any, **kwargs: Any) -> None:
        _record("STATIC", prefix, directory=str(path))

    def __iter__(self) -> Iterator[_RouteDef]:
        return iter(list(self._defs))

    def __len__(self) -> int:
        return len(self._defs)


class _Router:
    """aiohttp's ``app.router``: ``add_get`` / ``add_post`` / ``add_route`` / ``add_static`` record."""

    def add_route(self, method: str, path: str, handler: Any, **kwargs: Any) -> None:
        _record(method, path, handler)

    def add_get(self, path: str, handler: Any, **kwargs: Any) -> None:
        _record("GET", path, handler)

    def add_post(self, path: str, handler: Any, **kwargs: Any) -> None:
        _record("POST", path, handler)

    def add_put(self, path: str, handler: Any, **kwargs: Any) -> None:
        _record("PUT", path, handler)

    def add_patch(self, path: str, handler: Any, **kwargs: Any) -> None:
        _record("PATCH", path, handler)

    def add_delete(self, path: str, handler: Any, **kwargs: Any) -> None:
        _record("DELETE", path, handler)

    def add_static(self, prefix: str, path: Any, **kwargs: Any) -> None:
        _record("STATIC", prefix, directory=str(path))


class _App:
    """aiohttp's ``web.Application`` as far as packs touch it at import time."""

    def __init__(self) -> None:
        self.router = _Router()
        self.middlewares: List[Any] = []
        self.on_startup: List[Any] = []
        self.on_shutdown: List[Any] = []
        self.on_cleanup: List[Any] = []

    def add_routes(self, defs: Any) -> None:
        for d in defs:
            if not isinstance(d, _RouteDef):  # those came from routes' decorators: recorded already
                _record(str(getattr(d, "method", "*")), getattr(d, "path", "?"), getattr(d, "handler", None))


class PromptServer:
    """The process's stand-in for ComfyUI's server; use ``PromptServer.instance``."""

    instance: "PromptServer"

    def __init__(self) -> None:
        self.routes = _Routes()
        self.app = _App()
        self.supports = ["custom_nodes_from_web"]
        self.last_node_id: Optional[str] = None
        self.last_prompt_id: Optional[str] = None
        self._client_id: Optional[str] = None

    @property
    def client_id(self) -> Optional[str]:
        """The client whose prompt runs now (None when the prompt came without one)."""
        try:
            self._client_id = comfy_bridge.call(_SERVICE, "client_id")
        except (comfy_bridge.HostUnavailable, RuntimeError):
            pass  # no host, or asked from the I/O thread: the last known value
        return self._client_id

    @client_id.setter
    def client_id(self, value: Optional[str]) -> None:
        self._client_id = value

    def send_sync(self, event: Any, data: Any, sid: Optional[str] = None) -> None:
        """Sends ``{type: event, data}`` to the client ``sid`` (all clients when None)."""
        comfy_bridge.emit(_SERVICE, "send_sync", event, data, sid)

    async def send(self, event: Any, data: Any, sid: Optional[str] = None) -> None:
        self.send_sync(event, data, sid)

    async def send_json(self, event: Any, data: Any, sid: Optional[str] = None) -> None:
        self.send_sync(event, data, sid)

    def send_progress_text(self, text: str, node_id: str, sid: Optional[str] = None) -> None:
        self.send_sync("progress_text", {"text": text, "node": node_id}, sid)

    def queue_updated(self) -> None:
        pass

    def add_on_prompt_handler(self, handler: Callable[..., Any]) -> None:
        """Recorded, not called: prompts reach packs through the host's executor."""
        _prompt_handlers.append(handler)


PromptServer.instance = PromptServer()
