/**
 * The Ray backend against the local backend, same run: the RPC round trip host → pack → host
 * (`$rt.echo`, one call at a time) and a process's start-up, for a local process and for a
 * Ray actor on a local cluster (`auto`). Prints a table and writes
 * `bench/results/ray_backend.json`. Needs a Python with Ray: `PYISOLATE_RAY_PYTHON`, else
 * `.ray-venv/bin/python`.
 * @module
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PythonProcess } from "../src/process/python_process.ts";
import { RayCluster } from "../src/process/ray.ts";
import { getRuntime } from "../src/runtime/detect.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

interface Row {
  variant: string;
  startMs: number;
  p50us: number;
  p90us: number;
  meanUs: number;
}

async function measure(variant: string, proc: PythonProcess, calls: number): Promise<Row> {
  const t0 = performance.now();
  await proc.start();
  const startMs = performance.now() - t0;
  for (let i = 0; i < 200; i++) await proc.call("$rt", "echo", [i]);
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    const v = await proc.call("$rt", "echo", [{ i, name: "x" }]);
    times.push(performance.now() - t);
    if ((v as { i: number }).i !== i) throw new Error(`echo returned ${JSON.stringify(v)} for ${i}`);
  }
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]! * 1000;
  return { variant, startMs, p50us: q(0.5), p90us: q(0.9), meanUs: (times.reduce((a, b) => a + b, 0) / times.length) * 1000 };
}

/** Runs the benchmark and returns its rows. */
export async function run(opts: { calls?: number; python?: string; rayPython?: string } = {}): Promise<Row[]> {
  const calls = opts.calls ?? 2_000;
  const python = opts.python ?? process.env.PYISOLATE_PYTHON ?? join(repoRoot, ".venv", "bin", "python");
  const rayPython = opts.rayPython ?? process.env.PYISOLATE_RAY_PYTHON ?? join(repoRoot, ".ray-venv", "bin", "python");
  const rows: Row[] = [];
  const alive = setInterval(() => {}, 1 << 30);
  const local = new PythonProcess({ name: "bench-local", kind: "isolated", python, defaultTimeoutMs: 0, healthCheck: false });
  try {
    rows.push(await measure("local backend (Unix socket, worker broker)", local, calls));
  } finally {
    await local.close();
  }
  // The Ray backend's broker runs on the calling thread: the like-for-like local variant.
  const inline = new PythonProcess({ name: "bench-local-inline", kind: "isolated", python, broker: "inline", defaultTimeoutMs: 0, healthCheck: false });
  try {
    rows.push(await measure("local backend (Unix socket, inline broker)", inline, calls));
  } finally {
    await inline.close();
  }
  if (!existsSync(rayPython)) {
    console.log(`ray_backend: not measuring the Ray backend: no Python with Ray at ${rayPython} (set PYISOLATE_RAY_PYTHON)`);
  } else {
    const t0 = performance.now();
    const cluster = await RayCluster.connect({ address: "auto", python: rayPython, hostAddress: "127.0.0.1" });
    const joinMs = performance.now() - t0;
    const actor = new PythonProcess({ name: "bench-ray", kind: "isolated", python, defaultTimeoutMs: 0, healthCheck: false, launcher: () => cluster.launcher("bench-ray") });
    try {
      const row = await measure("Ray backend (actor on a local cluster, TCP loopback)", actor, calls);
      rows.push(row);
      rows.push({ variant: "Ray backend: joining the cluster (auto: starting it)", startMs: joinMs, p50us: 0, p90us: 0, meanUs: 0 });
    } finally {
      await actor.close();
      await cluster.close();
    }
  }
  const result = { benchmark: "ray_backend", call: "$rt.echo({i, name}) awaited one at a time", runtime: (await getRuntime()).name, cpus: cpus().length, date: new Date().toISOString(), calls, rows };
  const out = join(repoRoot, "bench", "results", "ray_backend.json");
  mkdirSync(join(out, ".."), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
  const f = (n: number) => n.toFixed(1).padStart(9);
  console.log(`Ray backend vs local (${calls} calls each, ${cpus().length} CPUs)`);
  console.log(`| variant${" ".repeat(48)}| start ms |   p50 µs |   p90 µs |  mean µs |`);
  console.log(`|${"-".repeat(56)}|----------|----------|----------|----------|`);
  for (const r of rows) console.log(`| ${r.variant.padEnd(55)}|${f(r.startMs)} |${f(r.p50us)} |${f(r.p90us)} |${f(r.meanUs)} |`);
  console.log(`wrote ${out}`);
  clearInterval(alive);
  return rows;
}
