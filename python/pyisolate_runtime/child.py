"""The Python process's entry: handshake, sys.path plan, extensions, packs, serving.

Started by the host as ``python -m pyisolate_runtime`` with ``PYISOLATE_SOCKET``,
``PYISOLATE_TOKEN``, ``PYISOLATE_HOST_PID`` and ``PYISOLATE_PACK`` in its environment
(docs/protocol.md). It exits when the host says ``bye``, when ``$rt.shutdown`` is called,
or when the socket reaches end of stream (the host died): no orphan is left behind.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import importlib.util
import os
import platform
import signal
import socket
import sys
import threading
import traceback
from typing import Any, Callable

from . import __version__, host, rpc
from .cbor import CBORDecodeError, CBOREncodeError, dumps, loads
from . import comfyui, template
from .nodes import loader
from .protocol.frames import FrameError, read_frame, write_frame
from .rpc.log import log

__all__ = ["EXTENSIONS", "Runtime", "main"]

EXTENSIONS = ("pyisolate_runtime.tensors", "pyisolate_runtime.handles", "pyisolate_runtime.nodes.nodes_service",
              "pyisolate_runtime.web.routes")
"""Optional extension modules, imported in this order when present; each may define
``setup(rt: Runtime)``."""

SHIMS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shims")


class Runtime:
    """What an extension's ``setup(rt)`` receives."""

    def __init__(self, endpoint: rpc.Endpoint, cfg: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self.endpoint = endpoint
        """The connection (:class:`pyisolate_runtime.rpc.Endpoint`)."""
        self.config = cfg
        """The config map from the host."""
        self.node_loop = loop
        """The asyncio loop that runs served ``async def`` methods (main thread)."""
        self.pack: str = str(cfg.get("pack") or "")
        self.kind: str = str(cfg.get("kind") or "isolated")
        self.is_shared = self.kind == "shared"
        self.options: dict[str, Any] = cfg.get("options") or {}

    serve = staticmethod(host.serve)
    on_event = staticmethod(host.on_event)
    call = staticmethod(host.call)
    acall = staticmethod(host.acall)
    emit = staticmethod(host.emit)
    register_collector = staticmethod(loader.register_collector)


class RuntimeService:
    """``$rt``: served by every process, answered on the I/O thread."""

    def __init__(self, endpoint: rpc.Endpoint) -> None:
        self._endpoint = endpoint

    @rpc.inline
    def ping(self) -> str:
        return "pong"

    @rpc.inline
    def echo(self, x: Any) -> Any:
        return x

    @rpc.inline
    def shutdown(self) -> None:
        self._endpoint.request_exit()


def _exit_now(code: int) -> None:
    """Flush, give atexit handlers a moment, and leave without waiting for node threads."""
    try:
        done = threading.Thread(target=atexit._run_exitfuncs, daemon=True)
        done.start()
        done.join(2.0)
    except Exception:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def _on_close(reason: str, code: int) -> None:
    try:
        if code != 0:
            log(f"closing the connection: {reason}")
    finally:
        _exit_now(code)


def _apply_config(cfg: Any) -> list[dict[str, Any]]:
    """Check the config, apply the sys.path plan; returns the packs to import."""
    if not isinstance(cfg, dict):
        raise ValueError(f"the config from the host must be a map, got {type(cfg).__name__}")
    sys_path = cfg.get("sys_path") or []
    if not isinstance(sys_path, list) or not all(isinstance(p, str) for p in sys_path):
        raise ValueError(f"config.sys_path must be a list of strings, got {sys_path!r}")
    kind = cfg.get("kind", "isolated")
    if kind not in ("isolated", "shared"):
        raise ValueError(f"config.kind must be \"isolated\" or \"shared\", got {kind!r}")
    packs = cfg.get("packs")
    if packs is None:
        packs = [{"name": cfg.get("pack"), "path": cfg["path"]}] if cfg.get("path") else []
    if not isinstance(packs, list) or not all(isinstance(p, dict) and p.get("name") and p.get("path") for p in packs):
        raise ValueError(f"config.packs must be a list of {{name, path}} maps, got {packs!r}")
    front = list(sys_path)
    provider = comfyui.sys_path_entry(cfg)  # the ComfyUI checkout (core mode), else the shims
    # Forked from a template: its shim modules stay only where this process uses the shims.
    template.settle_preloaded(front, provider if provider == SHIMS_DIR else None)
    if os.path.isdir(provider):
        front.append(provider)
    sys.path[:] = front + [p for p in sys.path if p not in front]
    importlib.invalidate_caches()
    return packs


def _provide_comfyui(cfg: dict[str, Any]) -> BaseException | None:
    """Core mode: ComfyUI from the checkout, connected to the host; else the shims' import hook.
    Returns why ComfyUI could not be provided (then no pack can load), or None."""
    options = comfyui.core_options(cfg)
    if options is None:
        from .comfyui import imports

        imports.install_comfy_only()
        return None
    try:
        from .comfyui import connect

        connect.setup(options)
    except BaseException as e:  # ComfyUI's own imports may exit too
        if isinstance(e, KeyboardInterrupt):
            raise
        log(f"ComfyUI could not be imported from {options.get('dir')}:\n{traceback.format_exc().rstrip()}")
        return e
    return None


def _load_extensions(rt: Runtime) -> list[dict[str, Any]]:
    report = []
    for name in EXTENSIONS:
        try:
            if importlib.util.find_spec(name) is None:
                continue
        except (ImportError, ValueError):
            continue
        entry: dict[str, Any] = {"name": name, "ok": True}
        try:
            mod = importlib.import_module(name)
            setup: Callable[[Runtime], Any] | None = getattr(mod, "setup", None)
            if setup is not None:
                setup(rt)
        except Exception as e:
            entry["ok"] = False
            entry["error"] = rpc.exception_map(e)
            log(f"extension {name} failed to load:\n{traceback.format_exc().rstrip()}")
        report.append(entry)
    return report


_PR_SET_PDEATHSIG = 1
_HOST_GONE_GRACE_S = 3.0


_watched = -1  # the runtime process the watchdog stands for
_own_group = False  # whether that process leads a process group of its own (the host made one)


def _kill_group(*_: Any) -> None:
    try:
        if _own_group:
            os.kill(0, signal.SIGKILL)  # this process group: the runtime, its subprocesses, us
        else:
            os.kill(_watched, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os._exit(0)


def _start_watchdog(sock: socket.socket) -> None:
    """Fork a tiny watchdog (before any thread starts) that ends this process group when the
    host is gone or this process has exited, so that nothing outlives the host: neither this
    process stuck in C code holding the GIL, nor a subprocess a pack started.

    It holds the connection's socket without reading it. When the host's end closes (the
    host died, or closed us) it gives this process a moment to exit by itself, then kills the
    group. When this process exits first, the parent-death signal (Linux ``PR_SET_PDEATHSIG``)
    wakes it and it kills what is left of the group.
    """
    if not sys.platform.startswith("linux") or os.environ.get("PYISOLATE_WATCHDOG") == "0":
        return
    global _watched, _own_group
    parent = os.getpid()
    _watched = parent
    # The host starts the runtime in a process group of its own (in the sandbox, a namespace
    # of its own); started any other way, only the runtime itself is the watchdog's to end.
    _own_group = os.getpgrp() == parent or os.environ.get("PYISOLATE_SANDBOXED") == "1"
    try:
        pid = os.fork()
    except OSError:
        return
    if pid != 0:
        return
    try:
        import ctypes
        import select
        import time

        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        signal.signal(signal.SIGTERM, _kill_group)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:
            _kill_group()
        poller = select.poll()
        poller.register(sock.fileno(), getattr(select, "POLLRDHUP", 0x2000) | select.POLLHUP | select.POLLERR)
        while not poller.poll():
            pass
        time.sleep(_HOST_GONE_GRACE_S)  # this process exits by itself unless it is stuck
    except BaseException:
        pass
    _kill_group()


def _connect(where: str) -> socket.socket:
    """The connection to the host: a Unix socket path, or ``tcp:HOST:PORT`` (a process the
    Ray backend started on a cluster node connects back to the host over TCP)."""
    if where.startswith("tcp:"):
        host_part, _, port = where[4:].rpartition(":")
        sock = socket.create_connection((host_part, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(where)
    except OSError:
        sock.close()
        raise
    return sock


def main() -> int:
    """Run the process; returns an exit code only when the handshake fails."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host decides when this process ends
    sock_path = os.environ.get("PYISOLATE_SOCKET")
    token = os.environ.get("PYISOLATE_TOKEN")
    name = os.environ.get("PYISOLATE_PACK") or "pyisolate"
    if not sock_path or not token:
        log(
            "pyisolate_runtime is started by a pyisolate host; PYISOLATE_SOCKET and "
            "PYISOLATE_TOKEN are not set"
        )
        return 2
    try:
        sock = _connect(sock_path)
        write_frame(
            sock,
            dumps(
                {
                    "t": "hello",
                    "token": token,
                    "pid": os.getpid(),
                    "python": platform.python_version(),
                    "runtime": __version__,
                }
            ),
        )
        frame = read_frame(sock)
    except (OSError, FrameError, ValueError) as e:
        log(f"{name}: cannot reach the host at {sock_path}: {e}")
        return 3
    if frame is None:
        log(f"{name}: the host closed the connection during the handshake (token refused, or host gone)")
        return 3
    try:
        msg = loads(frame)
        if not isinstance(msg, dict) or msg.get("t") != "config":
            raise ValueError(f"expected a config message, got {msg!r:.200}")
    except (CBORDecodeError, ValueError) as e:
        log(f"{name}: protocol error during the handshake: {e}")
        return 2
    cfg = msg.get("config")
    try:
        packs = _apply_config(cfg)
    except Exception as e:
        try:
            write_frame(sock, dumps({"t": "fail", "error": rpc.exception_map(e)}))
        except OSError:
            pass
        log(f"{name}: cannot start: {e}")
        return 1
    assert isinstance(cfg, dict)

    _start_watchdog(sock)
    endpoint = rpc.Endpoint(sock, name, on_close=_on_close)
    host._bind(endpoint, cfg)
    rpc.serve("$rt", RuntimeService(endpoint))
    if cfg.get("kind") == "shared":
        from pyisolate.singleton import SingletonService

        rpc.serve("$singleton", SingletonService())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    endpoint.set_node_loop(loop)
    endpoint.start()

    rt = Runtime(endpoint, cfg, loop)
    comfy_error = _provide_comfyui(cfg)
    extensions = _load_extensions(rt)
    entries = loader.failed_entries(packs, comfy_error) if comfy_error else loader.load_packs(packs)
    for entry in entries:
        if not entry["ok"]:
            err = entry.get("error") or {}
            log(f"pack {entry['name']} failed to load:\n{str(err.get('traceback', '')).rstrip()}")
    info = {
        "packs": entries,
        "python": platform.python_version(),
        "pid": os.getpid(),
        "extensions": extensions,
    }
    try:
        endpoint._send({"t": "ready", "info": info})
    except CBOREncodeError as e:
        log(f"{name}: the ready info cannot be encoded: {e}")
        endpoint._try_send({"t": "fail", "error": rpc.exception_map(e)})
        _exit_now(1)
    except OSError:
        _exit_now(0)
    code = 0
    try:
        loop.run_forever()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0
    except BaseException as e:  # the node loop itself broke: say why, and exit non-zero
        log(f"{name}: the node loop stopped: {type(e).__name__}: {e}")
        code = 1
    finally:
        _exit_now(code)
    return 0
