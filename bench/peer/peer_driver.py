"""Drives the Python pyisolate (0.10.x, from PyPI) for the side-by-side benchmark
(``bench/compare.ts``): one long-lived process that takes one JSON command per stdin line and
answers one JSON line on stdout, so the two systems' runs can be interleaved.

Every extension is a ``share_torch`` extension (torch imported in its child, tensors through
shared memory) whose class is :class:`peer_ext.BenchExtension`; their venvs live under the
``root`` given to ``setup`` and are reused from one run to the next.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import sys
import time
import traceback
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from peer_ext import BenchAdapter, BenchExtension  # noqa: E402
from pyisolate import ExtensionConfig, ExtensionManager, ExtensionManagerConfig  # noqa: E402
from pyisolate._internal.adapter_registry import AdapterRegistry  # noqa: E402
from pyisolate.config import SandboxMode  # noqa: E402

ROOT = ""
manager: Any = None
exts: dict[str, Any] = {}


def _memory(pid: int) -> dict[str, float]:
    out = {"rss_mb": 0.0, "pss_mb": 0.0, "uss_mb": 0.0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            kb = {}
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    kb[parts[0].rstrip(":")] = int(parts[1])
        out["rss_mb"] = kb.get("Rss", 0) / 1024
        out["pss_mb"] = kb.get("Pss", 0) / 1024
        out["uss_mb"] = (kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)) / 1024
    except OSError:
        pass
    return out


def _extension(name: str) -> Any:
    path = os.path.join(ROOT, "extensions", name)
    os.makedirs(path, exist_ok=True)
    init = os.path.join(path, "__init__.py")
    if not os.path.exists(init):
        with open(init, "w") as f:
            f.write("import torch  # a pack that uses torch, as the framework's side does\n")
    # No ``apis``: pyisolate then takes them from the adapter's provide_rpc_services (BenchShared).
    cfg = ExtensionConfig(
        name=name,
        module_path=path,
        isolated=True,
        dependencies=[],
        share_torch=True,
        share_cuda_ipc=False,
        sandbox_mode=SandboxMode.DISABLED,
    )
    ext = manager.load_extension(cfg)
    exts[name] = ext
    return ext


MAIN_LOOP: Any = None


def _start(ext: Any) -> None:
    # pyisolate binds each extension's RPC to the current event loop: the driver's own.
    asyncio.set_event_loop(MAIN_LOOP)
    ext._extension.ensure_process_started()
    _ = ext.proxy


async def op_setup(cmd: dict[str, Any]) -> Any:
    global ROOT, manager
    ROOT = cmd["root"]
    os.makedirs(os.path.join(ROOT, "venvs"), exist_ok=True)
    venv_bin = os.path.dirname(sys.executable)
    os.environ["PATH"] = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    AdapterRegistry.register(BenchAdapter())
    manager = ExtensionManager(BenchExtension, ExtensionManagerConfig(venv_root_path=os.path.join(ROOT, "venvs")))
    import pyisolate

    return {"version": getattr(pyisolate, "__version__", "?"), "torch": torch.__version__}


async def op_prepare(cmd: dict[str, Any]) -> Any:
    """Builds the venvs of these extensions (not measured): start and stop each once."""
    loop = asyncio.get_running_loop()
    for name in cmd["names"]:
        if os.path.isdir(os.path.join(ROOT, "venvs", name)):
            continue
        ext = _extension(name)
        await loop.run_in_executor(None, _start, ext)
        await ext.echo(1)
        ext._extension.stop()
        manager.extensions.pop(name, None)
        exts.pop(name, None)
    return True


async def op_first(cmd: dict[str, Any]) -> Any:
    """Process start → first call answered, for one extension whose venv exists."""
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    ext = _extension(cmd["name"])
    await loop.run_in_executor(None, _start, ext)
    await ext.inc(1, 0.0)
    ms = (time.perf_counter() - t0) * 1000
    pid = await ext.pid()
    return {"ms": ms, "pid": pid, **_memory(pid)}


async def op_many(cmd: dict[str, Any]) -> Any:
    """These extensions started at once; wall time until every one has answered."""
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    started = [_extension(n) for n in cmd["names"]]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(started)) as pool:
        await asyncio.gather(*(loop.run_in_executor(pool, _start, e) for e in started))
    await asyncio.gather(*(e.inc(1, 0.0) for e in started))
    return {"ms": (time.perf_counter() - t0) * 1000}


async def op_memory(cmd: dict[str, Any]) -> Any:
    return [_memory(await exts[n].pid()) for n in cmd["names"]]


async def op_rpc(cmd: dict[str, Any]) -> Any:
    ext = exts[cmd["name"]]
    out = []
    for i in range(cmd["calls"]):
        t = time.perf_counter()
        await ext.echo({"i": i, "name": "seed", "v": 1.5})
        out.append((time.perf_counter() - t) * 1000)
    return out


async def op_shared(cmd: dict[str, Any]) -> Any:
    """The child calling a method of the host's ``BenchShared`` (a ProxiedSingleton): per-call ms, timed in the child."""
    return await exts[cmd["name"]].shared_calls(cmd["calls"], cmd.get("warmup", 0))


