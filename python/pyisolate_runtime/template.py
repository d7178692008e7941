"""``python -m pyisolate_runtime.template``: a template process that forks packs' processes.

A template imports what is slow to import and the same for a whole class of environments
(torch, and what ``import torch`` pulls in: numpy, typing_extensions, …), never initialises
CUDA, freezes its heap (``gc.freeze``) and then waits. Each fork request comes from a host's
broker on a connection of its own; the template forks, and the child takes the pack's own
environment (variables, working directory, ``sys.executable``/``sys.prefix`` and the
``sys.path`` that the pack's Python would have, its own pins first) and runs
``pyisolate_runtime.child.main()`` exactly as ``python -m pyisolate_runtime`` would. Forked
children share the template's pages until they write to them.

On that connection the template answers with the child's pid, forwards the child's stdout
and stderr, and finally its exit status; it reaps every child (it is their subreaper, so
their own orphans too). A child dies with its template (``PR_SET_PDEATHSIG``); the template
exits when the host that started it is gone.

It also imports pyisolate's own runtime, its extensions and the ComfyUI shims (``comfy``,
``comfy_api``, ``nodes``, ``folder_paths``, … from ``pyisolate_runtime/shims``), so that a
child starts with them loaded: they are the same for every pack. A child that must not use
them (core mode, where a ComfyUI checkout provides those names, or a pack whose own
``sys.path`` entries provide one of them first) drops them all before it imports anything
(:func:`settle_preloaded`), and imports its own as a fresh process would.

Environment: ``PYISOLATE_TEMPLATE_SOCKET`` (where to listen), ``PYISOLATE_TEMPLATE_IMPORTS``
(comma-separated modules to import, default ``torch``), ``PYISOLATE_TEMPLATE_SHIMS=0`` (do not
import the shims). On start it prints one JSON line on
stdout: ``{"t": "ready", ...}`` (or ``{"t": "fail", "error": ...}``) — see
``src/process/template.ts`` for the host side and the wire format.
"""

from __future__ import annotations

import gc
import importlib
import io
import json
import os
import selectors
import signal
import socket
import struct
import sys
import sysconfig
import time
import traceback
from typing import Any

__all__ = ["main", "pack_sys_path", "settle_preloaded"]

_HEADER = struct.Struct(">IB")
"""A frame: payload length (4 bytes, big-endian), kind (1 byte), payload."""
MAX_REQUEST = 16 << 20

# Frame kinds. Broker → template: F (fork request, JSON), S (status request).
# Template → broker: P (pid, JSON), R (refused, JSON), O / E (stdout / stderr bytes),
# X (exit, JSON {code, signal}), T (status, JSON).
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

