"""The producer's pool of spare segments: a fresh output of a size written before lands in a
segment allocated ahead of time, holds the right bytes, and the pool stays within its budget
and leaves nothing behind when released."""

from __future__ import annotations

import ctypes
import os
import time

import pytest

from pyisolate_runtime.values import segments


@pytest.fixture()
def pool(tmp_path, monkeypatch):
    monkeypatch.setenv("PYISOLATE_SHM_DIR", str(tmp_path))
    monkeypatch.setenv("PYISOLATE_HOST_ID", "4242")
    monkeypatch.setenv("PYISOLATE_SEGMENT_POOL_BYTES", str(1 << 20))
    p = segments._Pool()
    monkeypatch.setattr(segments, "_pool", p)
    yield p
    p.release()


def _spares(p):
    with p.lock:
        return {n: [os.path.basename(path) for path, _ in g] for n, g in p.spares.items() if g}


def _wait(cond, what):
    end = time.monotonic() + 5
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.01)


def _read(name: str) -> bytes:
    with open(segments.segment_path(name), "rb") as f:
        return f.read()


def _write(data: bytes) -> str:
    buf = ctypes.create_string_buffer(data, len(data))
    return segments.write_segment(ctypes.addressof(buf), len(data), "a test buffer")


def test_a_size_written_before_goes_into_a_spare(pool, tmp_path):
    first = _write(b"a" * 4096)
    _wait(lambda: len(_spares(pool).get(4096, [])) == 2, "two spares of 4096 bytes")
    assert segments.list_segments("4242") == [first]  # spares are not segments until taken
    spare = _spares(pool)[4096][-1]
    assert spare.startswith(".spare-")
    second = _write(b"b" * 4096)
    assert spare not in os.listdir(segments.host_dir())  # the spare, renamed and written
    assert len(_spares(pool).get(4096, [])) >= 1
    assert _read(first) == b"a" * 4096
    assert _read(second) == b"b" * 4096
    assert second.startswith("pyisolate-4242-")


def test_the_pool_keeps_to_its_budget(pool, tmp_path):
    _write(b"x" * (400 << 10))
    _wait(lambda: not pool.pending, "the pool to fill")
    assert len(_spares(pool).get(400 << 10, [])) == 2
    _write(b"w" * (300 << 10))  # a spare of it would pass the 1 MiB budget
    _wait(lambda: not pool.pending, "the pool to settle")
    assert (300 << 10) not in _spares(pool)
    assert pool.held == 800 << 10 <= pool.budget
    _write(b"y" * (600 << 10))  # more than half the budget: never pooled
    _wait(lambda: not pool.pending, "the pool to settle")
    assert (600 << 10) not in _spares(pool)


def test_release_unlinks_every_spare(pool, tmp_path):
    kept = _write(b"z" * 8192)
    _wait(lambda: len(_spares(pool).get(8192, [])) == 2, "two spares")
    pool.release()
    assert segments.list_segments("4242") == [kept]  # what was sent stays: the host owns it
    assert os.listdir(segments.host_dir()) == [kept]  # and no spare is left


def test_a_budget_of_zero_turns_the_pool_off(tmp_path, monkeypatch):
    monkeypatch.setenv("PYISOLATE_SHM_DIR", str(tmp_path))
    monkeypatch.setenv("PYISOLATE_HOST_ID", "4243")
    monkeypatch.setenv("PYISOLATE_SEGMENT_POOL_BYTES", "0")
    p = segments._Pool()
    monkeypatch.setattr(segments, "_pool", p)
    _write(b"q" * 4096)
    _write(b"q" * 4096)
    assert p.jobs is None and len(segments.list_segments("4243")) == 2


def test_a_forked_child_starts_with_a_pool_of_its_own(pool):
    """A template's fork (or any fork) neither uses nor unlinks its parent's spares, and its
    own writes are pooled again (the filler thread did not survive the fork)."""
    _write(b"p" * 4096)
    _wait(lambda: len(_spares(pool).get(4096, [])) == 2, "two spares in the parent")
    parents = set(_spares(pool)[4096])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it sees, then exit without running atexit
        code = 1
        try:
            empty = not _spares(pool) and pool.pid == os.getpid()
            _write(b"c" * 4096)
            _wait(lambda: len(_spares(pool).get(4096, [])) == 2, "two spares in the child")
            mine = set(_spares(pool).get(4096, []))
            took = _write(b"d" * 4096)
            own = not mine & parents
            os.write(w, b"ok" if empty and own and _read(took) == b"d" * 4096 else b"bad")
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    got = os.read(r, 16)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert got == b"ok"
    assert set(_spares(pool)[4096]) == parents  # the parent's spares are untouched
    for name in parents:
        assert os.path.exists(os.path.join(segments.host_dir(), name))
