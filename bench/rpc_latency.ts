/**
 * RPC latency: a small call host → Python → host (`$rt.echo` of a small map), one at a time,
 * through the broker worker (the default) and through an inline broker on the main thread,
 * with a raw-socket peer (the same frames to a bare Python echo loop, no runtime, no broker)
 * as the floor this machine allows. Prints a table (p50, p90, p99, mean, calls/s) and writes
 * `bench/results/rpc_latency.json`.
 *
 * Run: `node dist/bench.js rpc` after the build, or from sources
 * `node --import ./workers/ts_register.mjs bench/rpc_latency.ts`; `PYISOLATE_PYTHON` picks the
 * Python (default: the repository's `.venv`).
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir, cpus } from "node:os";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { PythonProcess } from "../src/process/python_process.ts";
import type { BrokerMode } from "../src/process/broker_link.ts";
import { pythonRoot } from "../src/paths.ts";
import { getRuntime } from "../src/runtime/detect.ts";
import { decodeMessage, encodeMessage } from "../src/protocol/codec.ts";
import { FrameDecoder } from "../src/protocol/frames.ts";

/** Options of {@link run}. */
export interface RpcLatencyOptions {
  /** Measured calls per variant. @default 10000 */
  calls?: number;
  /** Unmeasured calls first. @default 2000 */
  warmup?: number;
  /** Python executable. @default `PYISOLATE_PYTHON`, else the repository's `.venv/bin/python` */
  python?: string;
  /** Broker variants to measure. @default ["worker", "inline"] */
  brokers?: BrokerMode[];
  /** Also measure the raw-socket floor. @default true */
  raw?: boolean;
  /** Where to write the JSON. @default bench/results/rpc_latency.json */
  out?: string;
  /** Print the table. @default true */
  print?: boolean;
}

/** One measured variant. */
export interface LatencyRow {
  variant: string;
  calls: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  mean_ms: number;
  calls_per_s: number;
}

const here = import.meta.url;
// bench/rpc_latency.ts and dist/bench.js both sit one level below the repository root.
const repoRoot = fileURLToPath(new URL("..", here));

function defaultPython(): string {
  return process.env.PYISOLATE_PYTHON ?? join(repoRoot, ".venv", "bin", "python");
}

function summarise(variant: string, samples: number[], wallMs: number): LatencyRow {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { variant, calls: s.length, p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99), mean_ms: mean, calls_per_s: (s.length / wallMs) * 1000 };
}

async function measure(variant: string, calls: number, warmup: number, once: (i: number) => Promise<unknown>): Promise<LatencyRow> {
  for (let i = 0; i < warmup; i++) await once(i);
  const samples = new Array<number>(calls);
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) {
    const a = performance.now();
    await once(i);
    samples[i] = performance.now() - a;
  }
  return summarise(variant, samples, performance.now() - t0);
}

const arg = (i: number) => ({ i, name: "seed", v: 1.5 });

/** The floor: the same frames to a bare Python loop that decodes and answers with the runtime's codec. */
async function rawFloor(python: string, calls: number, warmup: number): Promise<LatencyRow> {
  const rt = await getRuntime();
  const dir = mkdtempSync(join(tmpdir(), "pyisolate-bench-"));
  const path = join(dir, "s");
  const script = [
    "import socket, struct, sys",
    "from pyisolate_runtime.cbor import dumps, loads",
    "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); buf = b''",
    "while True:",
    "    d = s.recv(65536)",
    "    if not d: break",
    "    buf += d",
    "    while len(buf) >= 4:",
    "        n = struct.unpack('>I', buf[:4])[0]",
    "        if len(buf) < 4 + n: break",
    "        m = loads(buf[4:4 + n]); buf = buf[4 + n:]",
    "        out = dumps({'t': 'ok', 'id': m['id'], 'v': m['a'][0]})",
    "        s.sendall(struct.pack('>I', len(out)) + out)",
  ].join("\n");
  let onConn: (c: import("../src/runtime/contract.ts").SocketConn) => void = () => {};
  const connected = new Promise<import("../src/runtime/contract.ts").SocketConn>((r) => (onConn = r));
  const server = await rt.listenUnix(path, (c) => onConn(c));
  const child = rt.spawn({ cmd: python, args: ["-c", script, path], env: { ...(process.env as Record<string, string>), PYTHONPATH: pythonRoot() } });
  try {
    const conn = await connected;
    const frames = new FrameDecoder();
    let resolve: (v: unknown) => void = () => {};
    conn.onData((chunk) => {
      for (const p of frames.push(chunk)) resolve(decodeMessage(p));
    });
    const row = await measure("raw socket, bare Python loop (floor)", calls, warmup, (i) => {
      const p = new Promise((r) => (resolve = r));
      conn.write(encodeMessage({ t: "call", id: i + 1, s: "$rt", m: "echo", a: [arg(i)] }));
      return p;
    });
    conn.close();
    return row;
  } finally {
    child.kill("SIGKILL");
    await child.exited.catch(() => {});
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs the benchmark and returns its rows.
 * @example
 * ```ts
 * import { run } from "./bench/rpc_latency.ts";
 * await run({ calls: 10_000 });
 * ```
 */
export async function run(opts: RpcLatencyOptions = {}): Promise<LatencyRow[]> {
  const calls = opts.calls ?? 10_000;
  const warmup = opts.warmup ?? 2_000;
  const python = opts.python ?? defaultPython();
  const rows: LatencyRow[] = [];
  for (const broker of opts.brokers ?? (["worker", "inline"] as BrokerMode[])) {
    const proc = new PythonProcess({ name: `bench-${broker}`, kind: "shared", python, broker, defaultTimeoutMs: 0 });
    try {
      await proc.start();
      rows.push(await measure(`host → Python → host, ${broker} broker`, calls, warmup, (i) => proc.call("$rt", "echo", [arg(i)])));
    } finally {
      await proc.close();
    }
  }
  if (opts.raw !== false) rows.push(await rawFloor(python, calls, warmup));

  const result = {
    benchmark: "rpc_latency",
    call: "$rt.echo({i, name, v}) awaited one at a time",
    runtime: (await getRuntime()).name,
    node: process.versions.node,
    cpus: cpus().length,
    date: new Date().toISOString(),
    rows,
  };
  const out = opts.out ?? join(repoRoot, "bench", "results", "rpc_latency.json");
  mkdirSync(join(out, ".."), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + "\n");

  if (opts.print !== false) {
    const us = (ms: number) => (ms * 1000).toFixed(1).padStart(8);
    const lines = [
      `RPC latency (${calls} calls each, ${cpus().length} CPUs, ${result.runtime} ${process.versions.node})`,
      `| variant${" ".repeat(38)}|   p50 µs |   p90 µs |   p99 µs |  mean µs |  calls/s |`,
      `|${"-".repeat(46)}|----------|----------|----------|----------|----------|`,
      ...rows.map((r) => `| ${r.variant.padEnd(45)}| ${us(r.p50_ms)} | ${us(r.p90_ms)} | ${us(r.p99_ms)} | ${us(r.mean_ms)} | ${r.calls_per_s.toFixed(0).padStart(8)} |`),
      `wrote ${out}`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
  }
  return rows;
}

// Standalone: `node … bench/rpc_latency.ts` (or a bundle whose entry is this module).
const entry = process.argv[1] ? new URL(`file://${process.argv[1]}`).href : "";
if (entry === here && /rpc_latency\.(ts|js)$/.test(here)) {
  await run();
}
