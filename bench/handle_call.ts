/**
 * The cost of using an object of another process: a method call on a proxy (an isolated
 * pack's node calling `obj.ping(i)` on an object the shared process made: isolated process →
 * host → shared process → host → isolated process), next to a plain RPC call from the same
 * node to a host service (`ModelManagement.processing_interrupted`: isolated process → host →
 * isolated process), the same method called on an object of the node's own process (what a
 * handle that comes back to its owner gives: the object itself), and the host's own plain
 * call into a Python process (`$rt.echo`, as `npm run bench rpc` measures it), all in one run.
 *
 * Calls are timed one at a time inside the Python node (`time.perf_counter_ns`), so the
 * numbers are what node code sees. Packs are generated in a temp folder (`share_torch`, no
 * dependencies). Prints a table and writes `bench/results/handle_call.json`.
 *
 * Run: `npm run bench handles`, or from sources
 * `node --import ./workers/ts_register.mjs bench/handle_call.ts`.
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createHost } from "../src/host.ts";
import { Logger } from "../src/log.ts";

/** Options of {@link run}. */
export interface HandleCallOptions {
  /** Measured calls per variant. @default 5000 */
  calls?: number;
  /** Unmeasured calls first. @default 500 */
  warmup?: number;
  /** The host Python. @default `PYISOLATE_PYTHON`, else the repo's `.venv` */
  python?: string;
  /** Where to write the JSON. @default `bench/results/handle_call.json`; `null`: do not write */
  out?: string | null;
  /** Print the table. @default true */
  print?: boolean;
}

/** One measured variant (times in ms). */
export interface HandleCallRow {
  variant: string;
  calls: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  mean_ms: number;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

const OWNER_PACK = `
class Obj:
    def ping(self, x):
        return x


class BenchMake:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "make"
    CATEGORY = "bench"

    def make(self):
        return (Obj(),)


NODE_CLASS_MAPPINGS = {"BenchMake": BenchMake}
`;

const USER_PACK = `
import json
import time

from pyisolate_runtime import handles, host


def summary(samples):
    s = sorted(samples)
    q = lambda p: s[min(len(s) - 1, int(p * len(s)))] / 1e6
    return {"calls": len(s), "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "mean_ms": sum(s) / len(s) / 1e6}


def timed(fn, calls, warmup):
    for i in range(warmup):
        fn(i)
    out = []
    clock = time.perf_counter_ns
    for i in range(calls):
        t = clock()
        fn(i)
        out.append(clock() - t)
    return summary(out)


class Local:
    def ping(self, x):
        return x


class BenchUse:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"obj": ("MODEL",), "calls": ("INT", {"default": 5000}), "warmup": ("INT", {"default": 500})}}

    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "use"
    CATEGORY = "bench"

    def use(self, obj, calls, warmup):
        assert handles.is_proxy(obj), "the object should be a proxy here"
        arg = {"name": "seed", "v": 1.5}
        local = Local()
        rows = {
            "proxy": timed(lambda i: obj.ping([i, arg]), calls, warmup),
            "rpc": timed(lambda i: host.call("ModelManagement", "processing_interrupted"), calls, warmup),
            "local": timed(lambda i: local.ping([i, arg]), calls, warmup),
        }
        return {"ui": {"text": [json.dumps(rows)]}}


NODE_CLASS_MAPPINGS = {"BenchUse": BenchUse}
`;

/**
 * Runs the benchmark and returns its rows.
 * @example
 * ```ts
 * import { run } from "./bench/handle_call.ts";
 * const rows = await run({ calls: 2000 });
 * ```
 */
export async function run(opts: HandleCallOptions = {}): Promise<HandleCallRow[]> {
  const calls = opts.calls ?? 5000;
  const warmup = opts.warmup ?? 500;
  const python = opts.python ?? process.env.PYISOLATE_PYTHON ?? join(ROOT, ".venv", "bin", "python");
  const root = mkdtempSync(join(tmpdir(), "pyisolate-bench-handles-"));
  const nodes = join(root, "custom_nodes");
  mkdirSync(join(nodes, "BenchOwner"), { recursive: true });
  mkdirSync(join(nodes, "BenchUser"), { recursive: true });
  writeFileSync(join(nodes, "BenchOwner", "__init__.py"), OWNER_PACK);
  writeFileSync(join(nodes, "BenchUser", "__init__.py"), USER_PACK);
  writeFileSync(join(nodes, "BenchUser", "pyisolate.yaml"), "isolated: true\nshare_torch: true\n");
  const host = await createHost({ customNodes: nodes, cacheDir: join(root, "cache"), python, baseDir: join(root, "comfy"), logger: new Logger(() => {}) });
  const rows: HandleCallRow[] = [];
  try {
    const r = await host.run({
      "1": { class_type: "BenchMake", inputs: {} },
      "2": { class_type: "BenchUse", inputs: { obj: ["1", 0], calls, warmup } },
    });
    if (r.status !== "success") throw new Error(`the benchmark workflow failed: ${JSON.stringify(r.error)}`);
    const text = (r.outputs["2"] as { text: string[] }).text[0]!;
    const got = JSON.parse(text) as Record<"proxy" | "rpc" | "local", Omit<HandleCallRow, "variant">>;
    // The host's own call into a Python process, as `bench rpc` measures it, in this run.
    const proc = host.core.processFor("BenchUser");
    const samples: number[] = [];
    for (let i = 0; i < warmup + calls; i++) {
      const a = performance.now();
      await proc.call("$rt", "echo", [{ i, name: "seed", v: 1.5 }]);
      if (i >= warmup) samples.push(performance.now() - a);
    }
    samples.sort((a, b) => a - b);
    const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
    rows.push(
      { variant: "proxied method call (isolated → shared)", ...got.proxy },
      { variant: "plain RPC call, Python → host service", ...got.rpc },
      { variant: "plain RPC call, host → Python ($rt.echo)", calls, p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99), mean_ms: samples.reduce((s, x) => s + x, 0) / calls },
      { variant: "same-process method call (the object itself)", ...got.local },
    );
  } finally {
    await host.close();
    rmSync(root, { recursive: true, force: true });
  }

  const out = opts.out === undefined ? join(ROOT, "bench", "results", "handle_call.json") : opts.out;
  if (out) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify({ benchmark: "handle_call", call: "obj.ping([i, {name, v}]) awaited one at a time", cpus: cpus().length, node: process.versions.node, date: new Date().toISOString(), rows }, null, 2) + "\n");
  }
  if (opts.print !== false) {
    const us = (ms: number) => (ms * 1000).toFixed(1).padStart(8);
    const lines = [
      `Object handle calls (${calls} calls each, ${cpus().length} CPUs, node ${process.versions.node})`,
      `| variant${" ".repeat(41)}|   p50 µs |   p90 µs |   p99 µs |  mean µs |`,
      `|${"-".repeat(49)}|----------|----------|----------|----------|`,
      ...rows.map((r) => `| ${r.variant.padEnd(48)}| ${us(r.p50_ms)} | ${us(r.p90_ms)} | ${us(r.p99_ms)} | ${us(r.mean_ms)} |`),
      ...(out ? [`wrote ${out}`] : []),
    ];
    process.stdout.write(lines.join("\n") + "\n");
  }
  return rows;
}

// Standalone: `node … bench/handle_call.ts`.
const entry = process.argv[1] ? new URL(`file://${process.argv[1]}`).href : "";
if (entry === import.meta.url && /handle_call\.(ts|js)$/.test(import.meta.url)) {
  await run();
}
