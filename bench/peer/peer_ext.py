"""The Python pyisolate's side of the side-by-side benchmark: the extension class and the
adapter, in a module the child can import (a class defined in ``__main__`` cannot be
rehydrated there). Imported by ``peer_driver.py`` in the host and by pyisolate's child."""

from __future__ import annotations

import time
from typing import Any

from pyisolate import ExtensionBase, ProxiedSingleton


class BenchShared(ProxiedSingleton):
    """An object of the host that extensions call: its instance lives in the host process; in a
    child, ``BenchShared()`` is a proxy whose async methods are calls to the host. Given to
    every extension through :meth:`BenchAdapter.provide_rpc_services`."""

    async def ping(self, x: Any) -> Any:
        return x

    async def pid(self) -> int:
        import os

        return os.getpid()


class BenchExtension(ExtensionBase):
    """The same workloads as the framework's side: echo, take a tensor, make a fresh one, add 1."""

    async def on_module_loaded(self, module: Any) -> None:
        self.module = module
        self.held = None

    async def echo(self, x: Any) -> Any:
        return x

    async def take(self, t: Any) -> Any:
        self.held = t
        return None if t is None else int(t.numel())

    async def make(self, nbytes: int, shape: Any) -> Any:
        import torch

        shape = list(shape) if shape else [nbytes // 4]
        t = torch.empty(shape, dtype=torch.float32)
        t.fill_(0.5)
        return t

    async def make_none(self, nbytes: int, shape: Any) -> Any:
        import torch

        shape = list(shape) if shape else [nbytes // 4]
        t = torch.empty(shape, dtype=torch.float32)
        t.fill_(0.5)
        return None

    async def inc(self, value: int, work_ms: float) -> Any:
        started = time.perf_counter()
        out = value + 1
        return [out, work_ms + (time.perf_counter() - started) * 1000.0]

    async def shared_calls(self, calls: int, warmup: int) -> list[float]:
        """``BenchShared().ping([i, {name, v}])`` from this child, one call at a time: each
        call's time in ms, measured here (the same call the framework's side times in its node)."""
        import os

        shared = BenchShared()
        host_pid = await shared.pid()
        if host_pid == os.getpid():
            raise RuntimeError("BenchShared() is not a proxy in this child: its method ran here")
        arg = {"name": "seed", "v": 1.5}
        for i in range(warmup):
            await shared.ping([i, arg])
        out = []
        clock = time.perf_counter_ns
        for i in range(calls):
            t = clock()
            await shared.ping([i, arg])
            out.append((clock() - t) / 1e6)
        return out

    async def pid(self) -> int:
        import os

        return os.getpid()


class BenchAdapter:
    """The least an application gives pyisolate: paths, and the tensor serializer."""

    @property
    def identifier(self) -> str:
        return "pyisolate_bench"

    def get_path_config(self, module_path: str) -> dict | None:
        import os

        return {"preferred_root": os.path.dirname(os.path.abspath(__file__)), "additional_paths": []}

    def setup_child_environment(self, snapshot: dict) -> None:
        pass

    def register_serializers(self, registry: Any) -> None:
        from pyisolate._internal.tensor_serializer import deserialize_tensor, serialize_tensor

        registry.register("torch.Tensor", serialize_tensor, deserialize_tensor)

    def provide_rpc_services(self) -> list:
        return [BenchShared]

    def handle_api_registration(self, api: Any, rpc: Any) -> None:
        pass
