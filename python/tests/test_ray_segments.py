"""Tensor refs under the Ray backend, without a cluster: where a segment lives is part of its
ref, and a reader decides by Ray node identity whether it maps the segment or must fetch it.
The fetch itself (through the actors and Ray's object store) is test/ray_tensors.e2e.test.ts's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

from pyisolate_runtime import tensors  # noqa: E402
from pyisolate_runtime.values.mappings import MAPPED  # noqa: E402

NODE_A = "a" * 56
NODE_B = "b" * 56


@pytest.fixture(autouse=True)
def host_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYISOLATE_HOST_PID", str(os.getpid()))
    monkeypatch.delenv("PYISOLATE_HOST_ID", raising=False)
    monkeypatch.delenv("PYISOLATE_SHM_DIR", raising=False)
    monkeypatch.setenv("PYISOLATE_SEGMENT_POOL_BYTES", "0")
    monkeypatch.setenv("PYISOLATE_PACK", "TestPack")
    for k in ("PYISOLATE_RAY_NODE", "PYISOLATE_RAY_ACTOR", "PYISOLATE_RAY_RELAY", "PYISOLATE_RAY_RELAY_TOKEN", "PYISOLATE_RAY_HOST_NODE"):
        monkeypatch.delenv(k, raising=False)
    before = set(tensors.list_segments(os.getpid()))
    yield
    for name in set(tensors.list_segments(os.getpid())) - before:
        tensors.unlink_segment(name)


def on_node(monkeypatch: pytest.MonkeyPatch, node: str, actor: str = "pyisolate-x-1", relay: str | None = None) -> None:
    monkeypatch.setenv("PYISOLATE_RAY_NODE", node)
    monkeypatch.setenv("PYISOLATE_RAY_ACTOR", actor)
    if relay is not None:
        monkeypatch.setenv("PYISOLATE_RAY_RELAY", relay)


def test_local_backend_refs_carry_no_ray_field() -> None:
    ref = tensors.encode_tensor(torch.arange(8, dtype=torch.float32))
    assert "ray" not in ref
    arr = tensors.encode_ndarray(np.arange(8, dtype=np.int32))[1]
    assert "ray" not in arr


def test_refs_written_on_a_ray_node_say_where_and_map_on_that_node(monkeypatch: pytest.MonkeyPatch) -> None:
    on_node(monkeypatch, NODE_A, "pyisolate-x-7")
    t = torch.arange(1000, dtype=torch.float32)
    ref = tensors.encode_tensor(t)
    assert ref["ray"] == {"node": NODE_A, "actor": "pyisolate-x-7"}
    back = tensors.decode_tensor(ref)  # same node: the segment itself is mapped
    assert torch.equal(back, t)
    assert MAPPED[back.untyped_storage().data_ptr()][0].segment == ref["segment"]
    # Sent on unchanged: the same segment, still tagged with this node.
    again = tensors.encode_tensor(back)
    assert (again["segment"], again["ray"]) == (ref["segment"], ref["ray"])
    content = tensors.encode_ndarray(np.arange(10, dtype=np.int64))
    assert content[1]["ray"] == {"node": NODE_A, "actor": "pyisolate-x-7"}
    assert np.array_equal(tensors.decode_ndarray(content), np.arange(10))


def test_a_ref_of_the_host_machine_maps_on_the_host_node(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = tensors.encode_tensor(torch.ones(16))  # written without a Ray node: the host's machine
    on_node(monkeypatch, NODE_B)
    monkeypatch.setenv("PYISOLATE_RAY_HOST_NODE", NODE_B)
    assert torch.equal(tensors.decode_tensor(ref), torch.ones(16))


def test_a_ref_of_a_host_machine_that_is_no_ray_node_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = tensors.encode_tensor(torch.ones(16))
    on_node(monkeypatch, NODE_B)
    monkeypatch.setenv("PYISOLATE_RAY_HOST_NODE", "")
    with pytest.raises(tensors.TensorCrossingError, match=r'A float32 tensor of shape \[16\] \(segment pyisolate-[\w-]+\) was written on the host\'s machine, which is not a node of the Ray cluster, so pack "TestPack" on Ray node bbbbbbbbbbbb cannot reach it'):
        tensors.decode_tensor(ref)


def test_a_ref_of_another_node_is_fetched_by_node_identity_not_by_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # The segment exists in this machine's /dev/shm, but the ref says it lives on node A: a
    # reader on node B asks its actor, here one whose socket is gone, and says so.
    on_node(monkeypatch, NODE_A, "pyisolate-x-3")
    ref = tensors.encode_tensor(torch.arange(64, dtype=torch.float32))
    assert os.path.exists(tensors.segment_path(ref["segment"]))
    on_node(monkeypatch, NODE_B, "pyisolate-x-4", relay="@pyisolate-relay-test-nobody-listens")
    with pytest.raises(tensors.TensorCrossingError, match=r'A float32 tensor of shape \[64\] lives on Ray node aaaaaaaaaaaa; pack "TestPack" on Ray node bbbbbbbbbbbb could not ask its Ray actor to fetch it \(ConnectionRefusedError'):
        tensors.decode_tensor(ref)
    content = tensors.encode_ndarray(np.arange(5, dtype=np.int16))
    content[1]["ray"] = {"node": NODE_A, "actor": "pyisolate-x-3"}
    with pytest.raises(tensors.TensorCrossingError, match=r"A numpy array \(int16, shape \[5\]\) lives on Ray node aaaaaaaaaaaa"):
        tensors.decode_ndarray(content)


def test_the_host_machine_without_a_ray_node_maps_its_own_and_refuses_the_cluster_s(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ray Client: the shared process has PYISOLATE_RAY_NODE=- and no relay.
    monkeypatch.setenv("PYISOLATE_RAY_NODE", "-")
    monkeypatch.setenv("PYISOLATE_RAY_HOST_NODE", "")
    monkeypatch.setenv("PYISOLATE_PACK", "shared")
    ref = tensors.encode_tensor(torch.arange(4, dtype=torch.float32))
    assert "ray" not in ref
    assert torch.equal(tensors.decode_tensor(ref), torch.arange(4, dtype=torch.float32))
    ref["ray"] = {"node": NODE_A, "actor": "pyisolate-x-9"}
    with pytest.raises(tensors.TensorCrossingError, match=r'lives on Ray node aaaaaaaaaaaa, and pack "shared" on the host\'s machine \(not a Ray node\) has no Ray actor to fetch it'):
        tensors.decode_tensor(ref)
