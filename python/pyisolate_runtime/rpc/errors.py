"""Errors across the connection: the protocol's exception map and its way back.

An exception crosses as the map ``{type, message, traceback}`` (CBOR tag 41504, or the
``e`` of an ``err`` answer). :func:`restore_exception` rebuilds it on this side: the same
type when it can be found here, else :class:`RemoteError`.
"""

from __future__ import annotations

import builtins
import sys
import traceback
from typing import Any

from ..cbor import register_encoder, register_tag

__all__ = [
    "NotCallable",
    "RemoteError",
    "TAG_EXCEPTION",
    "exception_map",
    "restore_exception",
    "type_name",
]

TAG_EXCEPTION = 41504
"""CBOR tag of an exception (content: its exception map)."""


class NotCallable(Exception):
    """The call named a service or method that may not be called (unknown service,
    private or missing method, or an attribute that is not a method of the class)."""


NotCallable.__module__ = "pyisolate"


class RemoteError(Exception):
    """An error raised on the other side whose type cannot be rebuilt here.

    ``remote_type`` is the qualified type name the other side reported and
    ``remote_traceback`` its formatted traceback (``""`` when raised in TypeScript).
    """

    def __init__(self, remote_type: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{self.remote_type}: {msg}" if msg else self.remote_type


RemoteError.__module__ = "pyisolate"

_OUR_TYPES: dict[str, type[BaseException]] = {
    "pyisolate.NotCallable": NotCallable,
    "pyisolate.RemoteError": RemoteError,
}


def type_name(cls: type) -> str:
    """Qualified name of a type: ``module.qualname``, bare for builtins."""
    mod = getattr(cls, "__module__", None) or ""
    q = getattr(cls, "__qualname__", None) or cls.__name__
    return q if mod == "builtins" else f"{mod}.{q}"


def exception_map(e: BaseException, *, with_traceback: bool = True) -> dict[str, str]:
    """The protocol's exception map ``{type, message, traceback}`` of ``e``."""
    if isinstance(e, RemoteError):
        tname = e.remote_type
        message = Exception.__str__(e)
    else:
        tname = getattr(e, "remote_type", None) or type_name(type(e))
        message = str(e)
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)) if with_traceback else ""
    return {"type": tname, "message": message, "traceback": tb}


def _find_exception_class(name: str) -> type[Exception] | None:
    """The ``Exception`` subclass ``name`` names: one of ours, a builtin, or an attribute
    path into a module already imported here; ``None`` when there is none."""
    cls: Any = _OUR_TYPES.get(name)
    if cls is not None:
        return cls
    parts = name.split(".")
    if len(parts) == 1:
        cls = getattr(builtins, name, None)
    else:
        cls = None
        for i in range(len(parts) - 1, 0, -1):
            mod = sys.modules.get(".".join(parts[:i]))
            if mod is None:
                continue
            obj: Any = mod
            for attr in parts[i:]:
                obj = getattr(obj, attr, None)
                if obj is None:
                    break
            cls = obj
            break
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls
    return None


def restore_exception(m: Any) -> BaseException:
    """Rebuild an exception from its map: the original type when it is an ``Exception``
    subclass importable here (builtins, or a module already loaded), else
    :class:`RemoteError`. The remote traceback is attached as ``remote_traceback`` and as
    a note, so that printing the exception shows both sides."""
    if not isinstance(m, dict):
        return RemoteError("Error", repr(m))
    tname = str(m.get("type") or "Error")
    message = str(m.get("message") or "")
    tb = str(m.get("traceback") or "")
    exc: BaseException | None = None
    cls = _find_exception_class(tname)
    if cls is RemoteError:
        cls = None
    if cls is not None:
        try:
            exc = cls(message)
        except Exception:
            exc = None
    if exc is None:
        exc = RemoteError(tname, message, tb)
    else:
        try:
            exc.remote_type = tname  # type: ignore[attr-defined]
            exc.remote_traceback = tb  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass
    if tb and hasattr(exc, "add_note"):  # Python 3.11+: printed with the exception
        exc.add_note("Traceback in the other process:\n" + tb.rstrip())
    return exc


register_encoder(BaseException, lambda e: (TAG_EXCEPTION, exception_map(e)))
register_tag(TAG_EXCEPTION, restore_exception)
