/**
 * The Ray backend against the local backend, same run: the RPC round trip host → pack → host
 * (`$rt.echo`, one call at a time) and a process's start-up, for a local process and for a
 * Ray actor on a local cluster (`auto`); then a 12 MB tensor (a 1×1024×1024×3 float32 IMAGE)
 * from one pack to another — local processes, Ray actors on one Ray node, Ray actors on two
 * Ray nodes (a cluster of several nodes on this machine, `test/fixtures/ray/cluster.py`; the
 * bytes go through Ray's object store) — with the bytes the host's sockets carried per pass.
 * Prints two tables and writes `bench/results/ray_backend.json`. Needs a Python with Ray:
 * `PYISOLATE_RAY_PYTHON`, else `.ray-venv/bin/python`.
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HostCore, type HostPack } from "../src/process/host_core.ts";
import { PythonProcess } from "../src/process/python_process.ts";
import { RayCluster } from "../src/process/ray.ts";
import { getRuntime } from "../src/runtime/detect.ts";
import { SegmentRegistry, newHostId } from "../src/values/segments.ts";

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

interface TensorRow {
  variant: string;
  /** Producer makes and writes the tensor, the host hands its ref to the consumer, which reads every element: ms. */
  passP50Ms: number;
  passP90Ms: number;
  /** The consumer's call alone (mapping, or fetching through Ray, and reading): ms. */
  takeP50Ms: number;
  /** Bytes the host's sockets to both processes carried per pass. */
  hostBytesPerPass: number;
  passes: number;
}

const IMAGE = [1, 1024, 1024, 3];
const TENSOR_BYTES = 1024 * 1024 * 3 * 4;

const MAKER = String.raw`
import torch
from pyisolate_runtime import rpc


class BenchMaker:
    def make(self, seed):
        # A new output each time (a node's): written into a new segment as it is sent.
        return torch.full((1, 1024, 1024, 3), float(seed % 251), dtype=torch.float32)


rpc.serve("BenchMaker", BenchMaker())
NODE_CLASS_MAPPINGS = {}
`;

const TAKER = String.raw`
from pyisolate_runtime import rpc


class BenchTaker:
    def take(self, t):
        return float(t.sum())   # every element read


rpc.serve("BenchTaker", BenchTaker())
NODE_CLASS_MAPPINGS = {}
`;

async function tensorPasses(variant: string, core: HostCore, segments: SegmentRegistry, taker: string, passes: number): Promise<TensorRow> {
  const maker = core.processFor("BenchMaker");
  const take = core.processFor(taker);
  await Promise.all([maker.start(), take.start()]);
  const traffic = () => maker.traffic.sent + maker.traffic.received + take.traffic.sent + take.traffic.received;
  const warm = 3;
  const pass: number[] = [];
  const takes: number[] = [];
  let bytes = 0;
  for (let i = 0; i < passes + warm; i++) {
    const before = traffic();
    const t0 = performance.now();
    const ref = await maker.call("BenchMaker", "make", [i + 1], { timeoutMs: 0 });
    segments.retain(ref);
    const t1 = performance.now();
    const sum = Number(await take.call(taker, "take", [ref], { timeoutMs: 0 }));
    const t2 = performance.now();
    segments.release(ref);
    if (sum !== ((i + 1) % 251) * (TENSOR_BYTES / 4)) throw new Error(`${variant}: the consumer summed ${sum} for pass ${i}`);
    if (i >= warm) {
      pass.push(t2 - t0);
      takes.push(t2 - t1);
      bytes += traffic() - before;
    }
  }
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
  return { variant, passP50Ms: q(pass, 0.5), passP90Ms: q(pass, 0.9), takeP50Ms: q(takes, 0.5), hostBytesPerPass: Math.round(bytes / passes), passes };
}

