"""``ProxiedSingleton`` across processes: one instance in the shared process, proxies in the
isolated ones."""

from __future__ import annotations

import textwrap

import pytest

from conftest import ChildError

# ------------------------------------------------------------------ ProxiedSingleton

SHARED_MODELS = '''
import os

from pyisolate import ProxiedSingleton


class ModelCache(ProxiedSingleton):
    kind = "cache"

    def __init__(self):
        self.models = {}
        self.loads = 0

    async def get_model(self, name):
        if name not in self.models:
            self.loads += 1
            self.models[name] = {"name": name, "pid": os.getpid(), "load": self.loads}
        return self.models[name]

    def stats(self):
        return {"loads": self.loads, "pid": os.getpid(), "names": sorted(self.models)}

    def _private(self):
        return "no"
'''

USES_CACHE = '''
from pyisolate import host
from shared_models import ModelCache


class Node:
    async def process(self, model_name):
        cache = ModelCache()  # a proxy of the shared process's singleton
        model = await cache.get_model(model_name)
        return model

    def process_sync(self, model_name):
        return ModelCache().get_model(model_name)

    def stats(self):
        return ModelCache().stats()

    def proxy_facts(self):
        cache = ModelCache()
        try:
            cache.models
        except AttributeError as e:
            attr_error = str(e)
        try:
            cache._private()
        except AttributeError as e:
            private_error = str(e)
        return [type(cache).__name__, cache is ModelCache(), cache.kind, attr_error, private_error]


host.serve("UsesCache", Node())
'''

SHARED_PACK = '''
from pyisolate import host
from shared_models import ModelCache


class Local:
    def facts(self):
        cache = ModelCache()
        return [type(cache).__name__, cache is ModelCache(), cache.loads]


host.serve("SharedPack", Local())
'''


def test_a_proxied_singleton_is_shared_by_isolated_processes(make_host, write_pack, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "shared_models.py").write_text(textwrap.dedent(SHARED_MODELS))
    shared_pack = write_pack("SharedPack", {"__init__.py": SHARED_PACK})
    shared = make_host("shared", kind="shared", packs=[{"name": "SharedPack", "path": shared_pack}], sys_path=[str(lib)])
    assert shared.start() is not None
    children = []
    for name in ("NodeA", "NodeB"):
        path = write_pack(name, {"__init__.py": USES_CACHE})
        h = make_host(name, packs=[{"name": name, "path": path}], sys_path=[str(lib)], singleton_target=shared)
        assert h.start() is not None, h.stderr_text()
        children.append(h)
    a, b = children
    model = a.call("UsesCache", "process", "sd15")
    assert model == {"name": "sd15", "pid": shared.proc.pid, "load": 1}
    assert b.call("UsesCache", "process_sync", "sd15") == model  # same instance: not loaded again
    assert b.call("UsesCache", "process", "flux") == {"name": "flux", "pid": shared.proc.pid, "load": 2}
    assert a.call("UsesCache", "stats") == {"loads": 2, "pid": shared.proc.pid, "names": ["flux", "sd15"]}
    kind, same, class_attr, attr_error, private_error = a.call("UsesCache", "proxy_facts")
    assert (kind, same, class_attr) == ("SingletonProxy", True, "cache")
    assert "lives in the shared Python process" in attr_error and "'models'" in attr_error
    assert "private" in private_error
    assert shared.call("SharedPack", "facts") == ["ModelCache", True, 2]
    # the shared process refuses what is not a public method of a ProxiedSingleton
    with pytest.raises(ChildError) as info:
        shared.call("$singleton", "call", "shared_models", "ModelCache", "_private", [], {})
    assert info.value.type == "pyisolate.NotCallable"
    with pytest.raises(ChildError) as info:
        shared.call("$singleton", "call", "os", "path", "join", ["a"], {})
    assert info.value.type == "pyisolate.NotCallable"
