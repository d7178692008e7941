"""Tensors across real processes: a segment written here is mapped by another Python process.

Every test runs with ``PYISOLATE_HOST_PID`` set to this process, and checks afterwards that it
left no segment of that pid in /dev/shm (the host's job in production; here the test plays it).
"""

from __future__ import annotations

import os
import shutil
import socket
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

from pyisolate_runtime import cbor, tensors  # noqa: E402


@pytest.fixture(autouse=True)
def host_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYISOLATE_HOST_PID", str(os.getpid()))
    monkeypatch.delenv("PYISOLATE_SHM_DIR", raising=False)
    tensors.setup()
    before = set(tensors.list_segments(os.getpid()))
    yield
    left = set(tensors.list_segments(os.getpid())) - before
    for name in left:
        tensors.unlink_segment(name)
    # Segments are the host's to remove; the test removed them above, as the host would.


def run_child(code: str, payload: bytes, *, env: dict[str, str] | None = None) -> bytes:
    """Runs `code` in a new Python process with `payload` (CBOR) decoded as `value`; what the
    code assigns to `result` comes back CBOR-encoded."""
    script = textwrap.dedent(
        """
        import os, sys
        sys.path.insert(0, {pydir!r})
        from pyisolate_runtime import cbor, tensors
        tensors.setup()
        value = cbor.loads(sys.stdin.buffer.read())
        result = None
        """
    ).format(pydir=str(PYTHON_DIR)) + textwrap.dedent(code) + "\nsys.stdout.buffer.write(cbor.dumps(result))\n"
    child_env = dict(os.environ)
    child_env.update(env or {})
    proc = subprocess.run([sys.executable, "-c", script], input=payload, capture_output=True, env=child_env, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def same_bits(a, b) -> bool:
    if a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
        return False
    if a.numel() == 0:
        return True
    return bool(torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8)))


DTYPES = [
    torch.float32, torch.float64, torch.float16, torch.bfloat16,
    torch.int8, torch.int16, torch.int32, torch.int64,
    torch.uint8, torch.uint16, torch.uint32, torch.uint64,
    torch.bool, torch.complex64, torch.complex128, torch.float8_e4m3fn, torch.float8_e5m2,
]


def sample(dtype, shape=(2, 3, 5)):
    g = torch.Generator().manual_seed(7)
    raw = torch.randint(0, 256, (int(np.prod(shape)) * torch.empty((), dtype=dtype).element_size(),), dtype=torch.uint8, generator=g)
    t = raw.view(dtype).reshape(shape).clone()
    if dtype == torch.bool:
        t = raw[: t.numel()].reshape(shape) % 2 == 1
    return t


def test_every_dtype_crosses_bit_exact():
    values = [sample(dt) for dt in DTYPES]
    out = run_child(
        """
        result = []
        for t in value:
            result.append([str(t.dtype), list(t.shape), list(t.stride()), t.clone()])
        """,
        cbor.dumps(values),
    )
    back = cbor.loads(out)
    assert len(back) == len(DTYPES)
    for original, (dtype, shape, stride, copy) in zip(values, back):
        assert dtype == str(original.dtype)
        assert shape == list(original.shape)
        assert stride == list(original.stride())
        assert same_bits(copy, original), dtype


def test_strides_and_views_stay_intact():
    base = torch.arange(2 * 4 * 6 * 3, dtype=torch.float32).reshape(2, 4, 6, 3)
    cases = {
        "transposed": torch.arange(24.0).reshape(4, 6).t(),
        "channels_last": base.permute(0, 3, 1, 2),
        "stepped": base[:, ::2, :, :],
        "offset": base[1],
        "expanded": torch.arange(3.0).reshape(1, 3).expand(4, 3),
        "scalar": torch.tensor(3.5),
    }
    out = run_child(
        """
        result = {k: [list(t.stride()), t.clone(), t.is_contiguous()] for k, t in value.items()}
        """,
        cbor.dumps(cases),
    )
    back = cbor.loads(out)
    for name, t in cases.items():
        stride, copy, _ = back[name]
        assert stride == list(t.stride()), name
        assert torch.equal(copy, t), name


def test_sparse_view_of_a_large_tensor_is_sent_compactly():
    big = torch.arange(1000 * 100, dtype=torch.float64).reshape(1000, 100)
    col = big[:, 7]  # spans ~100x the bytes it uses
    ref = tensors.encode_tensor(col)
    assert ref["nbytes"] == 1000 * 8
    assert ref["strides"] == [1]
    assert torch.equal(tensors.decode_tensor(ref), col)


