"""The connection endpoint: calls both ways over one socket (see docs/protocol.md).

Threads of a pyisolate Python process:

* the **I/O thread** reads frames, settles the answers to our own calls, answers runtime
  calls (``$rt``) and runs :meth:`Endpoint.on_event` handlers at once, so an interrupt
  never waits behind node code. It must never block on the host.
* the **node loop** (an asyncio loop on the main thread, once the packs are imported)
  runs served ``async def`` methods as tasks;
* a **thread pool** runs served plain methods, so node code may itself call the host
  and wait: nested calls both ways (host → child → host → child) do not deadlock.

Any thread may write; a lock keeps frames whole.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import concurrent.futures
import inspect
import itertools
import socket
import sys
import threading
import traceback
import types
import weakref
from typing import Any, Callable

from ..cbor import CBORDecodeError, CBOREncodeError, dumps, loads, register_encoder, register_tag
from ..protocol.frames import MAX_FRAME, FrameError, FrameReader, encode_header

__all__ = [
    "Endpoint",
    "NotCallable",
    "RemoteCallable",
    "RemoteError",
    "TAG_CALLABLE",
    "TAG_EXCEPTION",
    "exception_map",
    "inline",
    "restore_exception",
    "serve",
    "services",
    "type_name",
]

TAG_CALLABLE = 41503
TAG_EXCEPTION = 41504

_MAX_WORKERS = 256


# --------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------- services

_services: dict[str, Any] = {}
_services_changed: list[Callable[[], None]] = []


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


def inline(fn: Callable) -> Callable:
    """Mark a served method to run on the I/O thread itself, without a hop to a worker
    thread: for tiny, non-blocking methods only (it holds up every other message)."""
    fn._pyisolate_inline = True  # type: ignore[attr-defined]
    return fn


def _defined_attr(obj: Any, name: str) -> Any:
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


def _is_method_like(attr: Any) -> bool:
    if isinstance(attr, (staticmethod, classmethod)):
        return True
    if isinstance(attr, (property, type)):
        return False
    return callable(attr)


_INLINE, _ASYNC, _SYNC = 0, 1, 2


# --------------------------------------------------------------------------- waiters & jobs


class _ThreadWaiter:
    __slots__ = ("lock", "value", "error")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.value: Any = None
        self.error: BaseException | None = None

    def resolve(self, v: Any) -> None:
        self.value = v
        self.lock.release()

    def reject(self, e: BaseException) -> None:
        self.error = e
        self.lock.release()


def _set_result(fut: asyncio.Future, v: Any) -> None:
    if not fut.done():
        fut.set_result(v)


def _set_exception(fut: asyncio.Future, e: BaseException) -> None:
    if not fut.done():
        fut.set_exception(e)


class _LoopWaiter:
    __slots__ = ("loop", "fut")

    def __init__(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future) -> None:
        self.loop = loop
        self.fut = fut

    def resolve(self, v: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(_set_result, self.fut, v)
        except RuntimeError:  # that loop is closed: nobody waits any more
            pass

    def reject(self, e: BaseException) -> None:
        try:
            self.loop.call_soon_threadsafe(_set_exception, self.fut, e)
        except RuntimeError:
            pass


class _Job:
    """An incoming call being served."""

    __slots__ = ("future", "cancelled")

    def __init__(self) -> None:
        self.future: concurrent.futures.Future | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.future is not None:
            self.future.cancel()


_ctx = threading.local()


def current_job_cancelled() -> bool:
    """True when the incoming call served by this thread was cancelled by the caller."""
    job = getattr(_ctx, "job", None)
    return bool(job is not None and job.cancelled)


# --------------------------------------------------------------------------- callables


class RemoteCallable:
    """A function of the other side (tag 41503). Calling it:

    * in a thread with a running asyncio loop (the node loop, or a loop of your own):
      sends the call at once and returns an ``asyncio.Future`` to await;
    * in any other thread (node code in the worker pool): waits and returns the value;
    * on the I/O thread: raises ``RuntimeError``.
    """

    __slots__ = ("_ep", "_id", "__weakref__")

    def __init__(self, ep: "Endpoint", cid: str) -> None:
        self._ep = ep
        self._id = cid

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ep.call_auto("$cb", self._id, args, kwargs)

    def __repr__(self) -> str:
        return f"<remote callable {self._id}>"

    def __del__(self) -> None:
        ep = self._ep
        if not ep.closed:
            ep._releases.append(self._id)


# --------------------------------------------------------------------------- endpoint


class Endpoint:
    """One connection to the host.

    Create it on a connected socket after the handshake, then :meth:`start` the I/O
    thread. ``name`` names the process in error messages; ``on_close(reason, code)`` runs
    on the I/O thread once the connection ends (``reason`` is ``"eof"``, ``"bye"``,
    ``"shutdown"`` or a protocol error sentence).
    """

    def __init__(self, sock: socket.socket, name: str, on_close: Callable[[str, int], None] | None = None) -> None:
        self.name = name
        self.closed = False
        self._sock = sock
        self._wlock = threading.Lock()
        self._on_close = on_close
        self._pending: dict[int, Any] = {}
        self._next_id = itertools.count(1).__next__
        self._running: dict[int, _Job] = {}
        self._callbacks: dict[str, Callable] = {}
        self._next_cb = itertools.count(1).__next__
        self._remote_cbs: "weakref.WeakValueDictionary[str, RemoteCallable]" = weakref.WeakValueDictionary()
        self._releases: collections.deque[str] = collections.deque()
        self._events: dict[tuple[str, str], list[Callable]] = {}
        self._method_cache: dict[tuple[str, str], tuple[Callable, int]] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=_MAX_WORKERS, thread_name_prefix="pyisolate-call"
        )
        self._hooks = {TAG_CALLABLE: self._decode_callable}
        self._reader: threading.Thread | None = None
        self._reader_ident = -1
        self._exit_requested = False
        self.node_loop: asyncio.AbstractEventLoop | None = None
        self._node_ident = -1
        self._node_blocked = 0
        _services_changed.append(self._method_cache.clear)
        self._dispatch = {
            "ok": self._on_ok,
            "err": self._on_err,
            "call": self._on_call,
            "event": self._on_event,
            "cancel": self._on_cancel,
            "bye": self._on_bye,
        }

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the I/O thread (a daemon thread: it never keeps the process alive)."""
        self._reader = threading.Thread(target=self._read_loop, name="pyisolate-io", daemon=True)
        self._reader.start()

    def set_node_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Use ``loop`` (run by the calling thread, from now on or later) for served
        ``async def`` methods."""
        self.node_loop = loop
        self._node_ident = threading.get_ident()

    def request_exit(self) -> None:
        """Close the connection after the current message (``$rt.shutdown``)."""
        self._exit_requested = True

    def _read_loop(self) -> None:
        self._reader_ident = threading.get_ident()
        reader = FrameReader(self._sock)
        reason, code = "eof", 0
        dispatch = self._dispatch
        hooks = self._hooks
        try:
            while True:
                payload = reader.read()
                if payload is None:
                    break
                try:
                    msg = loads(payload, hooks)
                except CBORDecodeError as e:
                    reason, code = f"a frame from the host is not valid CBOR: {e}", 2
                    break
                except Exception as e:
                    # a tag decoder failed (a tensor segment that is gone, say): fail that
                    # one message, not the connection
                    problem = self._undecodable(payload, e)
                    if problem:
                        reason, code = problem, 2
                        break
                    continue
                handler = dispatch.get(msg.get("t")) if type(msg) is dict else None  # type: ignore[arg-type]
                if handler is None:
                    reason, code = "a frame from the host is not a message with a known kind (t)", 2
                    break
                try:
                    handler(msg)
                except (KeyError, TypeError, ValueError) as e:
                    reason, code = f"a {msg.get('t')!r} message from the host is malformed ({e!r})", 2
                    break
                except Exception:
                    _log_exception(f"handling a {msg.get('t')!r} message failed")
                if self._exit_requested:
                    reason = "shutdown"
                    break
                if self.closed:
                    reason = "bye"
                    break
        except FrameError as e:
            reason, code = f"framing error: {e}", 2
        except OSError as e:
            reason = f"eof ({e})"
        except BaseException:
            _log_exception("the I/O thread failed")
            reason, code = "the I/O thread failed", 1
        self._close(reason, code)

    def _undecodable(self, payload: bytes | bytearray, e: Exception) -> str | None:
        """Fail the one message whose content could not be decoded; returns a protocol
        error sentence when even its envelope is unreadable."""
        try:
            raw = loads(payload, registered=False)
        except Exception:
            return f"a frame from the host could not be decoded ({type(e).__name__}: {e})"
        if type(raw) is not dict or raw.get("t") not in self._dispatch:
            return "a frame from the host is not a message with a known kind (t)"
        t, cid = raw["t"], raw.get("id")
        what = f"{raw.get('s')}.{raw.get('m')}" if t in ("call", "event") else f"the answer to call {cid}"
        _log(f"{what}: a value from the host could not be decoded here: {type(e).__name__}: {e}")
        if t == "call" and isinstance(cid, int):
            self._reply_err(cid, e)
        elif t in ("ok", "err"):
            w = self._pending.pop(cid, None)
            if w is not None:
                w.reject(e)
        return None

    def _close(self, reason: str, code: int) -> None:
        self.closed = True
        try:
            err = ConnectionError(f"the connection to the host closed before the answer came ({reason})")
            pending, self._pending = self._pending, {}
            for w in list(pending.values()):
                try:
                    w.reject(err)
                except Exception:
                    _log_exception("rejecting a pending call failed")
            for job in list(self._running.values()):
                try:
                    job.cancel()
                except Exception:
                    _log_exception("cancelling a running call failed")
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        finally:
            # Whatever failed above, the process must still leave: a child whose host is
            # gone may not linger.
            if self._on_close is not None:
                self._on_close(reason, code)

    # ----------------------------------------------------------------- sending

    def _default(self, obj: Any) -> tuple[int, Any] | None:
        if callable(obj) and not isinstance(obj, type):
            cid = str(self._next_cb())
            self._callbacks[cid] = obj
            return TAG_CALLABLE, {"id": cid}
        return None

    def _send(self, msg: dict) -> None:
        payload = dumps(msg, self._default)
        n = len(payload)
        if n > MAX_FRAME:
            raise FrameError(f"a message of {n} bytes exceeds the {MAX_FRAME}-byte frame limit")
        releases = self._releases
        with self._wlock:
            if self.closed:
                raise ConnectionError("the connection to the host is closed")
            if releases:
                ids = []
                while releases:
                    ids.append(releases.popleft())
                rel = dumps({"t": "event", "s": "$cb", "m": "release", "a": ids})
                self._sock.sendall(encode_header(len(rel)) + rel)
            if n < 65536:
                self._sock.sendall(encode_header(n) + payload)
            else:
                self._sock.sendall(encode_header(n))
                self._sock.sendall(payload)

    def _try_send(self, msg: dict) -> None:
        try:
            self._send(msg)
        except (OSError, FrameError, CBOREncodeError):
            pass

    def _reply_ok(self, cid: int, v: Any, s: str, m: str) -> None:
        try:
            self._send({"t": "ok", "id": cid, "v": v})
        except CBOREncodeError as e:
            self._reply_err(cid, TypeError(f"the result of {s}.{m} in {self.name} could not be encoded: {e}"), tb=False)
        except FrameError as e:
            self._reply_err(cid, ValueError(f"the result of {s}.{m} in {self.name} is too large: {e}"), tb=False)
        except OSError:
            pass

    def _reply_err(self, cid: int, e: BaseException, tb: bool = True) -> None:
        try:
            self._send({"t": "err", "id": cid, "e": exception_map(e, with_traceback=tb)})
        except (OSError, FrameError, CBOREncodeError):
            pass

    # ----------------------------------------------------------------- outgoing calls

    def _message(self, kind: str, cid: int | None, s: str, m: str, args: Any, kwargs: Any) -> dict:
        msg: dict[str, Any] = {"t": kind}
        if cid is not None:
            msg["id"] = cid
        msg["s"] = s
        msg["m"] = m
        msg["a"] = list(args)
        if kwargs:
            msg["k"] = kwargs
        return msg

    def call(self, s: str, m: str, args: Any = (), kwargs: Any = None, timeout: float | None = None) -> Any:
        """Call ``s.m`` on the host and wait for the answer (any thread but the I/O thread).

        Raises ``TimeoutError`` after ``timeout`` seconds (and tells the host to cancel),
        ``ConnectionError`` when the connection closes first, or the host's error.
        """
        tid = threading.get_ident()
        if tid == self._reader_ident:
            raise RuntimeError(
                f"cannot wait for {s}.{m} on the pyisolate I/O thread (an on_event handler): "
                "it would stop the answer from being read; use acall from async code, or emit"
            )
        if self.closed:
            raise ConnectionError(f"cannot call {s}.{m}: the connection to the host is closed")
        cid = self._next_id()
        w = _ThreadWaiter()
        self._pending[cid] = w
        # Mark the node loop as blocked before the call can be answered: an async call
        # the host makes back into this process meanwhile must not be queued behind us.
        on_node_loop = tid == self._node_ident
        if on_node_loop:
            self._node_blocked += 1
        try:
            self._send(self._message("call", cid, s, m, args, kwargs))
            got = w.lock.acquire(timeout=-1 if timeout is None else max(timeout, 0))
        except BaseException:
            self._pending.pop(cid, None)
            raise
        finally:
            if on_node_loop:
                self._node_blocked -= 1
        if not got:
            if self._pending.pop(cid, None) is not None:
                self._try_send({"t": "cancel", "id": cid})
                raise TimeoutError(f"{s}.{m} did not answer within {timeout} s (called from {self.name})")
            w.lock.acquire()  # the answer raced the timeout: it is being delivered
        if w.error is not None:
            raise w.error
        return w.value

    def call_future(self, s: str, m: str, args: Any = (), kwargs: Any = None, timeout: float | None = None) -> asyncio.Future:
        """Send the call now and return a future of the running loop for its answer.
        Cancelling the future tells the host to cancel; ``timeout`` fails it with
        ``TimeoutError``."""
        loop = asyncio.get_running_loop()
        if self.closed:
            raise ConnectionError(f"cannot call {s}.{m}: the connection to the host is closed")
        fut = loop.create_future()
        cid = self._next_id()
        self._pending[cid] = _LoopWaiter(loop, fut)
        try:
            self._send(self._message("call", cid, s, m, args, kwargs))
        except BaseException:
            self._pending.pop(cid, None)
            raise
        if timeout is not None:
            handle = loop.call_later(timeout, self._expire, cid, fut, s, m, timeout)
            fut.add_done_callback(lambda _f: handle.cancel())
        fut.add_done_callback(lambda f: self._future_done(cid, f))
        return fut

    def _future_done(self, cid: int, fut: asyncio.Future) -> None:
        if fut.cancelled() and self._pending.pop(cid, None) is not None:
            self._try_send({"t": "cancel", "id": cid})

    def _expire(self, cid: int, fut: asyncio.Future, s: str, m: str, timeout: float) -> None:
        if self._pending.pop(cid, None) is not None:
            self._try_send({"t": "cancel", "id": cid})
            _set_exception(fut, TimeoutError(f"{s}.{m} did not answer within {timeout} s (called from {self.name})"))

    async def acall(self, s: str, m: str, args: Any = (), kwargs: Any = None, timeout: float | None = None) -> Any:
        """Call ``s.m`` on the host from async code (any running loop)."""
        return await self.call_future(s, m, args, kwargs, timeout)

    def call_auto(self, s: str, m: str, args: Any = (), kwargs: Any = None, timeout: float | None = None) -> Any:
        """A future to await when this thread runs an asyncio loop; else the value."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self.call(s, m, args, kwargs, timeout)
        return self.call_future(s, m, args, kwargs, timeout)

    def emit(self, s: str, m: str, args: Any = (), kwargs: Any = None) -> None:
        """Send an event (no answer) from any thread."""
        self._send(self._message("event", None, s, m, args, kwargs))

    # ----------------------------------------------------------------- incoming

    def _on_ok(self, msg: dict) -> None:
        w = self._pending.pop(msg["id"], None)
        if w is not None:
            w.resolve(msg.get("v"))

    def _on_err(self, msg: dict) -> None:
        w = self._pending.pop(msg["id"], None)
        if w is not None:
            w.reject(restore_exception(msg.get("e")))

    def _on_cancel(self, msg: dict) -> None:
        job = self._running.pop(msg["id"], None)
        if job is not None:
            job.cancel()

    def _on_bye(self, msg: dict) -> None:
        self.closed = True

    def _decode_callable(self, content: Any) -> RemoteCallable:
        cid = str(content["id"])
        proxy = self._remote_cbs.get(cid)
        if proxy is None:
            proxy = RemoteCallable(self, cid)
            self._remote_cbs[cid] = proxy
        return proxy

    def _resolve(self, s: str, m: str) -> tuple[Callable, int]:
        hit = self._method_cache.get((s, m))
        if hit is not None:
            return hit
        if s == "$cb":
            fn = self._callbacks.get(m)
            if fn is None:
                raise NotCallable(f"callback {m!r} of {self.name} does not exist (released, or never passed)")
            return fn, _mode_of(fn)
        if s not in _services:
            served = ", ".join(sorted(_services)) or "none"
            raise NotCallable(f"no service named {s!r} is served by {self.name} (served: {served})")
        if not isinstance(m, str) or not m.isidentifier() or m.startswith("_"):
            raise NotCallable(
                f"{s}.{m} cannot be called: only public methods (names without a leading "
                "underscore) of a served object are callable"
            )
        obj = _services[s]
        attr = _defined_attr(obj, m)
        if attr is None or not _is_method_like(attr):
            what = "not defined" if attr is None else "not a method"
            raise NotCallable(
                f"{s}.{m} cannot be called: {m!r} is {what} on the served "
                f"{'object' if not isinstance(obj, type) else 'class'} {type_name(obj if isinstance(obj, type) else type(obj))}"
            )
        fn = obj[m] if isinstance(obj, dict) else getattr(obj, m)
        hit = (fn, _mode_of(fn))
        self._method_cache[(s, m)] = hit
        return hit

    def _node_loop_usable(self) -> bool:
        loop = self.node_loop
        return loop is not None and self._node_blocked == 0 and loop.is_running()

    def _on_call(self, msg: dict) -> None:
        cid = msg["id"]
        s = msg["s"]
        m = msg["m"]
        a = msg.get("a") or ()
        k = msg.get("k") or {}
        try:
            fn, mode = self._resolve(s, m)
        except NotCallable as e:
            self._reply_err(cid, e, tb=False)
            return
        if mode == _INLINE:
            try:
                v = fn(*a, **k)
            except Exception as e:
                self._reply_err(cid, e)
            else:
                self._reply_ok(cid, v, s, m)
            return
        job = _Job()
        self._running[cid] = job
        if mode == _ASYNC:
            if self._node_loop_usable():
                job.future = asyncio.run_coroutine_threadsafe(
                    self._serve_async(cid, fn, a, k, s, m), self.node_loop  # type: ignore[arg-type]
                )
            else:
                job.future = self._executor.submit(self._serve_async_in_thread, cid, fn, a, k, s, m)
        else:
            job.future = self._executor.submit(self._serve_sync, cid, job, fn, a, k, s, m)

    def _serve_sync(self, cid: int, job: _Job, fn: Callable, a: Any, k: Any, s: str, m: str) -> None:
        _ctx.job = job
        try:
            v = fn(*a, **k)
            if inspect.isawaitable(v):
                v = self.run_coroutine(v)
        except BaseException as e:
            if self._running.pop(cid, None) is not None:
                self._reply_err(cid, e)
        else:
            if self._running.pop(cid, None) is not None:
                self._reply_ok(cid, v, s, m)
        finally:
            _ctx.job = None

    async def _serve_async(self, cid: int, fn: Callable, a: Any, k: Any, s: str, m: str) -> None:
        try:
            v = await fn(*a, **k)
        except asyncio.CancelledError as e:
            if self._running.pop(cid, None) is not None:
                self._reply_err(cid, e)
            raise
        except BaseException as e:
            if self._running.pop(cid, None) is not None:
                self._reply_err(cid, e)
        else:
            if self._running.pop(cid, None) is not None:
                self._reply_ok(cid, v, s, m)

    def _serve_async_in_thread(self, cid: int, fn: Callable, a: Any, k: Any, s: str, m: str) -> None:
        # The node loop is busy (not started yet, or its thread waits on the host):
        # run this coroutine on a loop of its own so a nested call cannot deadlock.
        try:
            asyncio.run(self._serve_async(cid, fn, a, k, s, m))
        except BaseException:
            pass

    def _on_event(self, msg: dict) -> None:
        s = msg["s"]
        m = msg["m"]
        a = msg.get("a") or ()
        k = msg.get("k") or {}
        if s == "$cb" and m == "release":
            for cid in a:
                self._callbacks.pop(str(cid), None)
            return
        handlers = self._events.get((s, m))
        if handlers:
            for h in list(handlers):
                try:
                    r = h(*a, **k)
                    if inspect.iscoroutine(r):
                        self._spawn(r, f"event handler for {s}.{m}")
                except Exception:
                    _log_exception(f"the handler of event {s}.{m} failed")
            return
        try:
            fn, mode = self._resolve(s, m)
        except NotCallable as e:
            _log(f"event {s}.{m} from the host was dropped: {e}")
            return
        if mode == _INLINE:
            try:
                fn(*a, **k)
            except Exception:
                _log_exception(f"event {s}.{m} failed")
        elif mode == _ASYNC:
            self._spawn(fn(*a, **k), f"event {s}.{m}")
        else:
            self._executor.submit(self._event_in_thread, fn, a, k, s, m)

    def _event_in_thread(self, fn: Callable, a: Any, k: Any, s: str, m: str) -> None:
        try:
            r = fn(*a, **k)
            if inspect.isawaitable(r):
                self.run_coroutine(r)
        except Exception:
            _log_exception(f"event {s}.{m} failed")

    def _spawn(self, coro: Any, what: str) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception:
                _log_exception(f"{what} failed")

        if self._node_loop_usable():
            asyncio.run_coroutine_threadsafe(guarded(), self.node_loop)  # type: ignore[arg-type]
        else:
            self._executor.submit(asyncio.run, guarded())

    # ----------------------------------------------------------------- helpers for node code

    def on_event(self, s: str, m: str, fn: Callable) -> None:
        """Run ``fn(*args, **kwargs)`` on the I/O thread whenever the host sends event
        ``s.m``. It must return quickly and must not wait on the host."""
        self._events.setdefault((s, m), []).append(fn)

    def run_coroutine(self, coro: Any, timeout: float | None = None) -> Any:
        """Run ``coro`` on the node loop and wait for it, from a thread that runs no loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("run_coroutine waits; from async code, await the coroutine instead")
        if self._node_loop_usable():
            if not asyncio.iscoroutine(coro):
                coro = _await(coro)
            return asyncio.run_coroutine_threadsafe(coro, self.node_loop).result(timeout)  # type: ignore[arg-type]
        return asyncio.run(asyncio.wait_for(_await(coro), timeout))

    def shutdown_executor(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


async def _await(aw: Any) -> Any:
    return await aw


def _mode_of(fn: Callable) -> int:
    if getattr(fn, "_pyisolate_inline", False):
        return _INLINE
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None)):
        return _ASYNC
    return _SYNC


def _log(line: str) -> None:
    try:
        sys.stderr.write(f"pyisolate: {line}\n")
        sys.stderr.flush()
    except Exception:
        pass


def _log_exception(line: str) -> None:
    _log(f"{line}:\n{traceback.format_exc().rstrip()}")
