"""The proxies of this process: handles of other processes' objects, and their release.

One proxy per handle id is alive at a time, so ``is`` holds between two arrivals of the same
handle. Each arrival is counted; when the proxy is garbage-collected, the host is told
``$obj.release([[id, arrivals], ...])`` (an event, sent by a small daemon thread soon after),
and forgets as many of its sends to this process. A handle that arrives again after its
proxy died gets a fresh proxy with a fresh count, so a release in flight can never cancel a
send made meanwhile.
"""

from __future__ import annotations

import queue
import threading
import weakref
from typing import Any, Callable

from .proxy import Kind, Ref, RemoteObject, proxy_class

__all__ = ["ProxyTable"]


class ProxyTable:
    """The handles of other processes' objects this process holds proxies of."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, tuple[weakref.ref, Ref]] = {}
        self._kinds: dict[tuple[str, str, str], Kind] = {}
        # SimpleQueue.put is reentrant: safe from a weakref callback that runs in the middle
        # of anything, including code holding self._lock.
        self._dead: "queue.SimpleQueue[tuple[str, Ref, weakref.ref]]" = queue.SimpleQueue()
        self._emit: Callable[[list[list[Any]]], None] | None = None
        self._thread: threading.Thread | None = None

    def bind(self, emit: Callable[[list[list[Any]]], None]) -> None:
        """Send releases with ``emit(pairs)`` (the runtime: an ``$obj.release`` event)."""
        self._emit = emit

    def decode(self, content: Any) -> RemoteObject:
        """The proxy of the handle ``content`` (the one alive, or a new one)."""
        if not isinstance(content, dict) or not isinstance(content.get("id"), str):
            raise ValueError(f"a remote object handle must be a map with a text id, got {content!r:.200}")
        hid = content["id"]
        with self._lock:
            got = self._live.get(hid)
            p = got[0]() if got is not None else None
            if p is None:
                epoch = hid.split(".", 1)[0]
                key = (str(content.get("owner")), epoch, str(content.get("type")))
                kind = self._kinds.get(key)
                if kind is None:
                    kind = self._kinds[key] = Kind()
                ref = Ref(content, kind)
                p = proxy_class(ref.type)(ref)
                self._live[hid] = (weakref.ref(p, self._died_cb(hid, ref)), ref)
            else:
                ref = got[1]  # type: ignore[index]
            ref.arrivals += 1
        if self._thread is None and self._emit is not None:
            self._start()
        return p

    def _died_cb(self, hid: str, ref: Ref) -> Callable[[weakref.ref], None]:
        dead = self._dead

        def died(wr: weakref.ref) -> None:
            dead.put((hid, ref, wr))

        return died

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="pyisolate-release", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            items = [self._dead.get()]
            self._send(items)

    def _send(self, items: list[tuple[str, Ref, weakref.ref]]) -> None:
        while True:
            try:
                items.append(self._dead.get_nowait())
            except queue.Empty:
                break
        pairs = []
        with self._lock:
            for hid, ref, wr in items:
                cur = self._live.get(hid)
                if cur is not None and cur[0] is wr:
                    del self._live[hid]
                pairs.append([hid, ref.arrivals])
        emit = self._emit
        if pairs and emit is not None:
            try:
                emit(pairs)
            except Exception:
                pass  # the connection is gone: the host forgets this process's holds itself

    def flush(self) -> None:
        """Send the releases of proxies that died, now, on this thread."""
        try:
            first = self._dead.get_nowait()
        except queue.Empty:
            return
        self._send([first])

    def live(self) -> int:
        """How many proxies are alive."""
        with self._lock:
            return sum(1 for wr, _ in self._live.values() if wr() is not None)

    def __len__(self) -> int:
        return self.live()
