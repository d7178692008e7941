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
import { createHost, type Host } from "../src/host.ts";
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


def timed(fn, calls, warmup, samples):
    for i in range(warmup):
        fn(i)
    out = []
    clock = time.perf_counter_ns
    for i in range(calls):
        t = clock()
        fn(i)
        out.append(clock() - t)
    row = summary(out)
    if samples:
        row["samples_ms"] = [x / 1e6 for x in out]
    return row


class Local:
    def ping(self, x):
        return x


class BenchUse:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"obj": ("MODEL",), "calls": ("INT", {"default": 5000}), "warmup": ("INT", {"default": 500})},
            "optional": {
                "variants": ("STRING", {"default": "proxy,rpc,local"}),
                "samples": ("BOOLEAN", {"default": False}),
                "round": ("INT", {"default": 0}),
            },
        }

    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "use"
    CATEGORY = "bench"

    def use(self, obj, calls, warmup, variants="proxy,rpc,local", samples=False, round=0):
        assert handles.is_proxy(obj), "the object should be a proxy here"
        arg = {"name": "seed", "v": 1.5}
        local = Local()
        fns = {
            "proxy": lambda i: obj.ping([i, arg]),
            "rpc": lambda i: host.call("ModelManagement", "processing_interrupted"),
            "local": lambda i: local.ping([i, arg]),
        }
        rows = {v: timed(fns[v], calls, warmup, samples) for v in variants.split(",")}
        return {"ui": {"text": [json.dumps(rows)]}}


NODE_CLASS_MAPPINGS = {"BenchUse": BenchUse}
`;

/** The variants the node can time: a proxied call, a plain RPC call to a host service, the object itself. */
export type InNodeVariant = "proxy" | "rpc" | "local";

/** What the node measured for one variant (ms); each call's time too when asked for. */
export type InNodeResult = Omit<HandleCallRow, "variant"> & { samples_ms?: number[] };

/** Options of {@link measureInNode}. */
export interface InNodeOptions {
  /** Measured calls per variant. */
  calls: number;
  /** Unmeasured calls first. */
  warmup: number;
  /** What to time. @default all three */
  variants?: InNodeVariant[];
  /** Return each call's time as well (`samples_ms`). @default false */
  samples?: boolean;
  /** Changes the node's inputs, so that a later run executes it again (no output cache hit). @default 0 */
  round?: number;
}

/**
 * Writes the benchmark's two packs into `nodes` (a custom_nodes folder): `BenchOwner`, without
 * a manifest (so in the shared process), whose node `BenchMake` makes the object, and
 * `BenchUser`, isolated (`share_torch`), whose node `BenchUse` times calls on it.
 */
export function writeHandlePacks(nodes: string): void {
  mkdirSync(join(nodes, "BenchOwner"), { recursive: true });
  mkdirSync(join(nodes, "BenchUser"), { recursive: true });
  writeFileSync(join(nodes, "BenchOwner", "__init__.py"), OWNER_PACK);
  writeFileSync(join(nodes, "BenchUser", "__init__.py"), USER_PACK);
  writeFileSync(join(nodes, "BenchUser", "pyisolate.yaml"), "isolated: true\nshare_torch: true\n");
}

/**
 * Runs `BenchMake` → `BenchUse` once on a host over a folder {@link writeHandlePacks} wrote:
 * the isolated node gets a proxy of the shared process's object and times each call
 * (`time.perf_counter_ns`, one call at a time) of every variant asked for.
 */
export async function measureInNode(host: Host, o: InNodeOptions): Promise<Partial<Record<InNodeVariant, InNodeResult>>> {
  const variants = o.variants ?? ["proxy", "rpc", "local"];
  const r = await host.run({
    "1": { class_type: "BenchMake", inputs: {} },
    "2": { class_type: "BenchUse", inputs: { obj: ["1", 0], calls: o.calls, warmup: o.warmup, variants: variants.join(","), samples: o.samples ?? false, round: o.round ?? 0 } },
  });
  if (r.status !== "success") throw new Error(`the handle benchmark workflow failed: ${JSON.stringify(r.error)}`);
  const text = (r.outputs["2"] as { text: string[] }).text[0]!;
  return JSON.parse(text) as Partial<Record<InNodeVariant, InNodeResult>>;
}

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
  writeHandlePacks(nodes);
  const host = await createHost({ customNodes: nodes, cacheDir: join(root, "cache"), python, baseDir: join(root, "comfy"), logger: new Logger(() => {}) });
  const rows: HandleCallRow[] = [];
  try {
    const got = (await measureInNode(host, { calls, warmup })) as Record<InNodeVariant, InNodeResult>;
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
