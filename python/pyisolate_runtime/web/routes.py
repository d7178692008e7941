"""Pack routes inside a pyisolate process: recorded at import, served on request (``$routes``).

ComfyUI packs add routes at import time — ``@PromptServer.instance.routes.get("/x")``,
``PromptServer.instance.app.add_routes(table)``, ``app.router.add_get(...)``,
``routes.static(prefix, dir)``. Here those calls record the route; after each pack's
import, :func:`collect` moves what was recorded to that pack and reports it in the pack's
``ready`` entry (``routes``, ``static_routes``), which the host keeps in its metadata cache,
so a warm start registers the routes without starting this process. ``route_manifest.json``
routes name a method of the pack's extension class (a ``pyisolate.ExtensionBase`` subclass,
or the V3 ``ComfyExtension``) instead; :func:`collect` checks that each resolves.

``$routes.handle(pack, route, request)`` runs one handler on the node loop and returns the
answer as :func:`pyisolate_runtime.web.response.to_wire` writes it.
"""
from __future__ import annotations

import inspect
import json
import logging
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from .request import Request
from .response import HTTPException, to_wire

__all__ = ["App", "RouteDef", "RouteTableDef", "StaticDef", "collect", "service", "setup"]

log = logging.getLogger("pyisolate.routes")

FALLBACK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shims_fallback")
"""Put at the end of ``sys.path``: an ``aiohttp`` with only ``web``, for packs whose
environment has no aiohttp (a real aiohttp, earlier on the path, wins)."""

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*")


class RouteDef:
    """One route: method, path pattern (aiohttp's ``{name}`` / ``{name:regex}``), handler."""

    def __init__(self, method: str, path: str, handler: Any, api: bool = False, **kwargs: Any) -> None:
        method = str(method).upper()
        if method not in METHODS:
            raise ValueError(f"HTTP method {method!r} is not one pyisolate serves; use one of {', '.join(METHODS)}")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"a route path must be a string starting with '/', got {path!r}")
        self.method = method
        self.path = path
        self.handler = handler
        self.api = api
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"<RouteDef {self.method} {self.path}>"


class StaticDef:
    """A folder served under a prefix (``routes.static(prefix, path)``)."""

    def __init__(self, prefix: str, path: Any, **kwargs: Any) -> None:
        self.prefix = "/" + str(prefix).strip("/")
        self.path = os.path.abspath(os.fspath(path))
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"<StaticDef {self.prefix} -> {self.path}>"


_pending: List[Any] = []
_handlers: Dict[str, Dict[str, Any]] = {}


def record(entry: Any) -> None:
    """Records a route (or static folder) for the pack being imported."""
    _pending.append(entry)


class RouteTableDef(list):
    """``web.RouteTableDef()``: decorators that collect routes. ``PromptServer.instance.routes``
    is one that records as it collects (its routes are also served under ``/api``, as in ComfyUI)."""

    def __init__(self, *, recording: bool = False) -> None:
        super().__init__()
        self._recording = recording

    def _add(self, entry: Any) -> Any:
        self.append(entry)
        if self._recording:
            record(entry)
        return entry

    def route(self, method: str, path: str, **kwargs: Any) -> Callable[[Any], Any]:
        def decorate(handler: Any) -> Any:
            self._add(RouteDef(method, path, handler, api=self._recording, **kwargs))
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
        self._add(StaticDef(prefix, path, **kwargs))


class _Middlewares(list):
    def append(self, item: Any) -> None:  # type: ignore[override]
        log.warning("A pack added an aiohttp middleware (%s); pyisolate's server does not run pack middlewares.",
                    getattr(item, "__name__", item))
        super().append(item)