async def op_tensor_in(cmd: dict[str, Any]) -> Any:
    """What a host tensor adds to a call: take(t) minus take(None), pairs of calls."""
    ext = exts[cmd["name"]]
    shape = cmd.get("shape") or [cmd["bytes"] // 4]
    t = torch.full(shape, 0.5, dtype=torch.float32)
    out = []
    for _ in range(cmd["iters"]):
        a = time.perf_counter()
        await ext.take(t)
        b = time.perf_counter()
        await ext.take(None)
        c = time.perf_counter()
        out.append(((b - a) - (c - b)) * 1000)
    await ext.take(None)
    return out


async def op_tensor_out(cmd: dict[str, Any]) -> Any:
    """What a fresh output tensor adds: make() minus make_none() (the same work, no tensor back)."""
    ext = exts[cmd["name"]]
    out = []
    for _ in range(cmd["iters"]):
        a = time.perf_counter()
        r = await ext.make(cmd["bytes"], cmd.get("shape"))
        b = time.perf_counter()
        await ext.make_none(cmd["bytes"], cmd.get("shape"))
        c = time.perf_counter()
        assert r.numel() * 4 == cmd["bytes"]
        del r
        out.append(((b - a) - (c - b)) * 1000)
    return out


async def op_chain(cmd: dict[str, Any]) -> Any:
    """A chain through these extensions, each adding 1: (wall − work) / links, per run."""
    chain = [exts[n] for n in cmd["names"]]
    out = []
    for r in range(cmd["runs"]):
        value, work = r, 0.0
        t = time.perf_counter()
        for ext in chain:
            value, work = await ext.inc(value, work)
        wall = (time.perf_counter() - t) * 1000
        assert value == r + len(chain)
        out.append((wall - work) / len(chain))
    return out


async def op_stop(cmd: dict[str, Any]) -> Any:
    for name in cmd.get("names") or list(exts):
        ext = exts.pop(name, None)
        if ext is not None:
            try:
                ext._extension.stop()
            except Exception:
                pass
            manager.extensions.pop(name, None)
    return True


async def main() -> None:
    global MAIN_LOOP
    loop = MAIN_LOOP = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        try:
            result = await globals()[f"op_{cmd['op']}"](cmd)
            reply = {"ok": True, "result": result}
        except Exception as e:
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        sys.stdout.write("\x1ePEER " + json.dumps(reply) + "\n")
        sys.stdout.flush()
        if cmd["op"] == "quit":
            break
    await op_stop({})


async def op_quit(cmd: dict[str, Any]) -> Any:
    return True


if __name__ == "__main__":
    asyncio.run(main())
