/**
 * The per-runtime side of `bench/runtimes.ts`: measures, under whichever runtime runs it, the
 * RPC latency (`bench/rpc_latency.ts`, worker broker), tensor passing (`bench/tensor_pass.ts`,
 * 1 MB and the 12 MB IMAGE) and TypeScript's view of a 12 MB IMAGE's bytes (`viewTensor`),
 * then prints one line `PYISOLATE_BENCH_RESULT <json>` on stdout.
 *
 *   node --import ./workers/ts_register.mjs bench/runtimes_entry.ts [calls] [iterations]
 *   deno run -A bench/runtimes_entry.ts [calls] [iterations]
 *   bun bench/runtimes_entry.ts [calls] [iterations]
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { HostCore } from "../src/process/host_core.ts";
import { getRuntime } from "../src/runtime/detect.ts";
import { SegmentRegistry } from "../src/values/segments.ts";
import { TensorRef } from "../src/values/tensors.ts";
import { viewTensor } from "../src/values/view.ts";
import { run as rpcLatency } from "./rpc_latency.ts";
import { run as tensorPass } from "./tensor_pass.ts";

/** What one runtime measured. */
export interface RuntimeMeasurement {
  runtime: string;
  version: string;
  cpus: number;
  rpc: { calls: number; p50_ms: number; p90_ms: number; p99_ms: number; mean_ms: number; calls_per_s: number };
  tensors: { label: string; bytes: number; passP50Ms: number; passP90Ms: number; tensorCostP50Ms: number; iterations: number }[];
  view: { bytes: number; zeroCopy: boolean; p50_us: number; p99_us: number; iterations: number };
}

const IMAGE_SIDE = 1024;

const VIEW_PACK = String.raw`
import torch
from pyisolate_runtime import rpc


class BenchImage:
    def image(self, side):
        return torch.rand(1, side, side, 3)


rpc.serve("BenchImage", BenchImage())
`;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** TS maps a 12 MB IMAGE an isolated process made, reads a value at each end, and unmaps. */
async function measureView(python: string, iterations: number): Promise<RuntimeMeasurement["view"]> {
  const dir = mkdtempSync(join(tmpdir(), "pyisolate-bench-view-"));
  mkdirSync(join(dir, "BenchImage"));
  writeFileSync(join(dir, "BenchImage", "__init__.py"), VIEW_PACK);
  const segments = new SegmentRegistry();
  const host = new HostCore({ hostPython: python, packs: [{ name: "BenchImage", path: join(dir, "BenchImage"), kind: "isolated" }] });
  try {
    const ref = (await host.processFor("BenchImage").call("BenchImage", "image", [IMAGE_SIDE])) as TensorRef;
    segments.retain(ref);
    const times: number[] = [];
    let zeroCopy = true;
    let sum = 0;
    for (let i = 0; i < iterations + 10; i++) {
      const t0 = performance.now();
      const v = await viewTensor(ref);
      const data = v.data as Float32Array;
      sum += data[0]! + data[data.length - 1]!;
      v.unmap();
      const dt = performance.now() - t0;
      zeroCopy &&= v.zeroCopy;
      if (i >= 10) times.push(dt * 1000);
    }
    if (!(sum > 0)) throw new Error("the viewed image reads as zeros");
    return { bytes: ref.nbytes, zeroCopy, p50_us: quantile(times, 0.5), p99_us: quantile(times, 0.99), iterations };
  } finally {
    await host.close();
    segments.releaseAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Measures everything under the running runtime. */
async function measure(calls = 5_000, iterations = 100): Promise<RuntimeMeasurement> {
  const rt = await getRuntime();
  const python = process.env.PYISOLATE_PYTHON ?? join(fileURLToPath(new URL("..", import.meta.url)), ".venv", "bin", "python");
  const scratch = mkdtempSync(join(tmpdir(), "pyisolate-bench-rt-"));
  try {
    const [rpc] = await rpcLatency({ calls, warmup: Math.min(1_000, calls), python, brokers: ["worker"], raw: false, print: false, out: join(scratch, "rpc.json") });
    const tensors = await tensorPass({ sizes: [1 << 20, IMAGE_SIDE * IMAGE_SIDE * 3 * 4], iterations, python, out: null, print: false });
    const view = await measureView(python, iterations);
    const versions = process.versions as Record<string, string | undefined>;
    return {
      runtime: rt.name,
      version: versions[rt.name] ?? process.version,
      cpus: cpus().length,
      rpc: { calls: rpc!.calls, p50_ms: rpc!.p50_ms, p90_ms: rpc!.p90_ms, p99_ms: rpc!.p99_ms, mean_ms: rpc!.mean_ms, calls_per_s: rpc!.calls_per_s },
      tensors: tensors.map((r) => ({ label: r.label, bytes: r.bytes, passP50Ms: r.passP50Ms, passP90Ms: r.passP90Ms, tensorCostP50Ms: r.tensorCostP50Ms, iterations: r.iterations })),
      view,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2).map(Number).filter((n) => Number.isFinite(n) && n > 0);
const result = await measure(args[0], args[1]);
process.stdout.write(`PYISOLATE_BENCH_RESULT ${JSON.stringify(result)}\n`);
// Deno keeps running while a worker lives; every host is closed, so this only makes the end prompt.
process.exit(0);