class _Router:
    """``app.router``: ``add_get``/``add_post``/…/``add_route``/``add_static``/``add_view``."""

    def add_route(self, method: str, path: str, handler: Any, **kwargs: Any) -> RouteDef:
        entry = RouteDef(method, path, handler, **kwargs)
        record(entry)
        return entry

    def add_get(self, path: str, handler: Any, **kwargs: Any) -> RouteDef:
        kwargs.pop("allow_head", None)
        return self.add_route("GET", path, handler, **kwargs)

    def add_post(self, path: str, handler: Any, **kwargs: Any) -> RouteDef:
        return self.add_route("POST", path, handler, **kwargs)

    def add_put(self, path: str, handler: Any, **kwargs: Any) -> RouteDef:
        return self.add_route("PUT", path, handler, **kwargs)

    def add_patch(self, path: str, handler: Any, **kwargs: Any) -> RouteDef:
        return self.add_route("PATCH", path, handler, **kwargs)

    def add_delete(self, path: str, handler: Any, **kwargs: Any) -> RouteDef:
        return self.add_route("DELETE", path, handler, **kwargs)

    def add_head(self, path: str, handler: Any, **kwargs: Any) -> RouteDef:
        return self.add_route("HEAD", path, handler, **kwargs)

    def add_view(self, path: str, handler: Any, **kwargs: Any) -> RouteDef:
        return self.add_route("*", path, handler, **kwargs)

    def add_static(self, prefix: str, path: Any, **kwargs: Any) -> StaticDef:
        entry = StaticDef(prefix, path, **kwargs)
        record(entry)
        return entry


class App(dict):
    """``PromptServer.instance.app`` (and ``web.Application()``): routes added to it are
    recorded; its state is a dict; middlewares and start-up hooks are kept but not run."""

    def __init__(self, **_: Any) -> None:
        super().__init__()
        self.router = _Router()
        self.middlewares = _Middlewares()
        self.on_startup: List[Any] = []
        self.on_shutdown: List[Any] = []
        self.on_cleanup: List[Any] = []

    def add_routes(self, routes: Any) -> List[Any]:
        added = []
        for r in routes:
            if isinstance(r, StaticDef) or type(r).__name__ == "StaticDef":
                added.append(self.router.add_static(getattr(r, "prefix"), getattr(r, "path")))
            else:  # ours, or aiohttp's RouteDef
                added.append(self.router.add_route(getattr(r, "method"), getattr(r, "path"), getattr(r, "handler")))
        return added

    def add_subapp(self, prefix: str, app: Any) -> None:
        log.warning("A pack added an aiohttp sub-application under %s; pyisolate's server does not serve sub-applications.", prefix)


# --- after each pack's import --------------------------------------------------------------


def _pack_dir(module: Any) -> str:
    path = getattr(module, "__file__", None) or ""
    return os.path.dirname(os.path.abspath(path)) if path else os.getcwd()


_extensions: Dict[str, Any] = {}


def _extension(pack: str, module: Any) -> Any:
    """The pack's extension object: an instance of its ``pyisolate.ExtensionBase`` subclass,
    else the ``ComfyExtension`` its ``comfy_entrypoint`` made, else None."""
    if pack in _extensions:
        return _extensions[pack]
    ext = None
    try:
        from pyisolate.extension import ExtensionBase
    except ImportError:  # pragma: no cover - shipped together
        ExtensionBase = None  # type: ignore[assignment]
    if ExtensionBase is not None:
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, ExtensionBase) and value is not ExtensionBase:
                ext = value()
                hook = getattr(ext, "on_module_loaded", None)
                if hook is not None:
                    done = hook(module)
                    if inspect.isawaitable(done):
                        from pyisolate_runtime.nodes.nodes_exec import run_coroutine

                        run_coroutine(done)
                break
    if ext is None:
        from pyisolate_runtime.nodes.nodes_service import service as nodes

        ext = nodes.extensions.get(pack)
    _extensions[pack] = ext
    return ext


def manifest_handler(pack: str, name: str) -> Any:
    """The callable ``route_manifest.json`` names: a method of the extension object (or
    ``Class.method``), else a function of the pack's module."""
    from pyisolate_runtime.nodes import loader

    module = loader.loaded_packs().get(pack)
    if module is None:
        raise LookupError(f"pack {pack!r} is not loaded in this process")
    if "." in name:
        cls_name, _, method = name.rpartition(".")
        cls = getattr(module, cls_name, None)
        if cls is None:
            raise LookupError(f"route_manifest.json names {name!r}, but pack {pack!r} has no {cls_name!r}")
        target = _extensions.setdefault(f"{pack}:{cls_name}", cls() if inspect.isclass(cls) else cls)
        fn = getattr(target, method, None)
    else:
        ext = _extension(pack, module)
        fn = getattr(ext, name, None) if ext is not None else None
        if fn is None:
            fn = getattr(module, name, None)
    if not callable(fn):
        where = f"its extension class {type(_extension(pack, module)).__name__}" if _extension(pack, module) is not None else "its module (no ExtensionBase subclass, no comfy_entrypoint)"
        raise LookupError(f"route_manifest.json names handler {name!r}, which pack {pack!r} does not define in {where}; "
                          "define it as `async def " + name.split(".")[-1] + "(self, request)` of the extension class")
    return fn


