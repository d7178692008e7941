"""Responses a pack's route handler returns, and how any result becomes the host's answer.

The aiohttp names packs use — ``Response``, ``json_response``, ``FileResponse`` and the
``HTTPException`` family (``HTTPNotFound``, ``HTTPBadRequest``, …, raised or returned) —
without aiohttp. :func:`to_wire` also takes real aiohttp responses (a pack whose environment
has aiohttp), by their attributes.
"""
from __future__ import annotations

import json
import os
from http import HTTPStatus
from typing import Any, Callable, Dict, List, Optional, Union

__all__ = ["FileResponse", "HTTPException", "Response", "StreamResponse", "json_response", "to_wire"]


def _header_pairs(headers: Any) -> List[List[str]]:
    if headers is None:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    return [[str(k), str(v)] for k, v in items]


class _Headers(dict):
    """Response headers: a dict whose keys compare without case."""

    def _key(self, key: str) -> str:
        for k in self.keys():
            if k.lower() == str(key).lower():
                return k
        return str(key)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(self._key(key), str(value))

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(self._key(key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and any(k.lower() == key.lower() for k in self.keys())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self[key] if key in self else default


class StreamResponse:
    """The base of every response: status, reason and headers."""

    def __init__(self, *, status: int = 200, reason: Optional[str] = None, headers: Any = None) -> None:
        self.status = int(status)
        self.reason = reason
        self.headers = _Headers()
        for k, v in _header_pairs(headers):
            self.headers[k] = v

    @property
    def content_type(self) -> Optional[str]:
        value = self.headers.get("Content-Type")
        return value.split(";", 1)[0].strip() if value else None

    @content_type.setter
    def content_type(self, value: str) -> None:
        self.headers["Content-Type"] = value

    def set_status(self, status: int, reason: Optional[str] = None) -> None:
        self.status = int(status)
        self.reason = reason


class Response(StreamResponse):
    """``web.Response(body=..., text=..., status=..., headers=..., content_type=..., charset=...)``."""

    def __init__(self, *, body: Any = None, status: int = 200, reason: Optional[str] = None, text: Optional[str] = None,
                 headers: Any = None, content_type: Optional[str] = None, charset: Optional[str] = None) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        if body is not None and text is not None:
            raise ValueError("web.Response takes body or text, not both")
        if text is not None:
            if not isinstance(text, str):
                raise TypeError(f"text argument must be str, not {type(text).__name__}")
            charset = charset or "utf-8"
            body = text.encode(charset)
            content_type = content_type or "text/plain"
        elif isinstance(body, str):
            charset = charset or "utf-8"
            body = body.encode(charset)
        elif isinstance(body, (bytearray, memoryview)):
            body = bytes(body)
        elif body is not None and not isinstance(body, bytes):
            raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
        self.body: Optional[bytes] = body
        if content_type is not None:
            self.headers["Content-Type"] = content_type + (f"; charset={charset}" if charset else "")
        elif body is not None and "Content-Type" not in self.headers:
            self.headers["Content-Type"] = "application/octet-stream"

    @property
    def text(self) -> Optional[str]:
        return None if self.body is None else self.body.decode("utf-8", "replace")

    @text.setter
    def text(self, value: str) -> None:
        self.body = value.encode("utf-8")
        if "Content-Type" not in self.headers:
            self.headers["Content-Type"] = "text/plain; charset=utf-8"


def json_response(data: Any = None, *, text: Optional[str] = None, body: Any = None, status: int = 200,
                  reason: Optional[str] = None, headers: Any = None, content_type: str = "application/json",
                  dumps: Callable[[Any], str] = json.dumps) -> Response:
    """``web.json_response(data)``: ``data`` as JSON (``application/json``)."""
    if data is not None and (text is not None or body is not None):
        raise ValueError("json_response takes data, text or body, not several")
    if text is None and body is None:
        text = dumps(data)
    return Response(text=text, body=body, status=status, reason=reason, headers=headers, content_type=content_type)


class FileResponse(StreamResponse):
    """``web.FileResponse(path)``: the file, read by the host straight from disk."""

    def __init__(self, path: Union[str, "os.PathLike[str]"], chunk_size: int = 256 * 1024, *, status: int = 200,
                 reason: Optional[str] = None, headers: Any = None) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        self._path = os.fspath(path)


class HTTPException(Response, Exception):
    """An HTTP answer that is raised (``raise web.HTTPNotFound()``) or returned."""

    status_code = 500

    def __init__(self, *, headers: Any = None, reason: Optional[str] = None, body: Any = None, text: Optional[str] = None,
                 content_type: Optional[str] = None) -> None:
        status = type(self).status_code
        phrase = reason or HTTPStatus(status).phrase
        if body is None and text is None and status >= 400:
            text = f"{status}: {phrase}"
        Response.__init__(self, status=status, reason=phrase, headers=headers, body=body, text=text, content_type=content_type)
        Exception.__init__(self, phrase)


class _HTTPRedirect(HTTPException):
    def __init__(self, location: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.headers["Location"] = str(location)
        self.location = str(location)


def _exception_class(name: str, status: int, base: type = HTTPException) -> type:
    return type(name, (base,), {"status_code": status, "__doc__": f"``web.{name}``: status {status}."})


# The aiohttp exception classes packs raise, by name and status.
_STATUSES = {
    "HTTPOk": 200, "HTTPCreated": 201, "HTTPAccepted": 202, "HTTPNoContent": 204,
    "HTTPBadRequest": 400, "HTTPUnauthorized": 401, "HTTPForbidden": 403, "HTTPNotFound": 404,
    "HTTPMethodNotAllowed": 405, "HTTPNotAcceptable": 406, "HTTPRequestTimeout": 408, "HTTPConflict": 409,
    "HTTPGone": 410, "HTTPRequestEntityTooLarge": 413, "HTTPUnsupportedMediaType": 415,
    "HTTPUnprocessableEntity": 422, "HTTPTooManyRequests": 429, "HTTPInternalServerError": 500,
    "HTTPNotImplemented": 501, "HTTPBadGateway": 502, "HTTPServiceUnavailable": 503, "HTTPGatewayTimeout": 504,
}
_REDIRECTS = {"HTTPMovedPermanently": 301, "HTTPFound": 302, "HTTPSeeOther": 303, "HTTPTemporaryRedirect": 307,
              "HTTPPermanentRedirect": 308}
EXCEPTIONS: Dict[str, type] = {name: _exception_class(name, code) for name, code in _STATUSES.items()}
EXCEPTIONS.update({name: _exception_class(name, code, _HTTPRedirect) for name, code in _REDIRECTS.items()})
globals().update(EXCEPTIONS)
__all__ += sorted(EXCEPTIONS)


def _body_bytes(body: Any) -> Optional[bytes]:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    value = getattr(body, "_value", None)  # an aiohttp payload (BytesPayload, StringPayload)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"cannot send a response body of type {type(body).__name__}")


def _wire(status: int, headers: List[List[str]], body: Optional[bytes] = None, file: Optional[str] = None,
          reason: Optional[str] = None) -> Dict[str, Any]:
    return {"status": status, "reason": reason, "headers": headers, "body": body, "file": file}


def to_wire(result: Any) -> Dict[str, Any]:
    """What a handler returned (or raised, for an HTTP exception), as the host's answer:
    ``{status, reason, headers: [[name, value]], body: bytes | None, file: path | None}``.

    A dict or list becomes JSON, a str ``text/plain``, bytes ``application/octet-stream``,
    None an empty 204; a response object keeps its status, headers and body (a
    ``FileResponse`` its path).
    """
    if result is None:
        return _wire(204, [])
    if isinstance(result, (dict, list, tuple)):
        return _wire(200, [["Content-Type", "application/json; charset=utf-8"]], json.dumps(result).encode("utf-8"))
    if isinstance(result, str):
        return _wire(200, [["Content-Type", "text/plain; charset=utf-8"]], result.encode("utf-8"))
    if isinstance(result, (bytes, bytearray, memoryview)):
        return _wire(200, [["Content-Type", "application/octet-stream"]], bytes(result))
    status = getattr(result, "status", None)
    if isinstance(status, int):
        headers = _header_pairs(getattr(result, "headers", None))
        reason = getattr(result, "reason", None)
        path = getattr(result, "_path", None)
        if path is not None and type(result).__name__ == "FileResponse":
            return _wire(status, headers, file=os.path.abspath(os.fspath(path)), reason=reason)
        return _wire(status, headers, _body_bytes(getattr(result, "body", None)), reason=reason)
    raise TypeError(
        f"a route handler returned {type(result).__name__}; return a dict or list (JSON), a str, bytes, "
        "or a web.Response / web.json_response / web.FileResponse")
