"""The host, seen from Python: what node code, the comfy shims and extensions call.

Every function works in a process started by the host (``python -m pyisolate_runtime``).
Outside one, :func:`serve`, :func:`on_event` and the introspection functions still work
(they record or report "not connected"); calls raise ``RuntimeError``.

Threading rule (see docs/python-runtime.md):

* :func:`call` waits for the answer: use it from node code (worker threads, the main
  thread, the node loop's thread). On the I/O thread (inside an :func:`on_event`
  handler) it raises ``RuntimeError``.
* :func:`acall` is the ``async`` form, for any running asyncio loop.
* :func:`emit` never waits and works from every thread.
"""

from __future__ import annotations

from typing import Any, Callable

from . import rpc

__all__ = [
    "acall",
    "call",
    "cancelled",
    "config",
    "emit",
    "inline",
    "is_connected",
    "is_shared_process",
    "on_event",
    "pack_name",
    "run_async",
    "serve",
    "service",
]

_endpoint: rpc.Endpoint | None = None
_config: dict[str, Any] = {}
_pending_events: list[tuple[str, str, Callable]] = []

inline = rpc.inline


def _bind(endpoint: rpc.Endpoint, cfg: dict[str, Any]) -> None:
    """Connect this module to the process's endpoint (done by the runtime at start)."""
    global _endpoint, _config
    _endpoint = endpoint
    _config = cfg
    for s, m, fn in _pending_events:
        endpoint.on_event(s, m, fn)
    _pending_events.clear()


def _ep(what: str) -> rpc.Endpoint:
    if _endpoint is None:
        raise RuntimeError(
            f"cannot {what}: this Python process was not started by a pyisolate host "
            "(run it through pyisolate, or call the function directly)"
        )
    return _endpoint


def call(service: str, method: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
    """Call ``service.method(*args, **kwargs)`` on the host and return its result.

    Waits for the answer, up to ``timeout`` seconds (``None``: no limit; the call still
    fails with ``ConnectionError`` if the host goes away). Raises ``TimeoutError`` (and
    cancels the call on the host), the host's error (its Python type when importable
    here, else ``pyisolate.RemoteError``), or ``RuntimeError`` on the I/O thread — from
    async code use :func:`acall`.
    """
    return _ep(f"call {service}.{method}").call(service, method, args, kwargs, timeout)


async def acall(service: str, method: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
    """The ``async`` form of :func:`call`; awaiting it never blocks the loop."""
    return await _ep(f"call {service}.{method}").acall(service, method, args, kwargs, timeout)


def emit(service: str, method: str, *args: Any, **kwargs: Any) -> None:
    """Send event ``service.method(*args, **kwargs)`` to the host: no answer, no wait."""
    _ep(f"emit {service}.{method}").emit(service, method, args, kwargs)


def serve(name: str, obj: Any) -> None:
    """Let the host call the public methods of ``obj`` as service ``name``.

    ``obj`` may be an instance, a class, a module or a dict of functions. Only public
    (no leading underscore) methods defined on its class are callable. ``def`` methods
    run in a worker thread, ``async def`` methods on the node loop.
    """
    rpc.serve(name, obj)


class ServiceProxy:
    """Attribute access gives callables that call the host service (see :func:`service`)."""

    __slots__ = ("_name", "_methods")

    def __init__(self, name: str) -> None:
        self._name = name
        self._methods: dict[str, Callable[..., Any]] = {}

    def __getattr__(self, attr: str) -> Callable[..., Any]:
        if attr.startswith("_"):
            raise AttributeError(
                f"{attr!r} is private: only public methods of host service {self._name!r} can be called"
            )
        fn = self._methods.get(attr)
        if fn is None:
            name = self._name

            def fn(*args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
                return call(name, attr, *args, timeout=timeout, **kwargs)

            fn.__name__ = fn.__qualname__ = attr
            self._methods[attr] = fn
        return fn

    def __repr__(self) -> str:
        return f"<host service {self._name}>"


def service(name: str) -> ServiceProxy:
    """A proxy of host service ``name``: ``service("FolderPaths").get_filename_list("x")``
    is ``call("FolderPaths", "get_filename_list", "x")``."""
    return ServiceProxy(name)


def config() -> dict[str, Any]:
    """The config the host sent (``pack``, ``path``, ``kind``, ``packs``, ``sys_path``,
    ``services``, ``options``); ``{}`` outside a pyisolate process."""
    return _config


def pack_name() -> str | None:
    """This process's name (its pack, or the shared process's name)."""
    return _config.get("pack")


def is_shared_process() -> bool:
    """True in the shared Python process (packs without a manifest)."""
    return _config.get("kind") == "shared"


def is_connected() -> bool:
    """True in a process started by a pyisolate host."""
    return _endpoint is not None and not _endpoint.closed


def on_event(service: str, method: str, fn: Callable[..., Any]) -> None:
    """Run ``fn(*args, **kwargs)`` when the host sends event ``service.method``.

    Handlers run on the I/O thread the moment the event arrives — not queued behind
    running node code — so they must be quick and must not :func:`call` the host
    (setting a flag is the typical use). A handler that returns a coroutine has it run on
    the node loop.
    """
    if _endpoint is None:
        _pending_events.append((service, method, fn))
    else:
        _endpoint.on_event(service, method, fn)


def cancelled() -> bool:
    """True when the host cancelled the call this worker thread is serving; long-running
    ``def`` methods may poll it (``async def`` methods get ``CancelledError`` instead)."""
    return rpc.current_job_cancelled()


def run_async(coro: Any, timeout: float | None = None) -> Any:
    """Run a coroutine on the node loop and wait for its result, from a thread that runs
    no event loop (a worker thread serving a ``def`` method)."""
    return _ep("run a coroutine").run_coroutine(coro, timeout)
