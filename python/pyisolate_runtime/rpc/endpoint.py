"""The connection endpoint: calls both ways over one socket (see docs/protocol.md).

Threads of a pyisolate Python process:

* the **I/O thread** reads frames, settles the answers to our own calls, answers runtime
  calls (``$rt``) and runs :meth:`Endpoint.on_event` handlers at once, so an interrupt
  never waits behind node code. It must never block on the host.
* the **node loop** (an asyncio loop on the main thread, once the packs are imported)
  runs served ``async def`` methods as tasks;
* served plain methods run on **call threads**, one each while it runs, so node code may
  itself call the host and wait: nested calls both ways (host → child → host → child) do
  not deadlock. The thread that read a call runs it itself and hands reading on to an idle
  call thread first (a leader/follower hand-off): the call starts without waiting for
  another thread to wake, and the next reader wakes while the call runs.

Any thread may write; a lock keeps frames whole. This module holds the connection
itself (the I/O thread, sending, closing); outgoing calls are :mod:`.calls`, incoming
ones :mod:`.serving`.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import socket
import threading
import weakref
from typing import Any, Callable

from ..cbor import CBORDecodeError, CBOREncodeError, dumps, loads
from ..protocol.frames import MAX_FRAME, FrameError, FrameReader, encode_header
from . import registry
from .callables import TAG_CALLABLE, RemoteCallable, is_async_callable
from .calls import Calls
from .errors import exception_map
from .log import log, log_exception
from .serving import Serving, _Job

__all__ = ["Endpoint"]


def _encode_failure(e: BaseException, message: str) -> BaseException:
    """An error of ``e``'s kind carrying ``message`` (a TypeError when the kind cannot be rebuilt)."""
    try:
        return type(e)(e.errno, message) if isinstance(e, OSError) else type(e)(message)
    except Exception:
        return TypeError(message)

_MAX_WORKERS = 256
# Idle call threads kept waiting to read next; more than this many end when their call does.
_MAX_SPARES = 8


