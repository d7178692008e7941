"""Calls both ways between a real ``python -m pyisolate_runtime`` child and the test host of
conftest.py: values, threads, nested calls, callbacks, errors, cancellation, events."""

from __future__ import annotations

import os

import pytest

from _calc_pack import calc  # noqa: F401 (fixture)
from conftest import ChildCallable, ChildError, wait_until

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
