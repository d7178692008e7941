"""Puts the runtime and its ComfyUI shim modules on sys.path and loads fixture packs."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
for _p in (ROOT / "python" / "pyisolate_runtime" / "shims", ROOT / "python"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

FIXTURES = ROOT / "test" / "fixtures" / "node_packs"


def load_pack(name: str) -> ModuleType:
    """Imports a fixture pack the way ComfyUI does: its directory name is the module name."""
    if name in sys.modules:
        return sys.modules[name]
    path = FIXTURES / name / "__init__.py"
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=[str(path.parent)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