class Endpoint(Calls, Serving):
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
        # Objects without a wire form (set by the handles extension: set_object_codec).
        self._object_hook: Callable[[Any], tuple[int, Any] | None] | None = None
        self._is_function: Callable[[Any], bool] = lambda obj: True
        self._encode_guard: Any = None
        self._reader: threading.Thread | None = None
        self._reader_ident = -1
        # The call being handed to the thread that read it (set by Serving._on_call), and the
        # idle call threads waiting to read next (each blocks on its own lock).
        self._lead: tuple | None = None
        self._spares: list[list] = []
        self._spare_lock = threading.Lock()
        self._threads = itertools.count(1).__next__
        self._exit_requested = False
        self.node_loop: asyncio.AbstractEventLoop | None = None
        self._node_ident = -1
        self._node_blocked = 0
        registry.on_change(self._method_cache.clear)
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
        self._read_from(FrameReader(self._sock))

    def _read_from(self, reader: FrameReader) -> None:
        """Read and dispatch frames until the connection ends or this thread leaves to run a
        call it read (then another thread reads on, and this one becomes idle)."""
        me = threading.current_thread()
        while True:
            me.name = "pyisolate-io"
            self._reader_ident = threading.get_ident()
            end = self._read_frames(reader)
            if end is not None:
                self._close(*end)
                return
            lead, self._lead = self._lead, None
            # Reading goes on in another thread before this one runs node code.
            self._reader_ident = -1
            self._pass_reading(reader)
            me.name = f"pyisolate-call-{self._threads()}"
            self._serve_sync(*lead)
            lead = None
            if not self._wait_to_read():
                return

    def _pass_reading(self, reader: FrameReader) -> None:
        with self._spare_lock:
            spare = self._spares.pop() if self._spares else None
        if spare is not None:
            spare[1] = reader
            spare[0].release()
            return
        threading.Thread(target=self._read_from, args=(reader,), name="pyisolate-io", daemon=True).start()

    def _wait_to_read(self) -> bool:
        """Wait, idle, until handed the reading (True), or until the connection ended (False)."""
        gate = threading.Lock()
        gate.acquire()
        spare: list = [gate, None]
        with self._spare_lock:
            if self.closed or len(self._spares) >= _MAX_SPARES:
                return False
            self._spares.append(spare)
        gate.acquire()
        return spare[1] is not None

    def _read_frames(self, reader: FrameReader) -> tuple[str, int] | None:
        """Dispatch frames; None when a call to run here was read (``self._lead``), else the
        reason and exit code the connection ended with."""
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
                    log_exception(f"handling a {msg.get('t')!r} message failed")
                # Not kept while waiting for the next frame: a value it holds (a proxy) must go
                # when its user lets go of it.
                msg = payload = None
                if self._lead is not None:
                    return None
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
            log_exception("the I/O thread failed")
            reason, code = "the I/O thread failed", 1
        return reason, code

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
        log(f"{what}: a value from the host could not be decoded here: {type(e).__name__}: {e}")
        if t == "call" and isinstance(cid, int):
            self._reply_err(cid, e)
        elif t in ("ok", "err"):
            w = self._pending.pop(cid, None)
            if w is not None:
                w.reject(e)
        return None

    def _close(self, reason: str, code: int) -> None:
        self.closed = True
        with self._spare_lock:
            spares, self._spares = self._spares, []
        for gate, _reader in spares:
            gate.release()
        try:
            err = ConnectionError(f"the connection to the host closed before the answer came ({reason})")
            pending, self._pending = self._pending, {}
            for w in list(pending.values()):
                try:
                    w.reject(err)
                except Exception:
                    log_exception("rejecting a pending call failed")
            for job in list(self._running.values()):
                try:
                    job.cancel()
                except Exception:
                    log_exception("cancelling a running call failed")
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

    def set_object_codec(
        self,
        tag: int,
        encode: Callable[[Any], tuple[int, Any] | None],
        decode: Callable[[Any], Any],
        guard: Any,
        is_function: Callable[[Any], bool],
    ) -> None:
        """Let objects without a wire form cross: ``encode(obj)`` gives their ``(tag,
        content)`` (functions, as ``is_function`` tells, still cross as callbacks), ``decode``
        reads ``tag`` back, and ``guard.begin()`` / ``guard.end(mark, ok)`` bracket the
        encoding of each message, so that a message that fails to encode counts nothing."""
        self._object_hook = encode
        self._is_function = is_function
        self._encode_guard = guard
        self._hooks[tag] = decode

    def _default(self, obj: Any) -> tuple[int, Any] | None:
        hook = self._object_hook
        if hook is not None and not self._is_function(obj):
            return hook(obj)
        if callable(obj) and not isinstance(obj, type):
            cid = str(self._next_cb())
            self._callbacks[cid] = obj
            is_async = is_async_callable(obj)
            return TAG_CALLABLE, ({"id": cid} if is_async is None else {"id": cid, "async": is_async})
        return None

    def _encode(self, msg: dict) -> bytes:
        """``msg`` encoded; the handles in it count as sent only when it encoded within the
        frame limit (the guard of the handles extension)."""
        guard = self._encode_guard
        if guard is None:
            return dumps(msg, self._default)
        mark = guard.begin()
        ok = False
        try:
            payload = dumps(msg, self._default)
            ok = len(payload) <= MAX_FRAME
        finally:
            guard.end(mark, ok)
        return payload

    def _send(self, msg: dict) -> None:
        self._write(self._encode(msg))

    def _write(self, payload: bytes) -> None:
        """Send one encoded message (with any callback releases queued before it)."""
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
        except Exception:
            pass

    def _reply_ok(self, cid: int, v: Any, s: str, m: str) -> None:
        # Every failure to encode the result (an encoder's TypeError, a full /dev/shm, a value
        # nested too deeply) becomes the call's error: the caller must get an answer.
        try:
            payload = self._encode({"t": "ok", "id": cid, "v": v})
        except Exception as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else e
            self._reply_err(cid, _encode_failure(e, f"the result of {s}.{m} in {self.name} could not be encoded: {why}"), tb=False)
            return
        try:
            self._write(payload)
        except FrameError as e:
            self._reply_err(cid, ValueError(f"the result of {s}.{m} in {self.name} is too large: {e}"), tb=False)
        except OSError:
            pass  # the connection is gone: nobody waits for this answer any more

    def _reply_err(self, cid: int, e: BaseException, tb: bool = True) -> None:
        try:
            self._send({"t": "err", "id": cid, "e": exception_map(e, with_traceback=tb)})
        except (OSError, FrameError, CBOREncodeError):
            pass

    # ----------------------------------------------------------------- incoming (I/O thread)

    def _on_bye(self, msg: dict) -> None:
        self.closed = True

    def _decode_callable(self, content: Any) -> RemoteCallable:
        cid = str(content["id"])
        proxy = self._remote_cbs.get(cid)
        if proxy is None:
            flag = content.get("async")
            proxy = RemoteCallable(self, cid, flag if isinstance(flag, bool) else None)
            self._remote_cbs[cid] = proxy
        return proxy

    def shutdown_executor(self) -> None:
        """Stop the worker pool without waiting for the methods still running in it."""
        self._executor.shutdown(wait=False, cancel_futures=True)
