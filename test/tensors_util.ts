/**
 * Helpers of the tensor suites: run Python snippets with the runtime's tensor module, as a
 * producer or consumer process would.
 */
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT: string = join(fileURLToPath(new URL(".", import.meta.url)), "..");
export const PYTHON: string = process.env.PYISOLATE_PYTHON ?? join(ROOT, ".venv", "bin", "python");

const PRELUDE = `
import os, sys
from pyisolate_runtime import cbor, tensors
tensors.setup()
import torch, numpy as np
`;

function env(hostPid: number | string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    PYTHONPATH: join(ROOT, "python"),
    PYISOLATE_HOST_PID: String(hostPid),
    ...extra,
  };
}

/**
 * Runs `code` in a new Python process; `value` is the CBOR-decoded stdin (when given), and
 * what the code assigns to `result` comes back as CBOR bytes.
 */
export function runPython(code: string, opts: { input?: Uint8Array; hostPid?: number; hostId?: string; env?: Record<string, string> } = {}): Uint8Array {
  const script = `${PRELUDE}
data = sys.stdin.buffer.read()
value = cbor.loads(data) if data else None
result = None
${code}
sys.stdout.buffer.write(cbor.dumps(result))
`;
  const r = spawnSync(PYTHON, ["-c", script], {
    input: opts.input ?? new Uint8Array(0),
    env: env(opts.hostPid ?? process.pid, { ...(opts.hostId ? { PYISOLATE_HOST_ID: opts.hostId } : {}), ...opts.env }),
    maxBuffer: 1 << 28,
  });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr.toString()}`);
  return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength);
}

/**
 * Starts a Python process that acts as a host of its own pid: it listens on its liveness
 * socket (as a host does), writes `count` tensors into segments, prints their names, and waits
 * to be killed. Resolves with the process and names.
 */
export function startSegmentWriter(count: number): Promise<{ pid: number; names: string[]; kill(): Promise<void> }> {
  const code = `${PRELUDE}
import socket
os.makedirs(tensors.host_dir(), exist_ok=True)
alive = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
alive.bind(os.path.join(tensors.host_dir(), tensors.ALIVE_SOCKET))
alive.listen(4)
names = [tensors.encode_tensor(torch.full((256,), float(i)))["segment"] for i in range(${count})]
print(" ".join(names), flush=True)
import time
time.sleep(600)
`;
  const child = spawn(PYTHON, ["-c", code], { env: env("") as Record<string, string>, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((res) => child.once("exit", () => res()));
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("\n")) {
        resolve({
          pid: child.pid!,
          names: out.trim().split(" "),
          kill: async () => {
            child.kill("SIGKILL");
            await exited;
          },
        });
      }
    });
    child.once("exit", (code) => reject(new Error(`segment writer exited (${code}): ${err}`)));
  });
}
