"""``aiohttp.web``'s names that node packs' route handlers use, provided by pyisolate
(see :mod:`pyisolate_runtime.web`)."""
from typing import Any, Callable

from pyisolate_runtime.web.request import FileField, Request
from pyisolate_runtime.web.response import (  # noqa: F401
    EXCEPTIONS,
    FileResponse,
    HTTPException,
    Response,
    StreamResponse,
    json_response,
)
from pyisolate_runtime.web.routes import App as Application
from pyisolate_runtime.web.routes import RouteDef, RouteTableDef, StaticDef

globals().update(EXCEPTIONS)

BaseRequest = Request


class View:
    """A class-based view: ``await getattr(View(request), method)()``."""

    def __init__(self, request: Request) -> None:
        self.request = request


def middleware(fn: Callable[..., Any]) -> Callable[..., Any]:
    return fn


def route(method: str, path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return RouteDef(method, path, handler, **kwargs)


def get(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    kwargs.pop("allow_head", None)
    return RouteDef("GET", path, handler, **kwargs)


def post(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return RouteDef("POST", path, handler, **kwargs)


def put(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return RouteDef("PUT", path, handler, **kwargs)


def patch(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return RouteDef("PATCH", path, handler, **kwargs)


def delete(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return RouteDef("DELETE", path, handler, **kwargs)


def head(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return RouteDef("HEAD", path, handler, **kwargs)


def view(path: str, handler: Any, **kwargs: Any) -> RouteDef:
    return RouteDef("*", path, handler, **kwargs)


def static(prefix: str, path: Any, **kwargs: Any) -> StaticDef:
    return StaticDef(prefix, path, **kwargs)


class WebSocketResponse:
    """Not available: a pack's own WebSocket endpoint cannot be served through pyisolate."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "web.WebSocketResponse is not available in a pyisolate process: packs send to the page's /ws "
            "through PromptServer.instance.send_sync(...) instead.")


__all__ = sorted(
    ["Application", "BaseRequest", "FileField", "FileResponse", "HTTPException", "Request", "Response", "RouteDef",
     "RouteTableDef", "StaticDef", "StreamResponse", "View", "WebSocketResponse", "delete", "get", "head",
     "json_response", "middleware", "patch", "post", "put", "route", "static", "view", *EXCEPTIONS])
