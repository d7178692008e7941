"""Protocol fuzzing of the runtime's decoders: random bytes, mutated real messages and random
values through the CBOR decoder, the frame reader and a whole connection endpoint. Nothing may
raise but ``CBORDecodeError`` / ``FrameError``; an endpoint ends a broken connection with a
protocol error (``on_close`` with code 2), never by crashing a thread; and a real runtime
process given garbage closes its connection and exits by itself.

Bounded in CI; run longer with
``PYISOLATE_FUZZ_ITERATIONS=200000 .venv/bin/python -m pytest python/tests/test_fuzz.py``
(``PYISOLATE_FUZZ_SEED`` picks the seed; a failure names the seed and the input).
"""

from __future__ import annotations

import os
import random
import socket
import struct
import threading

import pytest

from pyisolate_runtime.cbor import CBORDecodeError, dumps, loads
from pyisolate_runtime.protocol.frames import FrameError, FrameReader
from pyisolate_runtime.rpc.endpoint import Endpoint

ITERATIONS = int(os.environ.get("PYISOLATE_FUZZ_ITERATIONS", "3000"))
SEED = int(os.environ.get("PYISOLATE_FUZZ_SEED", "20240601"))

SEEDS = [
    dumps({"t": "call", "id": 1, "s": "$rt", "m": "echo", "a": [{"x": [1, 2.5, "s", b"b", (1, 2)]}]}),
    dumps({"t": "ok", "id": 4, "v": {"result": [[1]], "ui": None}}),
    dumps({"t": "event", "s": "ModelManagement", "m": "interrupt", "a": [True]}),
    dumps({"t": "cancel", "id": 9}),
    dumps({"t": "call", "id": 2, "s": "$rt", "m": "echo", "a": [{(1, 2): b"k", "deep": [[[[]]]]}]}),
]


def _value(r: random.Random, depth: int = 0):
    k = r.randrange(6 if depth > 4 else 10)
    if k == 0:
        return r.randrange(-(2**70), 2**70)
    if k == 1:
        return r.random() * 1e9
    if k == 2:
        return "".join(chr(r.randrange(0x20, 0xD7FF)) for _ in range(r.randrange(20)))
    if k == 3:
        return None
    if k == 4:
        return bytes(r.randrange(256) for _ in range(r.randrange(20)))
    if k == 5:
        return r.random() < 0.5
    if k == 6:
        return [_value(r, depth + 1) for _ in range(r.randrange(5))]
    if k == 7:
        return tuple(_value(r, depth + 1) for _ in range(r.randrange(4)))
    if k == 8:
        return {f"k{i}": _value(r, depth + 1) for i in range(r.randrange(5))}
    return {(1, r.randrange(9)): _value(r, depth + 1)}


def _mutate(r: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(1 + r.randrange(4)):
        at = r.randrange(len(b) + 1)
        op = r.randrange(4)
        if op == 0 and b:
            b[at % len(b)] = r.randrange(256)
        elif op == 1:
            b[at:at] = bytes([r.randrange(256)])
        elif op == 2:
            del b[at : at + 1 + r.randrange(4)]
        else:
            del b[at:]
    return bytes(b)


def _inputs(r: random.Random, n: int):
    for i in range(n):
        kind = i % 3
        if kind == 0:
            yield bytes(r.randrange(256) for _ in range(r.randrange(64)))
        elif kind == 1:
            yield _mutate(r, r.choice(SEEDS))
        else:
            yield _mutate(r, dumps(_value(r)))


def test_the_cbor_decoder_raises_only_cbor_decode_error():
    r = random.Random(SEED)
    for data in _inputs(r, ITERATIONS):
        try:
            loads(data, registered=False)
        except CBORDecodeError:
            pass
        except Exception as e:  # pragma: no cover - the assertion says what broke
            raise AssertionError(f"loads raised {type(e).__name__}: {e} for {data.hex()} (seed {SEED})") from e


def test_what_the_runtime_encodes_always_decodes_back():
    r = random.Random(SEED + 1)
    for _ in range(ITERATIONS // 3):
        v = _value(r)
        assert loads(dumps(v)) == v


def test_the_frame_reader_takes_any_stream():
    r = random.Random(SEED + 2)
    for _ in range(max(ITERATIONS // 30, 20)):
        a, b = socket.socketpair()
        try:
            stream = bytes(0 if r.random() < 0.3 else r.randrange(256) for _ in range(r.randrange(2048)))
            b.sendall(stream)
            b.close()
            reader = FrameReader(a)
            try:
                while reader.read() is not None:
                    pass
            except FrameError:
                pass
        finally:
            a.close()


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def test_an_endpoint_ends_a_broken_connection_with_a_protocol_error_and_never_crashes():
    r = random.Random(SEED + 3)
    crashes: list[str] = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: crashes.append(f"{args.exc_type.__name__}: {args.exc_value}")
    codes: list[int] = []
    try:
        for data in _inputs(r, max(ITERATIONS // 10, 50)):
            a, b = socket.socketpair()
            closed = threading.Event()
            ep = Endpoint(a, "fuzz", on_close=lambda reason, code: (codes.append(code), closed.set()))
            ep.start()
            try:
                b.sendall(_frame(data))
                b.shutdown(socket.SHUT_WR)  # end of stream after the frame
                assert closed.wait(10), f"the endpoint never closed for {data.hex()} (seed {SEED})"
            finally:
                ep.shutdown_executor()
                a.close()
                b.close()
    finally:
        threading.excepthook = old_hook
    assert crashes == []
    assert set(codes) <= {0, 2}  # end of stream, or a protocol error of that connection
    assert 2 in codes and 0 in codes


def test_a_runtime_process_given_garbage_closes_its_connection_and_exits_by_itself(make_host, write_pack):
    pack = write_pack("Garbage", {"__init__.py": "NODE_CLASS_MAPPINGS = {}\n"})
    h = make_host("Garbage", packs=[{"name": "Garbage", "path": pack}])
    h.start()
    assert h.call("$rt", "ping") == "pong"
    h.send_raw(_frame(b"\xff\xfe\xfd not cbor"))
    code = h.wait_exit()
    assert code == 2
    assert "closing the connection: a frame from the host is not valid CBOR" in h.stderr_text()
    assert "Traceback" not in h.stderr_text()


@pytest.mark.parametrize("payload", [b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff", b"\x5b\x00\x00\x00\x10\x00\x00\x00\x00", b"\x81" * 5000 + b"\x00"])
def test_huge_claims_and_deep_nesting_are_decode_errors(payload):
    with pytest.raises(CBORDecodeError):
        loads(payload)
