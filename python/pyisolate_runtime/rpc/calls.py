"""Calls from this process to the host: waiting, awaitable, and events.

:class:`Calls` is the outgoing half of :class:`~pyisolate_runtime.rpc.endpoint.Endpoint`:
each call gets an id and a waiter in ``_pending``; the I/O thread settles the waiter when
the ``ok`` or ``err`` answer with that id arrives (or rejects them all when the
connection closes).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

from .errors import restore_exception

__all__ = ["Calls"]


class _ThreadWaiter:
    """A caller blocked in :meth:`Calls.call`: released by the I/O thread."""

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
    """A future of some asyncio loop, settled on that loop's thread."""

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


class Calls:
    """Outgoing calls and events, and the answers to them (a part of the endpoint)."""

    # Set up by Endpoint.__init__:
    name: str
    closed: bool
    _pending: dict[int, Any]
    _next_id: Callable[[], int]
    _reader_ident: int
    _node_ident: int
    _node_blocked: int
    _send: Callable[[dict], None]
    _try_send: Callable[[dict], None]

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
            # Raised without keeping a reference in this frame: the traceback holds the frame,
            # and a cycle through it would keep every argument (proxies included) alive until
            # the garbage collector happens to run.
            err, w.error = w.error, None
            try:
                raise err
            finally:
                del err
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

    # ----------------------------------------------------------------- answers (I/O thread)

    def _on_ok(self, msg: dict) -> None:
        w = self._pending.pop(msg["id"], None)
        if w is not None:
            w.resolve(msg.get("v"))

    def _on_err(self, msg: dict) -> None:
        w = self._pending.pop(msg["id"], None)
        if w is not None:
            w.reject(restore_exception(msg.get("e")))