_STDLIB = {p for p in (sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")) if p}
_STDLIB |= {os.path.join(p, "lib-dynload") for p in list(_STDLIB)}
_STDLIB.add(os.path.join(sys.base_prefix, "lib", f"python{sys.version_info[0]}{sys.version_info[1]}.zip"))
_BASE_PATH = [p for p in sys.path if p in _STDLIB]
"""The interpreter's own entries of ``sys.path`` (the stdlib), the same in every environment
of this interpreter; the rest comes from PYTHONPATH, the working directory and ``site``."""


_PRELOADED: set[str] = set()
"""The shim modules this template imported (names in ``sys.modules``), which its children inherit."""


def _preload_shims(shims_dir: str) -> None:
    """Import every module of the shims (as a child using them would find them on ``sys.path``)."""
    import pkgutil

    before = set(sys.modules)
    sys.path.insert(0, shims_dir)
    try:
        for info in pkgutil.walk_packages([shims_dir]):
            importlib.import_module(info.name)
    finally:
        sys.path.remove(shims_dir)
        importlib.invalidate_caches()
    # Only the shims' own modules are dropped where a child does not use them: the stdlib
    # modules and pyisolate's own that they pulled in are the same in every child.
    root = os.path.join(os.path.abspath(shims_dir), "")
    for name in set(sys.modules) - before:
        f = getattr(sys.modules[name], "__file__", None)
        if f and os.path.abspath(f).startswith(root):
            _PRELOADED.add(name)


def settle_preloaded(front: list[str], shims_dir: str | None) -> bool:
    """In a forked child: keep the shims its template imported when this process uses them
    (``shims_dir`` is on its ``sys.path`` after ``front``) and none of ``front`` provides one
    of their top-level names first; else drop them all from ``sys.modules`` (they are then
    imported from wherever this process's ``sys.path`` finds them). Returns whether kept."""
    if not _PRELOADED:
        return False
    keep = shims_dir is not None
    if keep and front:
        from importlib.machinery import PathFinder

        for top in {name.split(".", 1)[0] for name in _PRELOADED}:
            spec = PathFinder.find_spec(top, front)
            if spec is not None and spec.loader is not None:  # a namespace portion does not win
                keep = False
                break
    if not keep:
        for name in _PRELOADED:
            sys.modules.pop(name, None)
        _PRELOADED.clear()
        importlib.invalidate_caches()
    return keep


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except Exception:
        return False


def pack_sys_path(python: str, pythonpath: str, cwd: str) -> list[str]:
    """Makes this process the pack's Python: ``sys.executable``, ``sys.prefix`` and ``sys.path``
    as ``<python> -m pyisolate_runtime`` started in ``cwd`` with that PYTHONPATH would have them
    (``site`` run again for the pack's environment: its site-packages and ``.pth`` files).
    Returns the new ``sys.path``."""
    import site

    sys.executable = python
    sys.prefix = sys.base_prefix
    sys.exec_prefix = sys.base_exec_prefix
    front = [os.path.abspath(p) for p in pythonpath.split(os.pathsep) if p]
    sys.path[:] = [cwd, *front, *_BASE_PATH]
    site.PREFIXES = [sys.prefix] + ([sys.exec_prefix] if sys.exec_prefix != sys.prefix else [])
    site.ENABLE_USER_SITE = None
    site.USER_SITE = None
    site.USER_BASE = None
    site.main()
    importlib.invalidate_caches()
    return list(sys.path)


def _status() -> dict[str, Any]:
    torch = sys.modules.get("torch")
    cuda = False
    if torch is not None:
        try:
            cuda = bool(torch.cuda.is_initialized())
        except Exception:
            cuda = False
    try:
        native = len(os.listdir("/proc/self/task"))
    except OSError:
        native = 0
    import threading

    return {
        "pid": os.getpid(),
        "cuda_initialized": cuda,
        "python_threads": threading.active_count(),
        "native_threads": native,
        "modules": _modules(),
        "preloaded": sorted(name for name in _PRELOADED if "." not in name),
    }


def _modules() -> dict[str, dict[str, str]]:
    """The top-level modules outside the stdlib that the template imported, with where each
    comes from (its directory's parent: the site-packages it was found in) and its version
    (not the shims: pyisolate's own, and settled by each child, see :func:`settle_preloaded`)."""
    out: dict[str, dict[str, str]] = {}
    std = set(getattr(sys, "stdlib_module_names", ()))
    for name, mod in list(sys.modules.items()):
        if "." in name or name in std or name.startswith("_") or name == "pyisolate_runtime" or name in _PRELOADED:
            continue
        f = getattr(mod, "__file__", None)
        if not f:
            continue
        pkg = os.path.dirname(f) if os.path.basename(f).startswith("__init__.") else f
        out[name] = {"site": os.path.dirname(pkg), "version": str(getattr(mod, "__version__", ""))}
    return out


class _Fork:
    """One forked child: its connection to the broker and its output pipes."""

    def __init__(self, conn: socket.socket, pid: int, out: int, err: int) -> None:
        self.conn = conn
        self.pid = pid
        self.pipes = {out: b"O", err: b"E"}
        self.status: tuple[int | None, str | None] | None = None


class Template:
    def __init__(self, path: str) -> None:
        self.sel = selectors.DefaultSelector()
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        os.chmod(path, 0o600)
        self.server.listen(64)
        self.sel.register(self.server, selectors.EVENT_READ, ("accept", None))
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        self.buffers: dict[socket.socket, bytes] = {}
        self.forks: dict[int, _Fork] = {}
        self.parent = os.getppid()
        self.own_pid = os.getpid()

    def serve(self) -> None:
        while True:
            for key, _ in self.sel.select(timeout=1.0):
                what, obj = key.data
                if what == "accept":
                    conn, _ = self.server.accept()
                    self.buffers[conn] = b""
                    self.sel.register(conn, selectors.EVENT_READ, ("conn", conn))
                elif what == "conn":
                    self._on_request(obj)
                elif what == "pipe":
                    self._on_output(key.fd, obj)
                elif what == "wake":
                    try:
                        os.read(self.wake_r, 4096)
                    except BlockingIOError:
                        pass
            self._reap()
            if os.getppid() != self.parent:
                return  # the host is gone; the children follow (PDEATHSIG)

    # --- requests -------------------------------------------------------------------------

    def _on_request(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        buf = self.buffers.get(conn, b"") + data
        while len(buf) >= _HEADER.size:
            n, kind = _HEADER.unpack_from(buf)
            if n > MAX_REQUEST:
                self._drop(conn)
                return
            if len(buf) < _HEADER.size + n:
                break
            payload = buf[_HEADER.size : _HEADER.size + n]
            buf = buf[_HEADER.size + n :]
            if kind == ord("S"):
                _send(conn, b"T", json.dumps(_status()).encode())
            elif kind == ord("F"):
                self.sel.unregister(conn)
                self.buffers.pop(conn, None)
                self._fork(conn, json.loads(payload))
                return
            else:
                self._drop(conn)
                return
        self.buffers[conn] = buf

    def _drop(self, conn: socket.socket) -> None:
        try:
            self.sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        self.buffers.pop(conn, None)
        conn.close()

    def _fork(self, conn: socket.socket, req: dict[str, Any]) -> None:
        status = _status()
        if status["cuda_initialized"]:
            _refuse(conn, "CUDA is initialised in the template; a fork would inherit it")
            return
        if status["python_threads"] > 1:
            _refuse(conn, f"the template runs {status['python_threads']} Python threads")
            return
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(out_r)
                os.close(err_r)
                code = self._child(conn, req, out_w, err_w)
            except BaseException:
                try:
                    os.write(err_w, f"pyisolate: the forked process could not start:\n{traceback.format_exc()}".encode())
                except OSError:
                    pass
            os._exit(code)
        os.close(out_w)
        os.close(err_w)
        fork = _Fork(conn, pid, out_r, err_r)
        self.forks[pid] = fork
        for fd in (out_r, err_r):
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, ("pipe", fork))
        _send(conn, b"P", json.dumps({"pid": pid}).encode())

    def _child(self, conn: socket.socket, req: dict[str, Any], out_w: int, err_w: int) -> int:
        os.setsid()
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != self.own_pid:
            return 1  # the template died between fork and prctl
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        self.sel.close()
        for s in (self.server, conn, *self.buffers, *[f.conn for f in self.forks.values()]):
            s.close()
        for fd in (self.wake_r, self.wake_w, *[p for f in self.forks.values() for p in f.pipes]):
            try:
                os.close(fd)
            except OSError:
                pass
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (devnull, out_w, err_w):
            if fd > 2:
                os.close(fd)
        sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), errors="backslashreplace", write_through=True)
        sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), errors="backslashreplace", write_through=True)
        env = {str(k): str(v) for k, v in (req.get("env") or {}).items()}
        os.environ.clear()
        os.environ.update(env)
        cwd = str(req.get("cwd") or os.getcwd())
        os.chdir(cwd)
        pack_sys_path(str(req["python"]), env.get("PYTHONPATH", ""), cwd)
        rnd = sys.modules.get("numpy.random")
        if rnd is not None:
            try:
                rnd.seed()  # its legacy global state was seeded once, in the template
            except Exception:
                pass
        # The heap stays frozen: the collector leaves the template's objects (and their pages) alone.
        from . import child

        sys.argv = [os.path.join(os.path.dirname(os.path.abspath(child.__file__)), "__main__.py")]
        return int(child.main() or 0)

    # --- children ---------------------------------------------------------------------------

    def _on_output(self, fd: int, fork: _Fork) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            _send(fork.conn, fork.pipes[fd], data)
            return
        self.sel.unregister(fd)
        os.close(fd)
        del fork.pipes[fd]
        self._finish(fork)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            fork = self.forks.get(pid)
            if fork is None:
                continue  # an orphan of a child, reaped as subreaper
            if os.WIFSIGNALED(status):
                fork.status = (None, signal.Signals(os.WTERMSIG(status)).name)
            else:
                fork.status = (os.waitstatus_to_exitcode(status), None)
            deadline = time.monotonic() + 0.2
            while fork.pipes and time.monotonic() < deadline:
                for fd in list(fork.pipes):
                    self._on_output(fd, fork)
                if fork.pipes:
                    time.sleep(0.005)
            for fd in list(fork.pipes):  # a grandchild still holds them: stop forwarding
                self.sel.unregister(fd)
                os.close(fd)
            fork.pipes.clear()
            self._finish(fork)

    def _finish(self, fork: _Fork) -> None:
        if fork.pipes or fork.status is None or fork.pid not in self.forks:
            return
        del self.forks[fork.pid]
        code, sig = fork.status
        try:
            _send(fork.conn, b"X", json.dumps({"code": code, "signal": sig}).encode())
        except OSError:
            pass
        fork.conn.close()


