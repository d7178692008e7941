"""A real ``python -m pyisolate_runtime`` child against the test host of conftest.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import PYTHON_DIR, ChildCallable, ChildError, TestHost, wait_until

CALC = '''
import asyncio
import threading
import time

from pyisolate import host


class MyError(Exception):
    pass


STATE = {"started": [], "cancelled": [], "async_cancelled": [], "events": []}


class Calc:
    value = 5  # a class attribute, not a method

    def __init__(self):
        self.instance_fn = lambda: "instance attributes are not callable"

    def add(self, a, b=0):
        return a + b

    def echo(self, x):
        return x

    def kinds(self, x):
        return [type(v).__name__ for v in x]

    def ask_host(self, method, *args, **kwargs):
        return host.call("HostSvc", method, *args, **kwargs)

    async def aask_host(self, method, *args):
        return await host.acall("HostSvc", method, *args)

    def nested(self, x):
        return host.call("HostSvc", "back_to_child", x)

    async def anested(self, x):
        # a plain (waiting) host call from async code: the host calls back into an
        # async method of this process while the node loop waits
        return host.call("HostSvc", "back_to_child_async", x)

    async def aadd(self, a, b):
        return a + b

    def fail(self, msg):
        raise MyError(msg)

    def fail_builtin(self):
        return self._helper()

    def _helper(self):
        return int("not a number")

    def host_fails(self):
        try:
            host.call("HostSvc", "boom")
        except ValueError as e:
            return [type(e).__name__, str(e), getattr(e, "remote_type", None)]

    def host_not_callable(self):
        try:
            host.call("HostSvc", "_private")
        except Exception as e:
            return [type(e).__module__ + "." + type(e).__qualname__, str(e)]

    def call_cb(self, cb, x):
        return cb(x)

    async def acall_cb(self, cb, x):
        return await cb(x)

    def make_adder(self, n):
        return lambda x: x + n

    def sleep_sync(self, key, seconds):
        STATE["started"].append(key)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if host.cancelled():
                STATE["cancelled"].append(key)
                return "stopped"
            time.sleep(0.01)
        return "slept"

    async def sleep_async(self, key):
        STATE["started"].append(key)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            STATE["async_cancelled"].append(key)
            raise

    def state(self):
        return STATE

    def timeout_call(self):
        t = time.monotonic()
        try:
            host.call("HostSvc", "slow", timeout=0.3)
        except TimeoutError as e:
            return [str(e), time.monotonic() - t < 5]

    async def atimeout_call(self):
        try:
            await host.acall("HostSvc", "slow", timeout=0.3)
        except TimeoutError as e:
            return str(e)

    def thread_name(self):
        return threading.current_thread().name

    async def athread_name(self):
        return threading.current_thread().name

    def emit_to_host(self, x):
        host.emit("HostSvc", "note", x, kw=True)

    def service_proxy(self, x):
        svc = host.service("HostSvc")
        try:
            svc._private
        except AttributeError as e:
            refused = str(e)
        return [svc.double(x), refused]

    def where(self):
        return {"pack": host.pack_name(), "shared": host.is_shared_process(), "kind": host.config()["kind"]}

    def _secret(self):
        return "secret"


def on_poke(value):
    try:
        host.call("HostSvc", "double", 1)
    except RuntimeError as e:
        STATE["events"].append([value, threading.current_thread().name, str(e)])


host.serve("Calc", Calc())
host.on_event("Calc", "poke", on_poke)
'''


class HostSvc:
    """The host-side service the Calc pack calls."""

    def __init__(self) -> None:
        self.child: TestHost | None = None
        self.notes: list = []

    def double(self, x):
        return x * 2

    def back_to_child(self, x):
        assert self.child is not None
        return self.child.call("Calc", "add", x, 1)

    def back_to_child_async(self, x):
        assert self.child is not None
        return self.child.call("Calc", "aadd", x, 100)

    def deeper(self, x):
        assert self.child is not None
        return self.child.call("Calc", "ask_host", "double", x)

    def boom(self):
        raise ValueError("the host refuses")

    def slow(self):
        time.sleep(2)
        return "late"

    def note(self, *a, **k):
        self.notes.append((a, k))


@pytest.fixture
def calc(make_host, write_pack):
    svc = HostSvc()
    path = write_pack("Calc", {"__init__.py": CALC})
    h = make_host("Calc", packs=[{"name": "Calc", "path": path}], services={"HostSvc": svc})
    svc.child = h
    info = h.start()
    assert info is not None and info["packs"][0]["ok"], h.stderr_text()
    return h


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


# ------------------------------------------------------------------ calls


def test_runtime_service(calc):
    assert calc.call("$rt", "ping") == "pong"
    value = {"seed": 2**64 - 1, "neg": -(2**64), "big": 2**100, "t": (1, [2, (3,)]), "b": b"\x00\x01", "f": 0.5}
    assert calc.call("$rt", "echo", value) == value


def test_calls_both_ways_keep_values_exact(calc):
    assert calc.call("Calc", "add", 2, b=3) == 5
    assert calc.call("Calc", "add", 2**64 - 1, 1) == 2**64
    assert calc.call("Calc", "kinds", [1, 1.0, "s", b"b", (1,), [1], {}, None, True, 2**70]) == [
        "int", "float", "str", "bytes", "tuple", "list", "dict", "NoneType", "bool", "int",
    ]
    assert calc.call("Calc", "ask_host", "double", 21) == 42
    assert calc.call("Calc", "ask_host", "double", (1, 2)) == (1, 2, 1, 2)
    assert calc.call("Calc", "aask_host", "double", 2**63) == 2**64
    assert calc.call("Calc", "service_proxy", 4) == [8, "'_private' is private: only public methods of host service 'HostSvc' can be called"]
    assert calc.call("Calc", "where") == {"pack": "Calc", "shared": False, "kind": "isolated"}


def test_large_values_cross_in_one_frame(calc):
    blob = os.urandom(3 * 1024 * 1024)
    assert calc.call("$rt", "echo", blob) == blob
    many = list(range(100_000))
    assert calc.call("Calc", "echo", many) == many


def test_sync_methods_run_in_worker_threads_and_async_ones_on_the_node_loop(calc):
    assert calc.call("Calc", "thread_name").startswith("pyisolate-call")
    assert calc.call("Calc", "athread_name") == "MainThread"


def test_nested_calls_do_not_deadlock(calc):
    # host -> child (worker thread) -> host -> child
    assert calc.call("Calc", "nested", 41) == 42
    # host -> child -> host -> child -> host
    assert calc.call("Calc", "ask_host", "deeper", 5) == 10
    # host -> child (async method waiting with a plain call) -> host -> child async method
    assert calc.call("Calc", "anested", 1) == 101
    # many at once
    ids = [calc.call_async("Calc", "nested", i) for i in range(20)]
    for i, (_, w) in enumerate(ids):
        assert w.event.wait(30) and w.ok and w.value == i + 1


def test_callbacks_cross_both_ways(calc):
    seen = []

    def triple(x):
        seen.append(x)
        return x * 3

    assert calc.call("Calc", "call_cb", triple, 4) == 12
    assert calc.call("Calc", "acall_cb", triple, 5) == 15
    assert seen == [4, 5]
    adder = calc.call("Calc", "make_adder", 10)
    assert isinstance(adder, ChildCallable)
    assert adder(5) == 15 and adder(-10) == 0
    # the child drops its proxies of our functions and says so
    wait_until(
        lambda: calc.call("$rt", "ping") and not calc._callbacks,
        what="the child to release the host's callbacks",
    )
    releases = [a for s, m, a, _ in calc.events if (s, m) == ("$cb", "release")]
    assert sorted(i for a in releases for i in a) == ["h1", "h2"]


def test_exceptions_carry_type_message_and_traceback(calc):
    with pytest.raises(ChildError) as info:
        calc.call("Calc", "fail", "bad input")
    e = info.value
    assert e.type == "Calc.MyError" and e.message == "bad input"
    assert "Calc/__init__.py" in e.traceback and "raise MyError(msg)" in e.traceback
    assert e.traceback.rstrip().endswith("Calc.MyError: bad input")
    with pytest.raises(ChildError) as info:
        calc.call("Calc", "fail_builtin")
    assert info.value.type == "ValueError"
    assert "invalid literal for int()" in info.value.message
    assert "in _helper" in info.value.traceback
    # the host's error comes back into Python with its type
    assert calc.call("Calc", "host_fails") == ["ValueError", "the host refuses", "ValueError"]
    assert calc.call("Calc", "host_not_callable")[0] == "builtins.AttributeError"


@pytest.mark.parametrize(
    "service, method, fragment",
    [
        ("Calc", "_secret", "only public methods"),
        ("Calc", "__init__", "only public methods"),
        ("Calc", "__class__", "only public methods"),
        ("Calc", "missing", "'missing' is not defined"),
        ("Calc", "value", "'value' is not a method"),
        ("Calc", "instance_fn", "'instance_fn' is not defined"),
        ("Calc", "add.__globals__", "only public methods"),
        ("Nope", "add", "no service named 'Nope'"),
        ("$cb", "12345", "callback '12345'"),
    ],
)
def test_only_public_methods_of_served_objects_are_callable(calc, service, method, fragment):
    with pytest.raises(ChildError) as info:
        calc.call(service, method)
    assert info.value.type == "pyisolate.NotCallable"
    assert fragment in info.value.message


def test_cancellation_stops_sync_and_async_work(calc):
    cid, w = calc.call_async("Calc", "sleep_sync", "s1", 30)
    wait_until(lambda: "s1" in calc.call("Calc", "state")["started"], what="sync work to start")
    calc.cancel(cid)
    wait_until(lambda: "s1" in calc.call("Calc", "state")["cancelled"], what="sync work to see the cancel")
    cid, w = calc.call_async("Calc", "sleep_async", "a1")
    wait_until(lambda: "a1" in calc.call("Calc", "state")["started"], what="async work to start")
    calc.cancel(cid)
    wait_until(lambda: "a1" in calc.call("Calc", "state")["async_cancelled"], what="the task to be cancelled")
    assert not w.event.is_set()  # nothing more is sent for a cancelled call


def test_timeouts_raise_and_cancel_on_the_host(calc):
    message, prompt = calc.call("Calc", "timeout_call")
    assert message.startswith("HostSvc.slow did not answer within 0.3 s") and prompt
    assert calc.call("Calc", "atimeout_call").startswith("HostSvc.slow did not answer within 0.3 s")
    wait_until(lambda: len(calc.cancels) == 2, what="two cancel messages")


def test_events_both_ways(calc):
    calc.emit("Calc", "poke", 7)
    events = wait_until(lambda: calc.call("Calc", "state")["events"], what="the event handler")
    value, thread, error = events[0]
    assert value == 7 and thread == "pyisolate-io"
    assert "cannot wait for HostSvc.double on the pyisolate I/O thread" in error
    calc.call("Calc", "emit_to_host", 3)
    assert ("HostSvc", "note", [3], {"kw": True}) in calc.events
    # an event to a served method runs it without an answer; its error goes to stderr
    calc.emit("Calc", "fail", "from an event")
    calc.emit("Calc", "_secret")
    wait_until(lambda: "event Calc.fail failed" in calc.stderr_text(), what="the event error on stderr")
    wait_until(lambda: "event Calc._secret from the host was dropped" in calc.stderr_text(), what="the refusal")
    assert "Calc.MyError: from an event" in calc.stderr_text()
    assert calc.call("$rt", "ping") == "pong"


FRAGILE = """
from pyisolate import host
from pyisolate_runtime import cbor


