"""The ``request`` a pack's route handler receives: aiohttp's ``web.Request``, as far as
packs use it.

The host sends the whole request at once (method, path, query, headers, the
``match_info`` of the route's pattern, the body); ``await request.json()``, ``.text()``,
``.read()`` and ``.post()`` (URL-encoded forms and ``multipart/form-data``, whose files
come as :class:`FileField` with a ``file`` to read) work on that body.
"""
from __future__ import annotations

import io
import json
from email import policy
from email.parser import BytesParser
from http.cookies import SimpleCookie
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

__all__ = ["CIMultiDict", "FileField", "MultiDict", "Request"]


class MultiDict:
    """A read-only mapping whose keys may repeat: ``[key]``/``get`` give the first value, ``getall`` every one."""

    def __init__(self, items: Iterable[Tuple[str, Any]] = ()) -> None:
        self._items: List[Tuple[str, Any]] = [(str(k), v) for k, v in items]

    def _norm(self, key: str) -> str:
        return key

    def getall(self, key: str, default: Any = ...) -> List[Any]:
        found = [v for k, v in self._items if self._norm(k) == self._norm(key)]
        if not found and default is not ...:
            return default
        if not found:
            raise KeyError(key)
        return found

    def getone(self, key: str, default: Any = ...) -> Any:
        for k, v in self._items:
            if self._norm(k) == self._norm(key):
                return v
        if default is not ...:
            return default
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self.getone(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.getone(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and any(self._norm(k) == self._norm(key) for k, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> List[str]:
        return [k for k, _ in self._items]

    def values(self) -> List[Any]:
        return [v for _, v in self._items]

    def items(self) -> List[Tuple[str, Any]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}({self._items!r})>"


class CIMultiDict(MultiDict):
    """A :class:`MultiDict` whose keys compare without case (HTTP headers)."""

    def _norm(self, key: str) -> str:
        return key.lower()


class FileField:
    """A file of a ``multipart/form-data`` body (aiohttp's ``FileField``)."""

    def __init__(self, name: str, filename: str, file: io.BytesIO, content_type: str, headers: CIMultiDict) -> None:
        self.name = name
        self.filename = filename
        self.file = file
        self.content_type = content_type
        self.headers = headers

    def __repr__(self) -> str:
        return f"<FileField {self.name}={self.filename!r} ({self.content_type})>"


class _URL:
    """The part of yarl's ``URL`` handlers read: ``path``, ``query``, ``query_string``, ``str()``."""

    def __init__(self, url: str) -> None:
        self._url = url
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.path = parts.path or "/"
        self.query_string = parts.query
        self.query = MultiDict(parse_qsl(parts.query, keep_blank_values=True))
        self.raw_path = self.path

    @property
    def path_qs(self) -> str:
        return self.path + (f"?{self.query_string}" if self.query_string else "")

    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"URL({self._url!r})"


def _media_type(value: Optional[str]) -> Tuple[str, Dict[str, str]]:
    if not value:
        return "application/octet-stream", {}
    parts = [p.strip() for p in value.split(";")]
    params: Dict[str, str] = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"')
    return parts[0].lower(), params


def parse_form(content_type: Optional[str], body: bytes) -> MultiDict:
    """A form body as a :class:`MultiDict`: text fields as str, files as :class:`FileField`."""
    media, params = _media_type(content_type)
    charset = params.get("charset", "utf-8")
    if media == "application/x-www-form-urlencoded":
        return MultiDict(parse_qsl(body.decode(charset, "replace"), keep_blank_values=True))
    if media != "multipart/form-data":
        return MultiDict()
    if "boundary" not in params:
        raise ValueError("a multipart/form-data body needs a boundary in its Content-Type")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    items: List[Tuple[str, Any]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name is None:
            continue
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            headers = CIMultiDict((k, str(v)) for k, v in part.items())
            items.append((str(name), FileField(str(name), filename, io.BytesIO(payload), part.get_content_type(), headers)))
        else:
            items.append((str(name), payload.decode(part.get_content_charset() or "utf-8", "replace")))
    return MultiDict(items)


class _Content:
    """``request.content``: the body as a stream (``await read()``, ``async for chunk in iter_chunked(n)``)."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._pos = 0

    async def read(self, n: int = -1) -> bytes:
        end = len(self._body) if n < 0 else min(len(self._body), self._pos + n)
        chunk = self._body[self._pos:end]
        self._pos = end
        return chunk

    async def readany(self) -> bytes:
        return await self.read()

    async def iter_chunked(self, n: int) -> Any:
        while True:
            chunk = await self.read(n)
            if not chunk:
                return
            yield chunk

    def at_eof(self) -> bool:
        return self._pos >= len(self._body)


class Request:
    """A request as the host passed it (see the module doc)."""

    def __init__(self, data: Dict[str, Any]) -> None:
        self.method: str = str(data.get("method") or "GET").upper()
        self.url = _URL(str(data.get("url") or data.get("path") or "/"))
        self.rel_url = _URL(self.url.path_qs)
        self.path: str = str(data.get("path") or self.url.path)
        self.raw_path = self.url.path_qs
        self.path_qs = self.url.path_qs
        self.query = MultiDict((str(k), str(v)) for k, v in (data.get("query") or []))
        self.query_string = self.url.query_string
        self.headers = CIMultiDict((str(k), str(v)) for k, v in (data.get("headers") or []))
        self.match_info: Dict[str, str] = {str(k): str(v) for k, v in (data.get("match_info") or {}).items()}
        self.remote: Optional[str] = data.get("remote")
        self.scheme = self.url.scheme or "http"
        self.host = self.headers.get("Host") or self.url.host or ""
        body = data.get("body")
        self._body: bytes = bytes(body) if body is not None else b""
        self._post: Optional[MultiDict] = None
        self._state: Dict[str, Any] = {}
        self.app: Dict[str, Any] = {}
        self.content = _Content(self._body)

    # -- what aiohttp's Request answers -----------------------------------------------------

    @property
    def content_type(self) -> str:
        return _media_type(self.headers.get("Content-Type"))[0]

    @property
    def charset(self) -> Optional[str]:
        return _media_type(self.headers.get("Content-Type"))[1].get("charset")

    @property
    def content_length(self) -> Optional[int]:
        value = self.headers.get("Content-Length")
        return int(value) if value and value.isdigit() else len(self._body)

    @property
    def body_exists(self) -> bool:
        return len(self._body) > 0

    can_read_body = body_exists

    @property
    def has_body(self) -> bool:
        return self.body_exists

    @property
    def cookies(self) -> Dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        jar.load(self.headers.get("Cookie", ""))
        return {k: m.value for k, m in jar.items()}

    async def read(self) -> bytes:
        return self._body

    async def text(self) -> str:
        return self._body.decode(self.charset or "utf-8")

    async def json(self, *, loads: Callable[[str], Any] = json.loads) -> Any:
        return loads(await self.text())

    async def post(self) -> MultiDict:
        if self._post is None:
            self._post = parse_form(self.headers.get("Content-Type"), self._body)
        return self._post

    # aiohttp's Request is a mutable mapping for per-request state.
    def __getitem__(self, key: str) -> Any:
        return self._state[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._state

    def get(self, key: str, default: Any = None) -> Any:
        return self._state.get(key, default)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path_qs}>"
