"""Calls from the host into this process: where each one runs, and its answer.

:class:`Serving` is the incoming half of :class:`~pyisolate_runtime.rpc.endpoint.Endpoint`.
The I/O thread resolves ``s.m`` (a served method, or ``$cb`` for a callback passed to the
host) and hands it on: an :func:`~pyisolate_runtime.rpc.registry.inline` method runs right
there, an ``async def`` method on the node loop (or on a loop of its own in a worker
thread while the node loop is busy), any other on the thread that read it, which first
hands the reading on to an idle call thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from typing import Any, Callable

from . import registry
from .errors import NotCallable
from .log import log, log_exception

__all__ = ["Serving", "current_job_cancelled"]


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


async def _await(aw: Any) -> Any:
    return await aw


class Serving:
    """Incoming calls and events (a part of the endpoint)."""

    # Set up by Endpoint.__init__:
    name: str
    node_loop: asyncio.AbstractEventLoop | None
    _node_blocked: int
    _running: dict[int, _Job]
    _callbacks: dict[str, Callable]
    _events: dict[tuple[str, str], list[Callable]]
    _method_cache: dict[tuple[str, str], tuple[Callable, int]]
    _executor: concurrent.futures.ThreadPoolExecutor
    _reply_ok: Callable[[int, Any, str, str], None]
    _reply_err: Callable[..., None]
    _reader_ident: int
    _lead: tuple | None

    def _on_cancel(self, msg: dict) -> None:
        job = self._running.pop(msg["id"], None)
        if job is not None:
            job.cancel()

    def _resolve(self, s: str, m: str) -> tuple[Callable, int]:
        hit = self._method_cache.get((s, m))
        if hit is not None:
            return hit
        if s == "$cb":
            fn = self._callbacks.get(m)
            if fn is None:
                raise NotCallable(f"callback {m!r} of {self.name} does not exist (released, or never passed)")
            return fn, registry.mode_of(fn)
        fn = registry.lookup(s, m, self.name)
        hit = (fn, registry.mode_of(fn))
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
        if mode == registry.INLINE:
            try:
                v = fn(*a, **k)
            except Exception as e:
                self._reply_err(cid, e)
            else:
                self._reply_ok(cid, v, s, m)
            return
        job = _Job()
        self._running[cid] = job
        if mode == registry.ASYNC:
            if self._node_loop_usable():
                job.future = asyncio.run_coroutine_threadsafe(
                    self._serve_async(cid, fn, a, k, s, m), self.node_loop  # type: ignore[arg-type]
                )
            else:
                job.future = self._executor.submit(self._serve_async_in_thread, cid, fn, a, k, s, m)
        elif threading.get_ident() == self._reader_ident:
            # Run by the thread that read it, once another thread reads on (Endpoint._read_from).
            self._lead = (cid, job, fn, a, k, s, m)
        else:
            job.future = self._executor.submit(self._serve_sync, cid, job, fn, a, k, s, m)

    def _serve_sync(self, cid: int, job: _Job, fn: Callable, a: Any, k: Any, s: str, m: str) -> None:
        _ctx.job = job
        try:
            v = fn(*a, **k)
            if inspect.isawaitable(v):
                v = self.run_coroutine(v)
        except BaseException as e:
            self._settle(cid, s, m, error=e)
        else:
            self._settle(cid, s, m, v)
        finally:
            _ctx.job = None

    async def _serve_async(self, cid: int, fn: Callable, a: Any, k: Any, s: str, m: str) -> None:
        try:
            v = await fn(*a, **k)
        except asyncio.CancelledError as e:
            self._settle(cid, s, m, error=e)
            raise
        except BaseException as e:
            self._settle(cid, s, m, error=e)
        else:
            self._settle(cid, s, m, v)

    def _settle(self, cid: int, s: str, m: str, value: Any = None, error: BaseException | None = None) -> None:
        """Answer call ``cid`` with its value or error, unless it was cancelled meanwhile."""
        if self._running.pop(cid, None) is None:
            return
        if error is not None:
            self._reply_err(cid, error)
        else:
            self._reply_ok(cid, value, s, m)

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
                    log_exception(f"the handler of event {s}.{m} failed")
            return
        try:
            fn, mode = self._resolve(s, m)
        except NotCallable as e:
            log(f"event {s}.{m} from the host was dropped: {e}")
            return
        if mode == registry.INLINE:
            try:
                fn(*a, **k)
            except Exception:
                log_exception(f"event {s}.{m} failed")
        elif mode == registry.ASYNC:
            self._spawn(fn(*a, **k), f"event {s}.{m}")
        else:
            self._executor.submit(self._event_in_thread, fn, a, k, s, m)

    def _event_in_thread(self, fn: Callable, a: Any, k: Any, s: str, m: str) -> None:
        try:
            r = fn(*a, **k)
            if inspect.isawaitable(r):
                self.run_coroutine(r)
        except Exception:
            log_exception(f"event {s}.{m} failed")

    def _spawn(self, coro: Any, what: str) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception:
                log_exception(f"{what} failed")

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
