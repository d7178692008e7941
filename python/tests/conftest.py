"""Test harness: a small host, written in Python, that speaks the wire protocol.

It listens on a Unix socket in a private directory, starts a real
``python -m pyisolate_runtime`` child, checks its token, sends the config and then
serves and makes calls, using the runtime's own frames and CBOR modules. It plays the
part the TypeScript broker plays in production; it is not a stand-in for the runtime.

Fixtures: ``make_host`` (a factory of :class:`TestHost`, all closed at the end of the
test) and ``write_pack`` (writes a pack directory from source text).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))

from pyisolate_runtime.cbor import dumps, loads  # noqa: E402
from pyisolate_runtime.protocol.frames import FrameReader, encode_header  # noqa: E402

TAG_CALLABLE = 41503


class ChildError(Exception):
    """An ``err`` answer from the child."""

    def __init__(self, e: dict) -> None:
        super().__init__(f"{e.get('type')}: {e.get('message')}")
        self.type = e.get("type")
        self.message = e.get("message")
        self.traceback = e.get("traceback", "")


class _Waiter:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.ok = False
        self.value: Any = None

    def settle(self, ok: bool, value: Any) -> None:
        self.ok, self.value = ok, value
        self.event.set()


class ChildCallable:
    """A callable of the child (tag 41503), called synchronously from the host side."""

    def __init__(self, host: "TestHost", cid: str) -> None:
        self.host = host
        self.id = cid

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.host.call("$cb", self.id, *args, **kwargs)


class TestHost:
    """One child process and its connection, seen from the host side.

    ``services`` maps a service name to a dict of functions or to an object; incoming
    calls run in a thread pool (so nested calls work). ``singleton_target`` is the
    TestHost of the shared process, to which ``$singleton`` calls are forwarded.
    """

    __test__ = False  # not a test class

    def __init__(
        self,
        name: str = "TestPack",
        *,
        packs: list[dict[str, str]] | None = None,
        kind: str = "isolated",
        services: dict[str, Any] | None = None,
        sys_path: list[str] | None = None,
        python: str = sys.executable,
        options: dict[str, Any] | None = None,
        config: Any = None,
        child_token: str | None = None,
        extra_env: dict[str, str] | None = None,
        singleton_target: "TestHost | None" = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.python = python
        self.services: dict[str, Any] = dict(services or {})
        self.singleton_target = singleton_target
        self.token = os.urandom(16).hex()
        self.child_token = child_token or self.token
        self.config = config
        if self.config is None:
            self.config = {
                "pack": name,
                "path": (packs[0]["path"] if packs and len(packs) == 1 else None),
                "kind": kind,
                "packs": list(packs or []),
                "sys_path": list(sys_path or []),
                "services": sorted(self.services),
                "options": dict(options or {}),
            }
        self.extra_env = dict(extra_env or {})
        self.events: list[tuple[str, str, list, dict]] = []
        self.cancels: list[int] = []
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.hello: dict | None = None
        self.ready: dict | None = None
        self.fail: dict | None = None
        self.refused = False
        self.proc: subprocess.Popen | None = None
        self._dir = tempfile.mkdtemp(prefix="pyi-")
        os.chmod(self._dir, 0o700)
        self._conn: socket.socket | None = None
        self._wlock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Waiter] = {}
        self._callbacks: dict[str, Callable] = {}
        self._cb_ids = itertools.count(1)
        self._started = threading.Event()
        self._closed = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=32)
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ process

    def start(self, timeout: float = 60.0) -> dict | None:
        """Start the child and do the handshake; returns the ready info (``None`` when
        the token was refused or the child sent ``fail``)."""
        path = os.path.join(self._dir, "s")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(1)
        listener.settimeout(0.2)
        env = dict(os.environ)
        env.update(
            {
                "PYISOLATE_SOCKET": path,
                "PYISOLATE_TOKEN": self.child_token,
                "PYISOLATE_HOST_PID": str(os.getpid()),
                "PYISOLATE_PACK": self.name,
                "PYTHONPATH": os.pathsep.join([str(PYTHON_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        self.proc = subprocess.Popen(
            [self.python, "-m", "pyisolate_runtime"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            t = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    conn, _ = listener.accept()
                    break
                except socket.timeout:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the child did not connect; stderr:\n{self.stderr_text()}") from None
        finally:
            listener.close()
            os.unlink(path)
        conn.settimeout(None)
        self._conn = conn
        self._reader = FrameReader(conn)
        first = self._reader.read()
        assert first is not None, "the child closed without a hello"
        self.hello = loads(first)
        if self.hello.get("t") != "hello" or self.hello.get("token") != self.token:
            self.refused = True
            conn.close()
            return None
        self._write({"t": "config", "config": self.config})
        t = threading.Thread(target=self._read_loop, daemon=True)
        t.start()
        self._threads.append(t)
        if not self._started.wait(timeout):
            raise RuntimeError(f"no ready from the child; stderr:\n{self.stderr_text()}")
        return self.ready

    @staticmethod
    def _pump(stream: Any, sink: list[str]) -> None:
        for line in iter(stream.readline, b""):
            sink.append(line.decode("utf-8", "replace").rstrip("\n"))
        stream.close()

    def stderr_text(self) -> str:
        return "\n".join(self.stderr)

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        for t in self._threads[:2]:  # the stdout and stderr pumps: read to the end before anyone looks
            t.join(5)
        return code

    def close(self) -> None:
        """Close the socket (the child sees end of stream)."""
        self._closed.set()
        if self._conn is not None:
            try:
                self._conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._conn.close()

    def bye(self) -> None:
        self._write({"t": "bye"})

    def dispose(self) -> None:
        self.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for t in self._threads:
            t.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self._dir, ignore_errors=True)

    # ------------------------------------------------------------------ wire

    def _default(self, obj: Any) -> tuple[int, Any] | None:
        if callable(obj) and not isinstance(obj, type):
            cid = f"h{next(self._cb_ids)}"
            self._callbacks[cid] = obj
            return TAG_CALLABLE, {"id": cid}
        return None

    def _write(self, msg: dict) -> None:
        payload = dumps(msg, self._default)
        with self._wlock:
            assert self._conn is not None
            self._conn.sendall(encode_header(len(payload)) + payload)

    def send_raw(self, data: bytes) -> None:
        with self._wlock:
            assert self._conn is not None
            self._conn.sendall(data)

    def _read_loop(self) -> None:
        hooks = {TAG_CALLABLE: lambda c: ChildCallable(self, str(c["id"]))}
        try:
            while True:
                payload = self._reader.read()
                if payload is None:
                    break
                msg = loads(payload, hooks)
                t = msg["t"]
                if t in ("ok", "err"):
                    w = self._pending.pop(msg["id"], None)
                    if w is not None:
                        w.settle(t == "ok", msg.get("v") if t == "ok" else ChildError(msg["e"]))
                elif t == "call":
                    self._pool.submit(self._serve, msg)
                elif t == "event":
                    self.events.append((msg["s"], msg["m"], msg.get("a") or [], msg.get("k") or {}))
                    if msg["s"] == "$cb" and msg["m"] == "release":
                        for cid in msg.get("a") or []:
                            self._callbacks.pop(cid, None)
                elif t == "cancel":
                    self.cancels.append(msg["id"])
                elif t == "ready":
                    self.ready = msg["info"]
                    self._started.set()
                elif t == "fail":
                    self.fail = msg["error"]
                    self._started.set()
                else:
                    raise AssertionError(f"unexpected message {msg!r}")
        except OSError:
            pass
        finally:
            for w in list(self._pending.values()):
                w.settle(False, ConnectionError("the child closed the connection"))
            self._pending.clear()
            self._started.set()

    def _resolve(self, s: str, m: str) -> Callable:
        if s == "$cb":
            return self._callbacks[m]
        if s == "$singleton" and self.singleton_target is not None:
            target = self.singleton_target
            return lambda *a, **k: target.call("$singleton", m, *a, **k)
        svc = self.services[s]
        return svc[m] if isinstance(svc, dict) else getattr(svc, m)

    def _serve(self, msg: dict) -> None:
        cid = msg["id"]
        try:
            fn = self._resolve(msg["s"], msg["m"])
            v = fn(*(msg.get("a") or []), **(msg.get("k") or {}))
        except ChildError as e:  # a nested call into a child failed: pass its error on
            self._write({"t": "err", "id": cid, "e": {"type": e.type, "message": e.message, "traceback": e.traceback}})
        except Exception as e:
            tname = type(e).__qualname__ if type(e).__module__ == "builtins" else f"{type(e).__module__}.{type(e).__qualname__}"
            self._write({"t": "err", "id": cid, "e": {"type": tname, "message": str(e), "traceback": ""}})
        else:
            try:
                self._write({"t": "ok", "id": cid, "v": v})
            except OSError:
                pass

    # ------------------------------------------------------------------ calls

    def call_async(self, s: str, m: str, *args: Any, **kwargs: Any) -> tuple[int, _Waiter]:
        """Send a call; returns its id and a waiter (``waiter.event``, ``ok``, ``value``)."""
        cid = next(self._ids)
        w = _Waiter()
        self._pending[cid] = w
        msg: dict[str, Any] = {"t": "call", "id": cid, "s": s, "m": m, "a": list(args)}
        if kwargs:
            msg["k"] = kwargs
        self._write(msg)
        return cid, w

    def call(self, s: str, m: str, *args: Any, timeout: float = 30.0, **kwargs: Any) -> Any:
        """Call the child and wait; raises :class:`ChildError` for an ``err`` answer."""
        cid, w = self.call_async(s, m, *args, **kwargs)
        if not w.event.wait(timeout):
            self._pending.pop(cid, None)
            raise TimeoutError(f"{s}.{m} did not answer in {timeout} s; stderr:\n{self.stderr_text()}")
        if not w.ok:
            raise w.value
        return w.value

    def cancel(self, cid: int) -> None:
        self._pending.pop(cid, None)
        self._write({"t": "cancel", "id": cid})

    def emit(self, s: str, m: str, *args: Any, **kwargs: Any) -> None:
        self._write({"t": "event", "s": s, "m": m, "a": list(args), "k": kwargs})


def wait_until(pred: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``pred`` until it is truthy (a liveness bound, not a speed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def make_host() -> Iterator[Callable[..., TestHost]]:
    """Factory of started-on-demand :class:`TestHost` objects, disposed after the test."""
    hosts: list[TestHost] = []

    def make(*args: Any, **kwargs: Any) -> TestHost:
        h = TestHost(*args, **kwargs)
        hosts.append(h)
        return h

    yield make
    for h in hosts:
        h.dispose()


@pytest.fixture
def write_pack(tmp_path: Path) -> Callable[..., str]:
    """``write_pack(name, {"__init__.py": src, ...})`` → the pack directory's path."""

    def write(name: str, files: dict[str, str], root: Path | None = None) -> str:
        d = (root or tmp_path / "custom_nodes") / name
        d.mkdir(parents=True, exist_ok=True)
        for rel, src in files.items():
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(src))
        return str(d)

    return write