def _send(conn: socket.socket, kind: bytes, payload: bytes) -> None:
    try:
        conn.sendall(_HEADER.pack(len(payload), kind[0]) + payload)
    except OSError:
        pass  # the broker is gone; the child goes on until its host says bye


def _refuse(conn: socket.socket, reason: str) -> None:
    _send(conn, b"R", json.dumps({"reason": reason}).encode())
    conn.close()


def _say(msg: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host decides when this process ends
    path = os.environ.get("PYISOLATE_TEMPLATE_SOCKET")
    if not path:
        sys.stderr.write("pyisolate: the template is started by a pyisolate host; PYISOLATE_TEMPLATE_SOCKET is not set\n")
        return 2
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    subreaper = _prctl(PR_SET_CHILD_SUBREAPER, 1)
    started = time.perf_counter()
    # Run as ``-m``, this module is ``__main__``: the children's ``from . import template``
    # must find this one (its record of what was preloaded), not a fresh copy.
    sys.modules.setdefault("pyisolate_runtime.template", sys.modules[__name__])
    imports = [m for m in os.environ.get("PYISOLATE_TEMPLATE_IMPORTS", "torch").split(",") if m]
    try:
        for name in imports:
            importlib.import_module(name)
        from . import child  # noqa: F401  the runtime itself, and its extensions
        for name in child.EXTENSIONS:
            importlib.import_module(name)
        if os.environ.get("PYISOLATE_TEMPLATE_SHIMS", "1") != "0":
            _preload_shims(child.SHIMS_DIR)
    except BaseException as e:
        _say({"t": "fail", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()})
        return 1
    template = Template(path)
    gc.collect()
    gc.freeze()  # keep the heap's pages shared: the collector no longer writes to them
    status = _status()
    _say(
        {
            "t": "ready",
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "executable": sys.executable,
            "base_executable": getattr(sys, "_base_executable", sys.executable),
            "prefix": sys.prefix,
            "imports": imports,
            "import_ms": (time.perf_counter() - started) * 1000.0,
            "subreaper": subreaper,
            **status,
        }
    )
    try:
        template.serve()
    except SystemExit:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