def _manifest_errors(pack: str, module: Any) -> Dict[str, str]:
    path = os.path.join(_pack_dir(module), "route_manifest.json")
    if not os.path.isfile(path):
        return {}
    errors: Dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            routes = json.load(f).get("routes") or []
    except (OSError, ValueError, AttributeError) as e:
        return {"route_manifest.json": f"cannot be read: {e}"}
    for r in routes:
        if not isinstance(r, dict):
            continue
        try:
            manifest_handler(pack, str(r.get("handler")))
        except Exception as e:
            errors[f"{str(r.get('method', 'GET')).upper()} {r.get('path')}"] = str(e)
    return errors


def collect(pack: str, module: Any) -> Dict[str, Any]:
    """Moves the routes recorded during ``pack``'s import to it; returns its ``ready`` entry part."""
    recorded = list(_pending)
    _pending.clear()
    table = _handlers.setdefault(pack, {})
    routes: List[Dict[str, Any]] = []
    statics: List[Dict[str, Any]] = []
    for entry in recorded:
        if isinstance(entry, StaticDef):
            statics.append({"prefix": entry.prefix, "path": entry.path})
            continue
        key = f"{entry.method} {entry.path}"
        if key in table:
            log.warning("Pack %s registers route %s twice; the first handler is kept.", pack, key)
            continue
        table[key] = entry.handler
        routes.append({"method": entry.method, "path": entry.path, "api": entry.api})
    return {"routes": routes, "static_routes": statics, "route_errors": _manifest_errors(pack, module)}


# --- serving -------------------------------------------------------------------------------


def _handler(pack: str, route: Dict[str, Any]) -> Any:
    if route.get("handler"):
        return manifest_handler(pack, str(route["handler"]))
    key = str(route.get("key"))
    handler = _handlers.get(pack, {}).get(key)
    if handler is None:
        known = ", ".join(sorted(_handlers.get(pack, {}))) or "none"
        raise LookupError(f"pack {pack!r} has no route {key} in this process (its routes: {known})")
    return handler


async def _call(handler: Any, request: Request) -> Any:
    if inspect.isclass(handler):  # a class-based view: one method per HTTP method
        view = handler(request)
        fn = getattr(view, request.method.lower(), None)
        if fn is None:
            raise _http_exception(405)
        result = fn()
    else:
        result = handler(request)
    while inspect.isawaitable(result):
        result = await result
    return result


def _http_exception(status: int) -> HTTPException:
    from .response import EXCEPTIONS

    for cls in EXCEPTIONS.values():
        if cls.status_code == status:
            return cls()
    return HTTPException()


class RoutesService:
    """``$routes``: runs pack route handlers for the host."""

    async def handle(self, pack: str, route: Dict[str, Any], request: Dict[str, Any]) -> Dict[str, Any]:
        """Runs the handler of ``route`` (``{key: "GET /path"}`` for a recorded route,
        ``{handler: name}`` for a manifest route) with ``request``; returns the answer."""
        handler = _handler(pack, route)
        req = Request(request)
        try:
            result = await _call(handler, req)
        except HTTPException as e:
            result = e
        except Exception as e:
            if type(e).__name__.startswith("HTTP") and isinstance(getattr(e, "status", None), int):
                result = e  # aiohttp's own HTTPException
            else:
                raise
        return to_wire(result)


service = RoutesService()


def setup(rt: Any) -> None:
    """Records pack routes from now on, and serves ``$routes`` (called by the runtime before packs load)."""
    from pyisolate_runtime.nodes import loader

    if FALLBACK_DIR not in sys.path:
        sys.path.append(FALLBACK_DIR)
    loader.register_collector(collect)
    rt.serve("$routes", service)
