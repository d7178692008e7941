"""pack_scan: what `pyisolate init` reads of a pack, with ast (nothing of the pack runs)."""

import json
import os
import subprocess
import sys

from pyisolate_runtime import pack_scan


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_reads_absolute_imports_anywhere_and_nothing_else(tmp_path):
    root = str(tmp_path / "MyPack")
    write(root, "__init__.py", "from .nodes import X\nimport os, json as j\n")
    write(
        root,
        "nodes.py",
        "\n".join([
            "import numpy.linalg",
            "from PIL import Image",
            "s = 'import not_a_module'",
            "# import also_not",
            "def f():",
            "    import scipy.ndimage",
            "try:",
            "    import cv2",
            "except ImportError:",
            "    cv2 = None",
            "from . import helpers",
            "from .lib import thing",
            "raise SystemExit('never run')",
        ]),
    )
    write(root, "lib/__init__.py", "")
    write(root, "broken.py", "def (:\n")
    write(root, ".hidden/skip.py", "import hidden_dep\n")
    write(root, "__pycache__/x.py", "import cached_dep\n")
    out = pack_scan.scan(root)
    assert sorted(out["imports"]) == ["PIL", "cv2", "json", "numpy", "os", "scipy"]
    assert out["imports"]["scipy"] == ["nodes.py:6"]
    assert out["imports"]["numpy"] == ["nodes.py:1"]
    assert out["files"] == 4
    assert {"MyPack", "nodes", "lib", "__init__", "broken"} <= set(out["own"])
    assert [e["file"] for e in out["errors"]] == ["broken.py"]
    assert "SyntaxError" in out["errors"][0]["message"]
    if sys.version_info >= (3, 10):
        assert "os" in out["stdlib"] and "numpy" not in out["stdlib"]


def test_names_the_installed_distributions_of_imports(tmp_path):
    root = str(tmp_path / "P")
    write(root, "__init__.py", "import pytest\nimport _pytest\nimport surely_not_installed_xyz\n")
    out = pack_scan.scan(root)
    if sys.version_info >= (3, 10):
        assert out["distributions"]["pytest"] == ["pytest"]
    assert "surely_not_installed_xyz" not in out["distributions"]


def test_runs_as_a_script_in_isolated_mode(tmp_path):
    root = str(tmp_path / "P")
    write(root, "__init__.py", "import yaml\n")
    script = pack_scan.__file__
    r = subprocess.run([sys.executable, "-I", script, root], capture_output=True, text=True, check=True)
    assert json.loads(r.stdout)["imports"] == {"yaml": ["__init__.py:1"]}
    bad = subprocess.run([sys.executable, "-I", script, str(tmp_path / "missing")], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr
