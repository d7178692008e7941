"""The object table and proxies of remote object handles, without a host: ids, counts,
releases, stale ids, and what a proxy refuses (the forwarding itself is tested end to end
in test/handles.e2e.test.ts, with real processes)."""

import gc
import pickle

import pytest

from pyisolate_runtime.handles import EPOCH, HandleError, ObjectTable, ProxyError, ProxyTable, is_proxy, methods_of
from pyisolate_runtime.handles.proxy import proxy_class, register_proxy, RemoteObject
from pyisolate_runtime.handles.table import short_repr


class Thing:
    def __init__(self, n):
        self.n = n

    def double(self):
        return 2 * self.n

    async def later(self):
        return self.n

    @staticmethod
    def helper():
        return 1


def test_an_object_keeps_one_id_and_resolves_to_itself():
    table = ObjectTable("packA")
    t = Thing(1)
    a = table.export(t)
    b = table.export(t)
    assert a["id"] == b["id"] and a["id"].startswith(EPOCH + ".")
    assert a["owner"] == "packA" and a["type"].endswith("Thing")
    assert table.resolve(a) is t
    assert len(table) == 1 and table.entries()[0]["sent"] == 2


def test_the_object_goes_when_every_send_is_released():
    table = ObjectTable("p")
    h = table.export(Thing(1))
    table.export(table.resolve(h))
    assert table.release([[h["id"], 1]]) == 0  # one send still held
    assert table.release([[h["id"], 1]]) == 1
    assert len(table) == 0
    with pytest.raises(HandleError, match="no longer held"):
        table.resolve(h)


def test_a_message_that_fails_to_encode_counts_nothing():
    table = ObjectTable("p")
    mark = table.begin()
    table.export(Thing(1))
    table.end(mark, ok=False)
    assert len(table) == 0
    mark = table.begin()
    h = table.export(Thing(2))
    table.end(mark, ok=True)
    assert table.entries()[0]["sent"] == 1 and table.resolve(h).n == 2


def test_an_id_of_an_earlier_process_start_is_refused():
    table = ObjectTable("p")
    with pytest.raises(HandleError, match="earlier start of process 'p'"):
        table.resolve({"id": "00000000.abc", "type": "x.Y"})


def test_malformed_releases_are_ignored():
    table = ObjectTable("p")
    h = table.export(Thing(1))
    assert table.release([None, ["nope"], [h["id"], "x"], "junk"]) == 0
    assert len(table) == 1


def test_short_repr_is_bounded_and_never_raises():
    class Loud:
        def __repr__(self):
            return "x" * 500

    class Broken:
        def __repr__(self):
            raise RuntimeError("no")

    assert len(short_repr(Loud())) == 120
    assert "repr failed: RuntimeError" in short_repr(Broken())
    assert short_repr(Thing(1)).endswith("Thing object>")


def test_methods_of_lists_methods_and_whether_they_are_async():
    m = methods_of(Thing)
    assert m["double"] is False and m["later"] is True and m["helper"] is False
    assert "__init__" not in m and "n" not in m


def content(hid="e.1", owner="other", tname="mod.Thing"):
    return {"id": hid, "owner": owner, "type": tname, "repr": "<Thing>"}


def test_one_proxy_per_handle_and_its_release_counts_every_arrival():
    sent = []
    proxies = ProxyTable()
    proxies.bind(sent.append)
    p = proxies.decode(content())
    assert proxies.decode(content()) is p
    assert is_proxy(p) and type(p).__name__ == "Thing" and proxies.live() == 1
    del p
    gc.collect()
    proxies.flush()
    assert sum(sent, []) == [["e.1", 2]] and proxies.live() == 0
    # A new arrival after the release is a new proxy with a fresh count.
    q = proxies.decode(content())
    assert proxies.live() == 1 and q is not None


def test_a_proxy_refuses_what_it_cannot_forward_naming_type_and_owner():
    p = ProxyTable().decode(content(owner="Loaders", tname="comfy.sd.CLIP"))
    with pytest.raises(ProxyError, match=r"Cannot pickle the comfy\.sd\.CLIP object: .* lives in pack 'Loaders'"):
        pickle.dumps(p)
    with pytest.raises(TypeError, match="convert to a numpy array"):
        p.__array__()
    assert "proxy of <Thing> in pack 'Loaders'" in repr(p)


def test_registered_proxy_classes_are_used():
    class Special(RemoteObject):
        __slots__ = ()

        def local(self):
            return "here"

    register_proxy("mod.Special", Special)
    assert proxy_class("mod.Special") is Special
    p = ProxyTable().decode(content(hid="e.2", tname="mod.Special"))
    assert p.local() == "here"
    with pytest.raises(TypeError, match="needs a subclass of RemoteObject"):
        register_proxy("mod.Bad", int)
