"""Micro benchmark of the Python side of a small call (not a test; run it directly).

1. encode + decode of a small ``call`` message and of its ``ok`` answer (µs per op);
2. a round trip through a real ``python -m pyisolate_runtime`` child: a bare blocking
   Python client sends ``$rt.echo`` and waits for the answer, one call at a time
   (p50 / p99 over N calls). The TypeScript host's own figure is ``bench/rpc_latency.ts``.

Usage: ``.venv/bin/python python/tests/bench_codec.py [N] [--json out.json]``
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PYTHON_DIR))

from pyisolate_runtime.cbor import dumps, loads  # noqa: E402
from pyisolate_runtime.protocol.frames import FrameReader, write_frame  # noqa: E402

CALL = {"t": "call", "id": 12345, "s": "$rt", "m": "echo", "a": [{"i": 7, "name": "node", "v": 0.5}]}
ANSWER = {"t": "ok", "id": 12345, "v": {"i": 7, "name": "node", "v": 0.5}}


def codec(number: int = 100_000) -> dict[str, float]:
    rows = {}
    for label, msg in (("call", CALL), ("ok", ANSWER)):
        data = dumps(msg)
        enc = min(timeit.repeat(lambda: dumps(msg), number=number, repeat=3)) / number * 1e6
        dec = min(timeit.repeat(lambda: loads(data), number=number, repeat=3)) / number * 1e6
        rows[f"{label} encode"] = enc
        rows[f"{label} decode"] = dec
        rows[f"{label} encode+decode"] = enc + dec
    return rows


def round_trip(n: int) -> dict[str, float]:
    d = tempfile.mkdtemp(prefix="pyi-bench-")
    path = os.path.join(d, "s")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    env = dict(
        os.environ,
        PYISOLATE_SOCKET=path,
        PYISOLATE_TOKEN="bench",
        PYISOLATE_PACK="bench",
        PYISOLATE_HOST_PID=str(os.getpid()),
        PYTHONPATH=str(PYTHON_DIR),
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen([sys.executable, "-m", "pyisolate_runtime"], env=env)
    try:
        conn, _ = listener.accept()
        reader = FrameReader(conn)
        reader.read()  # hello
        write_frame(conn, dumps({"t": "config", "config": {"pack": "bench", "kind": "isolated", "packs": [], "sys_path": []}}))
        assert loads(reader.read())["t"] == "ready"
        samples = []
        for i in range(n + 1000):
            t = time.perf_counter()
            write_frame(conn, dumps({"t": "call", "id": i + 1, "s": "$rt", "m": "echo", "a": [{"i": i, "name": "node", "v": 0.5}]}))
            answer = loads(reader.read())
            samples.append(time.perf_counter() - t)
            assert answer["id"] == i + 1
        samples = sorted(samples[1000:])
        write_frame(conn, dumps({"t": "bye"}))
        proc.wait(10)
        return {
            "p50 µs": samples[n // 2] * 1e6,
            "p90 µs": samples[int(n * 0.9)] * 1e6,
            "p99 µs": samples[int(n * 0.99)] * 1e6,
            "mean µs": sum(samples) / n * 1e6,
        }
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
        os.unlink(path)
        os.rmdir(d)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10_000
    c = codec()
    r = round_trip(n)
    print(f"CBOR codec, small messages (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    for k, v in c.items():
        print(f"  {k:<22} {v:7.2f} µs")
    print(f"Round trip, bare Python client → pyisolate_runtime $rt.echo → client ({n} calls)")
    for k, v in r.items():
        print(f"  {k:<22} {v:7.1f}")
    if "--json" in sys.argv:
        out = sys.argv[sys.argv.index("--json") + 1]
        Path(out).write_text(json.dumps({"codec_us": c, "round_trip_us": r, "calls": n}, indent=2) + "\n")


if __name__ == "__main__":
    main()