/** A Ray cluster of several nodes on this machine (head, `a`: pool_a, `b1`/`b2`: pool_b), as the tests use. */
async function startCluster(rayPython: string): Promise<{ address: string; stop(): Promise<void> }> {
  const child = spawn(rayPython, [join(repoRoot, "test", "fixtures", "ray", "cluster.py")], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, RAY_USAGE_STATS_ENABLED: "0" } });
  let out = "";
  const address = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the bench cluster did not start within 240 s:\n${out}`)), 240_000);
    const on = (d: Buffer) => {
      out += d.toString();
      const m = /\{"address".*\}/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve((JSON.parse(m[0]) as { address: string }).address);
      }
    };
    child.stdout.on("data", on);
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.once("exit", (c) => reject(new Error(`the bench cluster exited (${c}):\n${out}`)));
  });
  return {
    address,
    stop: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null) return r();
        const t = setTimeout(() => (child.kill("SIGKILL"), r()), 60_000);
        child.once("exit", () => (clearTimeout(t), r()));
        child.stdin.end();
      }),
  };
}

/** The 12 MB tensor rows: local backend, Ray on one node, Ray across two nodes. */
async function tensorRows(python: string, rayPython: string | undefined, passes: number): Promise<TensorRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "pyisolate-bench-raytensor-"));
  const rows: TensorRow[] = [];
  const packs: HostPack[] = [];
  for (const [name, src, ray] of [
    ["BenchMaker", MAKER, { pool_a: 1 }],
    ["BenchTaker", TAKER, { pool_a: 1 }],
    ["BenchTakerFar", TAKER.replaceAll("BenchTaker", "BenchTakerFar"), { pool_b: 1 }],
  ] as const) {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, "__init__.py"), src);
    packs.push({ name, path: join(dir, name), kind: "isolated", ray: { numCpus: 0.5, resources: ray } });
  }
  try {
    {
      const hostId = newHostId();
      const segments = new SegmentRegistry({ hostId });
      await segments.claim();
      const core = new HostCore({ hostPython: python, packs, hostId, healthCheck: false });
      try {
        rows.push(await tensorPasses("local backend (two processes, /dev/shm)", core, segments, "BenchTaker", passes));
      } finally {
        await core.close();
        await segments.close();
      }
    }
    if (rayPython) {
      const cluster = await startCluster(rayPython);
      const hostId = newHostId();
      const segments = new SegmentRegistry({ hostId });
      await segments.claim();
      const ray = await RayCluster.connect({ address: cluster.address, python: rayPython, hostAddress: "127.0.0.1", hostId });
      segments.unlinkRemote = (name, ref) => ray.unlinkRemote(name, ref);
      const core = new HostCore({ hostPython: python, packs, hostId, ray, healthCheck: false });
      try {
        rows.push(await tensorPasses("Ray backend, same Ray node (/dev/shm)", core, segments, "BenchTaker", passes));
        rows.push(await tensorPasses("Ray backend, across Ray nodes (object store)", core, segments, "BenchTakerFar", passes));
        const far = core.ray!.placement("BenchTakerFar")?.id;
        const near = core.ray!.placement("BenchMaker")?.id;
        if (!far || far === near) throw new Error("the far consumer did not land on another Ray node");
      } finally {
        await core.close();
        await segments.close();
        await cluster.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** Runs the benchmark and returns its rows. */
export async function run(opts: { calls?: number; passes?: number; python?: string; rayPython?: string } = {}): Promise<Row[]> {
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
  const passes = opts.passes ?? 20;
  const tensors = await tensorRows(python, existsSync(rayPython) ? rayPython : undefined, passes);
  const result = {
    benchmark: "ray_backend",
    call: "$rt.echo({i, name}) awaited one at a time",
    runtime: (await getRuntime()).name,
    cpus: cpus().length,
    date: new Date().toISOString(),
    calls,
    rows,
    tensor: { what: "a 1×1024×1024×3 float32 tensor (12 MB) from one pack to another, through the host as a ref; the consumer reads every element", shape: IMAGE, bytes: TENSOR_BYTES, rows: tensors },
  };
  const out = join(repoRoot, "bench", "results", "ray_backend.json");
  mkdirSync(join(out, ".."), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
  const f = (n: number) => n.toFixed(1).padStart(9);
  console.log(`Ray backend vs local (${calls} calls each, ${cpus().length} CPUs)`);
  console.log(`| variant${" ".repeat(48)}| start ms |   p50 µs |   p90 µs |  mean µs |`);
  console.log(`|${"-".repeat(56)}|----------|----------|----------|----------|`);
  for (const r of rows) console.log(`| ${r.variant.padEnd(55)}|${f(r.startMs)} |${f(r.p50us)} |${f(r.p90us)} |${f(r.meanUs)} |`);
  console.log(`\n12 MB tensor, pack → pack (${passes} passes each; pass: make + take, take: the consumer's call)`);
  console.log(`| variant${" ".repeat(40)}|  pass p50 ms |  pass p90 ms |  take p50 ms | host bytes/pass |`);
  console.log(`|${"-".repeat(48)}|--------------|--------------|--------------|-----------------|`);
  for (const r of tensors) console.log(`| ${r.variant.padEnd(47)}|${r.passP50Ms.toFixed(1).padStart(13)} |${r.passP90Ms.toFixed(1).padStart(13)} |${r.takeP50Ms.toFixed(1).padStart(13)} |${String(r.hostBytesPerPass).padStart(16)} |`);
  console.log(`wrote ${out}`);
  clearInterval(alive);
  return rows;
}