def test_non_contiguous_values_are_exact_in_another_process():
    t = torch.randn(5, 7, generator=torch.Generator().manual_seed(1)).t()[1:, ::2]
    out = run_child("result = [value.is_contiguous(), value.contiguous()]", cbor.dumps(t))
    contiguous, copy = cbor.loads(out)
    assert contiguous is False
    assert torch.equal(copy, t)


def test_zero_size_tensors_need_no_segment():
    before = set(tensors.list_segments(os.getpid()))
    values = [torch.empty(0, 3), torch.empty(2, 0, 4, dtype=torch.int64), torch.empty(0, dtype=torch.bfloat16)]
    payload = cbor.dumps(values)
    assert set(tensors.list_segments(os.getpid())) == before
    back = cbor.loads(run_child("result = [[list(t.shape), str(t.dtype)] for t in value]", payload))
    assert back == [[[0, 3], "torch.float32"], [[2, 0, 4], "torch.int64"], [[0], "torch.bfloat16"]]


def test_numpy_arrays_cross_to_a_process_without_torch():
    rec = np.zeros(4, dtype=[("a", "<i4"), ("b", "<f8")])
    rec["b"] = [1.5, 2.5, 3.5, 4.5]
    arrays = {
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
        "reversed": np.arange(10.0)[::-1],
        "bool": np.array([True, False, True]),
        "u64": np.array([2**64 - 1, 0], dtype=np.uint64),
        "c128": np.array([1 + 2j, -3j]),
        "field": rec["b"],  # strides not a multiple of the item size
        "empty": np.zeros((0, 5), dtype=np.float16),
    }
    out = run_child(
        """
        assert "torch" not in sys.modules
        result = {k: [a.dtype.str, list(a.shape), a.tobytes()] for k, a in value.items()}
        assert "torch" not in sys.modules
        """,
        cbor.dumps(arrays),
    )
    back = cbor.loads(out)
    for name, a in arrays.items():
        dtype, shape, raw = back[name]
        assert dtype == a.dtype.str, name
        assert shape == list(a.shape), name
        assert raw == a.tobytes(), name


def test_consumer_writing_into_its_input_leaves_the_producer_unchanged():
    t = torch.arange(4096 * 3, dtype=torch.float32)
    ref = tensors.encode_tensor(t)
    payload = cbor.dumps(t)
    out = run_child(
        """
        value.add_(100)   # in place: only this process's pages change
        result = [float(value[0]), float(value[-1])]
        """,
        payload,
    )
    assert cbor.loads(out) == [100.0, 4096 * 3 - 1 + 100.0]
    # The segment still holds the producer's values, for this process and any later reader.
    with open(tensors.segment_path(ref["segment"]), "rb") as f:
        again = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    assert torch.equal(again, t)
    assert cbor.loads(run_child("result = value.clone()", payload)).equal(t)


def test_mapped_tensor_is_backed_by_the_segment_not_a_copy():
    t = torch.rand(1, 64, 64, 3)
    payload = cbor.dumps(t)
    segment = re.search(rb"pyisolate-\d+-[0-9a-f]{16}", payload).group().decode()
    out = run_child(
        """
        import re
        ptr = value.data_ptr()
        inside = []
        for line in open("/proc/self/maps"):
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= ptr < hi:
                inside.append(parts[-1])
        result = inside
        """,
        payload,
    )
    assert cbor.loads(out) == [tensors.segment_path(segment)]
    assert tensors.list_segments(os.getpid()).count(segment) == 1


def test_unchanged_tensor_is_resent_as_the_same_segment():
    t = torch.rand(3, 32, 32)
    payload = cbor.dumps(t)
    first = tensors.list_segments(os.getpid())
    out = run_child(
        """
        same = tensors.encode_tensor(value)
        view = tensors.encode_tensor(value[1])
        read = float(value.sum())             # reading changes nothing
        after_read = tensors.encode_tensor(value)
        value.numpy()[0, 0, 0] = 42.0          # written behind torch's back: pages tell
        aliased = tensors.encode_tensor(value)
        value.mul_(2)                          # written in place: version tells
        changed = tensors.encode_tensor(value)
        result = [same, view, after_read, aliased, changed]
        """,
        payload,
    )
    same, view, after_read, aliased, changed = cbor.loads(out)
    seg = first[-1] if len(first) == 1 else None
    assert seg is not None
    assert same["segment"] == seg and same["offset"] == 0
    assert view["segment"] == seg and view["offset"] == 32 * 32 * 4 and view["nbytes"] == 32 * 32 * 4
    assert after_read["segment"] == seg
    assert aliased["segment"] != seg
    assert changed["segment"] not in (seg, aliased["segment"])