def gone(content):
    raise FileNotFoundError(f"segment {content} is gone")


cbor.register_tag(41999, gone)
host.serve("Fragile", {"take": lambda x: "took it", "ask": lambda: host.call("HostSvc", "give")})
"""


def test_a_value_that_cannot_be_decoded_fails_only_its_message(make_host, write_pack):
    from pyisolate_runtime.cbor import Tagged

    path = write_pack("Fragile", {"__init__.py": FRAGILE})
    h = make_host("Fragile", packs=[{"name": "Fragile", "path": path}], services={"HostSvc": {"give": lambda: Tagged(41999, "s2")}})
    assert h.start() is not None
    with pytest.raises(ChildError) as info:
        h.call("Fragile", "take", Tagged(41999, "s1"))
    assert info.value.type == "FileNotFoundError" and info.value.message == "segment s1 is gone"
    with pytest.raises(ChildError) as info:
        h.call("Fragile", "ask")  # the host's answer cannot be decoded: the child's call raises
    assert info.value.type == "FileNotFoundError" and info.value.message == "segment s2 is gone"
    assert h.call("Fragile", "take", 1) == "took it"
    wait_until(lambda: "Fragile.take: a value from the host could not be decoded here" in h.stderr_text(), what="the log line")


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b"\x40\x00\x00\x01", "exceeds the 1073741824-byte limit"),
        (b"\x00\x00\x00\x02\xff\xff", "not valid CBOR"),
        (b"\x00\x00\x00\x01\x01", "not a message with a known kind"),
        (b"\x00\x00\x00\x08\xa1\x61t\x64what", "not a message with a known kind"),
        (b"\x00\x00\x00\x08\xa1\x61t\x64call", "'call' message from the host is malformed"),
        (b"\x00\x00\x00\x06\xa1\x61t\x62ok", "'ok' message from the host is malformed"),
    ],
)
def test_a_protocol_error_closes_the_connection(calc, raw, fragment):
    calc.send_raw(raw)
    assert calc.wait_exit(20) == 2
    wait_until(lambda: fragment in calc.stderr_text(), what=f"{fragment!r} on stderr")


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
