"""The child process itself, against the test host of conftest.py: handshake, loading packs,
exiting, a pack with its own cbor2, other Python versions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _calc_pack import CALC, HostSvc, calc  # noqa: F401 (fixture)
from conftest import PYTHON_DIR, ChildError, wait_until

# ------------------------------------------------------------------ handshake & loading


def test_handshake_with_a_bad_token_is_refused(make_host, write_pack, tmp_path):
    marker = tmp_path / "imported"
    path = write_pack("Marker", {"__init__.py": f"open({str(marker)!r}, 'w').close()\n"})
    h = make_host("Marker", packs=[{"name": "Marker", "path": path}], child_token="0" * 32)
    assert h.start() is None
    assert h.refused and h.hello["token"] == "0" * 32
    assert h.wait_exit() == 3
    wait_until(lambda: "refused" in h.stderr_text(), what="the refusal on stderr")
    assert not marker.exists()


def test_one_broken_pack_does_not_stop_the_others(make_host, write_pack, tmp_path):
    broken = write_pack("Broken", {"__init__.py": "import os\n\nvalue = 1 / 0\n"})
    good = write_pack("Good", {"__init__.py": "from .impl import Good\n", "impl.py": GOOD_IMPL})
    single = tmp_path / "custom_nodes" / "single_file.py"
    single.write_text("from pyisolate import host\nhost.serve('Single', {'hi': lambda: 'single'})\n")
    h = make_host(
        "shared",
        kind="shared",
        packs=[{"name": "Broken", "path": broken}, {"name": "Good", "path": good}, {"name": "single", "path": str(single)}],
    )
    info = h.start()
    assert info is not None
    by_name = {p["name"]: p for p in info["packs"]}
    assert by_name["Broken"]["ok"] is False
    err = by_name["Broken"]["error"]
    assert err["type"] == "ZeroDivisionError" and err["message"] == "division by zero"
    assert "Broken/__init__.py\", line 3" in err["traceback"] and "value = 1 / 0" in err["traceback"]
    assert "<frozen importlib" not in err["traceback"]
    # (extensions such as the node API may add their own fields to each entry)
    assert {k: by_name["Good"][k] for k in ("name", "module", "ok")} == {"name": "Good", "module": "Good", "ok": True}
    assert {k: by_name["single"][k] for k in ("name", "module", "ok")} == {"name": "single", "module": "single_file", "ok": True}
    assert info["pid"] == h.proc.pid and info["python"] == ".".join(map(str, sys.version_info[:3]))
    assert h.call("Good", "where") == {"cwd": os.getcwd(), "module": "Good.impl", "in_sys_modules": True}
    assert h.call("Single", "hi") == "single"
    wait_until(lambda: "pack Broken failed to load" in h.stderr_text(), what="the pack error on stderr")


GOOD_IMPL = '''
import os
import sys

from pyisolate import host


class Good:
    def where(self):
        return {"cwd": os.getcwd(), "module": __name__, "in_sys_modules": "Good" in sys.modules}


host.serve("Good", Good())
'''


def test_a_bad_config_answers_fail(make_host):
    h = make_host("Bad", config={"pack": "Bad", "kind": "isolated", "packs": [], "sys_path": "not-a-list"})
    assert h.start() is None
    assert h.fail is not None and h.fail["type"] == "ValueError"
    assert "config.sys_path must be a list of strings" in h.fail["message"]
    assert h.wait_exit() == 1


def test_sys_path_plan_is_prepended(make_host, write_pack, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "helper_mod.py").write_text("VALUE = 'from lib'\n")
    path = write_pack(
        "UsesLib",
        {
            "__init__.py": "import sys, helper_mod\nfrom pyisolate import host\n"
            "host.serve('UsesLib', {'info': lambda: [helper_mod.VALUE, sys.path[0]]})\n"
        },
    )
    h = make_host("UsesLib", packs=[{"name": "UsesLib", "path": path}], sys_path=[str(lib)])
    assert h.start() is not None
    assert h.call("UsesLib", "info") == ["from lib", str(lib)]


# ------------------------------------------------------------------ lifecycle


def test_end_of_stream_makes_the_child_exit_quietly(calc):
    calc.call_async("Calc", "sleep_sync", "busy", 60)  # node code still running
    wait_until(lambda: "busy" in calc.call("Calc", "state")["started"], what="work to start")
    calc.close()
    assert calc.wait_exit(20) == 0
    time.sleep(0.2)
    assert "Traceback" not in calc.stderr_text()


def test_bye_and_shutdown_exit_zero(calc, make_host, write_pack):
    calc.bye()
    assert calc.wait_exit(20) == 0
    path = write_pack("Calc2", {"__init__.py": CALC})
    h = make_host("Calc2", packs=[{"name": "Calc2", "path": path}])
    assert h.start() is not None
    assert h.call("$rt", "shutdown") is None
    assert h.wait_exit(20) == 0


HOST_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from conftest import TestHost
h = TestHost("Orphan", packs=[])
h.start()
print(h.proc.pid, flush=True)
time.sleep(120)
"""


