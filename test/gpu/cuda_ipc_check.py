"""CUDA tensors across processes: a producer process sends CUDA tensors (tag 41501 with a
CUDA IPC handle) to a consumer process through the runtime's codec; the consumer checks the
values, dtypes, shapes and strides, and that no shared-memory segment was written.

Run by cuda_ipc_check.sh; prints PASS/FAIL lines and exits 1 on any failure.
"""
from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.normpath(os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, PYDIR)

PRODUCER = r"""
import os, sys
sys.path.insert(0, os.environ["PYDIR"])
import torch
from pyisolate_runtime import cbor, tensors
tensors.setup()
dev = torch.device("cuda:0")
base = torch.arange(4 * 6 * 8, dtype=torch.float32, device=dev).reshape(4, 6, 8)
values = {
    "image": (base / 100).reshape(1, 4, 6, 8).contiguous(),
    "transposed": base[0].t(),
    "bf16": base.to(torch.bfloat16),
    "int64": torch.arange(10, dtype=torch.int64, device=dev) * (2**40),
    "bool": base[0] > 20,
    "offset_view": base[1:3],
    "shared": torch.zeros(16, device=dev),
}
torch.cuda.synchronize()
before = set(tensors.list_segments(tensors.host_pid()))
payload = cbor.dumps(values)
after = set(tensors.list_segments(tensors.host_pid()))
sys.stdout.buffer.write(len(payload).to_bytes(8, "big") + payload)
sys.stdout.flush()
# Keep the tensors alive until the consumer is done, then see what it wrote.
line = sys.stdin.readline()
torch.cuda.synchronize()
print("PRODUCER new_segments=%d shared_after_consumer_write=%s" % (len(after - before), values["shared"].sum().item()), file=sys.stderr, flush=True)
"""

CONSUMER = r"""
import os, sys
sys.path.insert(0, os.environ["PYDIR"])
import torch
from pyisolate_runtime import cbor, tensors
tensors.setup()
n = int.from_bytes(sys.stdin.buffer.read(8), "big")
values = cbor.loads(sys.stdin.buffer.read(n))
dev = torch.device("cuda:0")
base = torch.arange(4 * 6 * 8, dtype=torch.float32, device=dev).reshape(4, 6, 8)
expect = {
    "image": (base / 100).reshape(1, 4, 6, 8),
    "transposed": base[0].t(),
    "bf16": base.to(torch.bfloat16),
    "int64": torch.arange(10, dtype=torch.int64, device=dev) * (2**40),
    "bool": base[0] > 20,
    "offset_view": base[1:3],
    "shared": torch.zeros(16, device=dev),
}
ok = True
for k, e in expect.items():
    v = values[k]
    good = (v.is_cuda and v.dtype == e.dtype and tuple(v.shape) == tuple(e.shape)
            and tuple(v.stride()) == tuple(e.stride()) and bool(torch.equal(v, e)))
    ok &= good
    print("%s %s device=%s dtype=%s shape=%s stride=%s" % ("PASS" if good else "FAIL", k, v.device, v.dtype, list(v.shape), list(v.stride())), flush=True)
values["shared"].add_(1)   # CUDA memory is shared, not copy-on-write: the producer sees this
torch.cuda.synchronize()
print("CONSUMER done", flush=True)
sys.exit(0 if ok else 1)
"""


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("SKIP no CUDA device visible to torch %s" % torch.__version__)
        return 0
    env = dict(os.environ, PYDIR=PYDIR, PYISOLATE_HOST_PID=str(os.getpid()))
    prod = subprocess.Popen([sys.executable, "-c", PRODUCER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    head = prod.stdout.read(8)
    if len(head) != 8:
        print("FAIL producer: " + prod.stderr.read().decode())
        return 1
    payload = prod.stdout.read(int.from_bytes(head, "big"))
    cons = subprocess.run([sys.executable, "-c", CONSUMER], input=head + payload, capture_output=True, env=env, timeout=300)
    sys.stdout.write(cons.stdout.decode())
    if cons.returncode != 0:
        sys.stdout.write(cons.stderr.decode())
    prod.stdin.write(b"done\n")
    prod.stdin.flush()
    _, perr = prod.communicate(timeout=120)
    report = perr.decode()
    ok = cons.returncode == 0 and prod.returncode == 0
    segs_ok = "new_segments=0" in report
    shared_ok = "shared_after_consumer_write=16.0" in report
    print("%s no shared-memory segment written for CUDA tensors" % ("PASS" if segs_ok else "FAIL"))
    print("%s the consumer's in-place write reached the producer's tensor (shared CUDA memory)" % ("PASS" if shared_ok else "FAIL"))
    if not (segs_ok and shared_ok):
        sys.stdout.write(report)
    ok = ok and segs_ok and shared_ok
    print("PASS cuda_ipc_check" if ok else "FAIL cuda_ipc_check")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
