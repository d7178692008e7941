"""The service table: what this process serves, and which of its attributes may be called.

:func:`serve` puts an object under a name; the endpoint asks :func:`lookup` for the
function behind an incoming ``s.m`` and :func:`mode_of` for where to run it (on the I/O
thread, on the node loop, or in a worker thread).
"""

from __future__ import annotations

import inspect
import types
from typing import Any, Callable

from .errors import NotCallable, type_name

__all__ = [
    "ASYNC",
    "INLINE",
    "SYNC",
    "defined_attr",
    "inline",
    "is_method_like",
    "lookup",
    "mode_of",
    "on_change",
    "serve",
    "services",
]

_services: dict[str, Any] = {}
_services_changed: list[Callable[[], None]] = []

INLINE, ASYNC, SYNC = 0, 1, 2
"""Where a served function runs: on the I/O thread, on the node loop, in a worker thread."""


def serve(name: str, obj: Any) -> None:
    """Serve ``obj`` under ``name``: the other side may call its public methods.

    ``obj`` is an instance (its class's public methods), a class (its public class and
    static methods), a module (its public functions) or a dict of name → function.
    Serving a name again replaces the earlier object.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a service name must be a non-empty string, got {name!r}")
    _services[name] = obj
    for fn in _services_changed:
        fn()


def services() -> dict[str, Any]:
    """The served objects by name (a copy)."""
    return dict(_services)


def on_change(fn: Callable[[], None]) -> None:
    """Call ``fn()`` whenever :func:`serve` changes the table (an endpoint drops its cache)."""
    _services_changed.append(fn)


def inline(fn: Callable) -> Callable:
    """Mark a served method to run on the I/O thread itself, without a hop to a worker
    thread: for tiny, non-blocking methods only (it holds up every other message)."""
    fn._pyisolate_inline = True  # type: ignore[attr-defined]
    return fn


def defined_attr(obj: Any, name: str) -> Any:
    """The attribute ``name`` as defined on the class (or module/dict), never an instance
    attribute; ``None`` when absent."""
    if isinstance(obj, dict):
        return obj.get(name)
    if isinstance(obj, types.ModuleType):
        return obj.__dict__.get(name)
    mro = obj.__mro__ if isinstance(obj, type) else type(obj).__mro__
    for klass in mro:
        if klass is object or klass is type:
            continue
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None


def is_method_like(attr: Any) -> bool:
    """Whether a class attribute (as found in the class's ``__dict__``) is a method that
    may be called remotely: functions, static and class methods, callables, but not
    properties or nested classes."""
    if isinstance(attr, (staticmethod, classmethod)):
        return True
    if isinstance(attr, (property, type)):
        return False
    return callable(attr)


def mode_of(fn: Callable) -> int:
    """:data:`INLINE` for :func:`inline` functions, :data:`ASYNC` for coroutine functions,
    else :data:`SYNC`."""
    if getattr(fn, "_pyisolate_inline", False):
        return INLINE
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None)):
        return ASYNC
    return SYNC


def lookup(s: str, m: str, who: str) -> Callable:
    """The function served as ``s.m``; raises :class:`NotCallable` with a sentence saying
    why it may not be called (``who`` names this process)."""
    if s not in _services:
        served = ", ".join(sorted(_services)) or "none"
        raise NotCallable(f"no service named {s!r} is served by {who} (served: {served})")
    if not isinstance(m, str) or not m.isidentifier() or m.startswith("_"):
        raise NotCallable(
            f"{s}.{m} cannot be called: only public methods (names without a leading "
            "underscore) of a served object are callable"
        )
    obj = _services[s]
    attr = defined_attr(obj, m)
    if attr is None or not is_method_like(attr):
        what = "not defined" if attr is None else "not a method"
        raise NotCallable(
            f"{s}.{m} cannot be called: {m!r} is {what} on the served "
            f"{'object' if not isinstance(obj, type) else 'class'} {type_name(obj if isinstance(obj, type) else type(obj))}"
        )
    return obj[m] if isinstance(obj, dict) else getattr(obj, m)