def test_resent_numpy_array_reuses_its_segment():
    a = np.arange(4096, dtype=np.float64)
    payload = cbor.dumps(a)
    seg = tensors.list_segments(os.getpid())[-1]
    out = run_child(
        """
        same = tensors.encode_ndarray(value)[1]["segment"]
        value[0] = -1
        changed = tensors.encode_ndarray(value)[1]["segment"]
        result = [same, changed]
        """,
        payload,
    )
    same, changed = cbor.loads(out)
    assert same == seg
    assert changed != seg


def test_mapping_outlives_the_unlinked_segment():
    t = torch.arange(1000, dtype=torch.int32)
    payload = cbor.dumps(t)
    name = tensors.list_segments(os.getpid())[-1]
    back = cbor.loads(payload)
    assert tensors.unlink_segment(name)
    assert name not in tensors.list_segments(os.getpid())
    assert torch.equal(back, t)


def test_segment_names_carry_the_host_id_and_live_in_its_folder(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYISOLATE_HOST_ID", "h4242")
    ref = tensors.encode_tensor(torch.ones(4))
    try:
        assert re.fullmatch(r"pyisolate-h4242-[0-9a-f]{16}", ref["segment"])
        path = tensors.segment_path(ref["segment"])
        assert os.path.dirname(path) == os.path.join(tensors.shm_dir(), "pyisolate-h4242")
        st = os.stat(path)
        assert st.st_mode & 0o777 == 0o600
        assert st.st_size == 16
    finally:
        tensors.unlink_segment(ref["segment"])
        os.rmdir(tensors.host_dir("h4242"))


def _host_folder(hid: str, listening: bool) -> tuple[str, socket.socket | None]:
    folder = tensors.host_dir(hid)
    os.makedirs(folder, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(os.path.join(folder, tensors.ALIVE_SOCKET))
    if listening:
        sock.listen(1)
        return folder, sock
    sock.close()  # the socket file stays, nobody listens: its host is gone
    return folder, None


def test_sweep_removes_folders_of_provably_gone_hosts_only():
    gone, _ = _host_folder("gone1", listening=False)
    live, server = _host_folder("live1", listening=True)
    unknown = tensors.host_dir("nosock1")
    os.makedirs(unknown, exist_ok=True)
    try:
        for folder, hid in ((gone, "gone1"), (live, "live1"), (unknown, "nosock1")):
            Path(folder, f"pyisolate-{hid}-00000000deadbeef").write_bytes(b"x")
        removed = tensors.sweep_dead_hosts()
        assert "pyisolate-gone1-00000000deadbeef" in removed
        assert not os.path.exists(gone)
        assert os.path.exists(tensors.segment_path("pyisolate-live1-00000000deadbeef"))
        # No liveness socket proves nothing: the folder stays.
        assert os.path.exists(tensors.segment_path("pyisolate-nosock1-00000000deadbeef"))
    finally:
        assert server is not None
        server.close()
        shutil.rmtree(live, ignore_errors=True)
        shutil.rmtree(unknown, ignore_errors=True)


def test_full_tmpfs_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    mnt = tmp_path / "small-shm"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here: " + r.stderr.decode().strip())
    try:
        monkeypatch.setenv("PYISOLATE_SHM_DIR", str(mnt))
        with pytest.raises(tensors.SharedMemoryFullError, match=r"Not enough shared memory in .*small-shm.*1\.0 MiB"):
            tensors.encode_tensor(torch.zeros(256, 1024))
        assert os.listdir(tensors.host_dir()) == []  # the failed segment is gone
        small = tensors.encode_tensor(torch.zeros(16))
        assert os.listdir(tensors.host_dir()) == [small["segment"]]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_tensors_without_a_cross_process_form_are_refused():
    with pytest.raises(tensors.TensorCrossingError, match="to_dense"):
        tensors.encode_tensor(torch.eye(3).to_sparse())
    with pytest.raises(tensors.TensorCrossingError, match="meta"):
        tensors.encode_tensor(torch.empty(3, device="meta"))
    with pytest.raises(tensors.TensorCrossingError, match="Python objects"):
        tensors.encode_ndarray(np.array([object()]))


def test_conjugated_and_grad_tensors_cross_by_value():
    c = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64).conj()
    g = torch.ones(3, requires_grad=True) * 2
    back = cbor.loads(run_child("result = [value[0].clone(), value[1].clone()]", cbor.dumps([c, g])))
    assert torch.equal(back[0], c.resolve_conj())
    assert torch.equal(back[1], g.detach())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensor_crosses_as_an_ipc_handle():
    t = torch.arange(1024, dtype=torch.float32, device="cuda").reshape(32, 32)
    payload = cbor.dumps(t)
    assert tensors.list_segments(os.getpid()) == []
    out = run_child("result = [str(value.device), value.cpu()]", payload)
    device, values = cbor.loads(out)
    assert device.startswith("cuda")
    assert torch.equal(values, t.cpu())
