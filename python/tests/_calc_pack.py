"""The Calc pack and its host-side service, shared by the tests that run a real child:
:data:`CALC` is the pack's source, :class:`HostSvc` what it calls on the host, and the
``calc`` fixture a started child serving it (import it into a test module to use it)."""

from __future__ import annotations

import time

import pytest

from conftest import TestHost

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