def test_a_child_whose_host_is_killed_exits_by_itself(tmp_path):
    script = tmp_path / "host.py"
    script.write_text(HOST_SCRIPT.format(tests=str(Path(__file__).parent)))
    # TMPDIR: the killed host cannot remove its socket directory; let pytest's tmp_path hold it
    env = dict(os.environ, TMPDIR=str(tmp_path))
    host = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        child_pid = int(host.stdout.readline())
        assert _alive(child_pid)
        host.send_signal(signal.SIGKILL)
        host.wait(10)
        wait_until(lambda: not _alive(child_pid), what="the orphaned child to exit")
    finally:
        if host.poll() is None:
            host.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()
    except FileNotFoundError:
        return False


# ------------------------------------------------------------------ a pack with its own cbor2

PIN_PACK = '''
import sys

BEFORE = sorted(m for m in ("cbor2", "_cbor2", "msgpack") if m in sys.modules)

import importlib.metadata

import cbor2

from pyisolate import host


class Pin:
    def info(self):
        return {
            "before": BEFORE,
            "version": importlib.metadata.version("cbor2"),
            "file": cbor2.__file__,
            "round_trip": cbor2.loads(cbor2.dumps({"a": [1, 2]})),
            "prefix": sys.prefix,
        }


host.serve("Pin", Pin())
'''


def test_a_pack_pinning_its_own_cbor2_works(make_host, write_pack, tmp_path):
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        pytest.skip("uv is not installed next to the host Python")
    venv = tmp_path / "venv"
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
    subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env)
    subprocess.run(
        [str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "cbor2==5.4.6"],
        check=True,
        env=env,
    )
    path = write_pack("Pinned", {"__init__.py": PIN_PACK})
    h = make_host("Pinned", packs=[{"name": "Pinned", "path": path}], python=str(venv / "bin" / "python"))
    info = h.start()
    assert info is not None and info["packs"][0]["ok"], h.stderr_text()
    got = h.call("Pin", "info")
    assert got["before"] == []  # the runtime imported neither cbor2 nor msgpack
    assert got["version"] == "5.4.6"
    assert got["file"].startswith(str(venv))
    assert got["round_trip"] == {"a": [1, 2]}
    assert got["prefix"] == str(venv)
    assert h.call("$rt", "echo", [2**64 - 1, (1, 2)]) == [2**64 - 1, (1, 2)]


def test_the_runtime_imports_no_third_party_codec():
    code = (
        "import sys; import pyisolate_runtime.child, pyisolate_runtime.host, pyisolate;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cbor2', '_cbor2', 'msgpack')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(PYTHON_DIR)), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ other Python versions


def _other_pythons() -> list[str]:
    """Interpreters ≥ 3.9 other than this one: $PYISOLATE_TEST_PYTHONS (os.pathsep-separated),
    else those pyenv installed."""
    listed = os.environ.get("PYISOLATE_TEST_PYTHONS")
    if listed:
        return [p for p in listed.split(os.pathsep) if p]
    found = []
    for d in sorted(Path(os.path.expanduser("~/.pyenv/versions")).glob("3.*")):
        parts = d.name.split(".")
        exe = d / "bin" / "python3"
        if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) >= 9 and exe.exists():
            if (3, int(parts[1])) != sys.version_info[:2]:
                found.append(str(exe))
    return found


@pytest.mark.parametrize("python", _other_pythons() or [pytest.param(None, marks=pytest.mark.skip("no other Python found"))])
def test_the_runtime_runs_on_other_python_versions(make_host, write_pack, python):
    svc = HostSvc()
    path = write_pack("Calc", {"__init__.py": CALC})
    h = make_host("Calc", packs=[{"name": "Calc", "path": path}], services={"HostSvc": svc}, python=python)
    svc.child = h
    info = h.start()
    assert info is not None and info["packs"][0]["ok"], h.stderr_text()
    assert h.call("$rt", "echo", [2**64 - 1, (1, 2)]) == [2**64 - 1, (1, 2)]
    assert h.call("Calc", "nested", 1) == 2 and h.call("Calc", "anested", 1) == 101
    assert h.call("Calc", "aask_host", "double", 4) == 8
    with pytest.raises(ChildError) as err:
        h.call("Calc", "fail", "x")
    assert err.value.type == "Calc.MyError" and "raise MyError(msg)" in err.value.traceback
    assert h.call("Calc", "host_fails") == ["ValueError", "the host refuses", "ValueError"]
    h.close()
    assert h.wait_exit(20) == 0
