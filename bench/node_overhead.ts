/**
 * Per-node overhead of a workflow: a chain of 20 nodes, each in its own isolated pack (its
 * own process and environment), against the same 20 nodes all in one shared pack (one
 * process), run through `createHost` → `host.run` as a workflow runs.
 *
 * Each node adds 1 to an INT and measures its own time in Python ("work"); the chain's wall
 * time minus the work, over 20, is the per-node overhead: validation, scheduling, the call
 * to the process and back, events. The first node's input changes every run, so every node
 * executes every time (no output cache hit). Runs of the two chains alternate.
 *
 * Packs are generated in a temp folder (`share_torch`, no dependencies, so environments build
 * fast). Prints a table and writes `bench/results/node_overhead.json`.
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Prompt } from "../src/executor/types.ts";
import { createHost } from "../src/host.ts";
import { Logger } from "../src/log.ts";

/** Options of {@link run}. */
export interface NodeOverheadOptions {
  /** Nodes in each chain. @default 20 */
  nodes?: number;
  /** Measured runs of each chain. @default 40 */
  runs?: number;
  /** Runs of each chain before measuring. @default 5 */
  warmup?: number;
  /** The host Python. @default `PYISOLATE_PYTHON`, else the repo's `.venv` */
  python?: string;
  /** Where to write the JSON. @default `bench/results/node_overhead.json`; `null`: do not write */
  out?: string | null;
  /** Print the table. @default true */
  print?: boolean;
}

/** The numbers for one chain. */
export interface ChainStats {
  /** `isolated`: one process per node; `shared`: every node in the shared process. */
  mode: "isolated" | "shared";
  /** Processes the chain's nodes run in. */
  processes: number;
  /** Median wall time of `host.run` for the whole chain, ms. */
  chainP50Ms: number;
  chainP90Ms: number;
  /** Median of the nodes' own time in Python, summed over the chain, ms. */
  workP50Ms: number;
  /** Median of (chain − work) / nodes, ms. */
  perNodeP50Ms: number;
  perNodeP90Ms: number;
  /** Median of the executor's per-node time (call to the process and back), ms. */
  nodeCallP50Ms: number;
}

/** The result of {@link run}. */
export interface NodeOverheadResult {
  nodes: number;
  runs: number;
  isolated: ChainStats;
  shared: ChainStats;
  /** Isolated minus shared per-node overhead (p50), ms. */
  differenceP50Ms: number;
  /** Host startup with the generated packs (cache miss: environments and processes), ms. */
  startupMs: number;
  runtime: string;
  date: string;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

function nodeSource(classNames: string[]): string {
  const classes = classNames
    .map(
      (name) => `
class ${name}(Inc):
    pass
`,
    )
    .join("");
  return `import time


class Inc:
    """Adds 1 to value; adds its own time (ms) to work_ms."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "value": ("INT", {"default": 0, "min": -(2**62), "max": 2**62}),
                "work_ms": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1e12, "step": 0.001}),
            }
        }

    RETURN_TYPES = ("INT", "FLOAT")
    RETURN_NAMES = ("value", "work_ms")
    FUNCTION = "inc"
    OUTPUT_NODE = True
    CATEGORY = "bench"

    def inc(self, value, work_ms):
        started = time.perf_counter()
        out = value + 1
        work_ms = work_ms + (time.perf_counter() - started) * 1000.0
        return {"ui": {"value": [out], "work_ms": [work_ms]}, "result": (out, work_ms)}
${classes}
NODE_CLASS_MAPPINGS = {${classNames.map((n) => `"${n}": ${n}`).join(", ")}}
`;
}

function writePacks(dir: string, n: number): { iso: string[]; shared: string[] } {
  const iso: string[] = [];
  const shared: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `ChainIso${String(i).padStart(2, "0")}`;
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, "pyisolate.yaml"), "isolated: true\nshare_torch: true\n");
    writeFileSync(join(dir, name, "__init__.py"), nodeSource([name]));
    iso.push(name);
    shared.push(`ChainShared${String(i).padStart(2, "0")}`);
  }
  mkdirSync(join(dir, "ChainShared"), { recursive: true });
  writeFileSync(join(dir, "ChainShared", "__init__.py"), nodeSource(shared));
  return { iso, shared };
}

function chain(classes: string[], start: number): Prompt {
  const prompt: Prompt = {};
  classes.forEach((cls, i) => {
    prompt[String(i + 1)] = {
      class_type: cls,
      inputs: i === 0 ? { value: start, work_ms: 0 } : { value: [String(i), 0], work_ms: [String(i), 1] },
    };
  });
  return prompt;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))));
  return s[i]!;
}

function runtimeName(): string {
  const v = process.versions as Record<string, string | undefined>;
  if (v.deno) return `deno ${v.deno}`;
  if (v.bun) return `bun ${v.bun}`;
  return `node ${v.node}`;
}

/** Runs the benchmark; prints a table and writes the JSON unless told not to. */
export async function run(opts: NodeOverheadOptions = {}): Promise<NodeOverheadResult> {
  const n = opts.nodes ?? 20;
  const runs = opts.runs ?? 40;
  const warmup = opts.warmup ?? 5;
  const python = opts.python ?? process.env.PYISOLATE_PYTHON ?? join(ROOT, ".venv", "bin", "python");
  const print = opts.print ?? true;
  const root = mkdtempSync(join(tmpdir(), "pyisolate-bench-nodes-"));
  try {
    const packs = writePacks(join(root, "custom_nodes"), n);
    const t0 = performance.now();
    const host = await createHost({
      customNodes: join(root, "custom_nodes"),
      cacheDir: join(root, "cache"),
      baseDir: root,
      python,
      logger: new Logger(() => {}),
    });
    const startupMs = performance.now() - t0;
    try {
      const failed = host.packs.filter((p) => p.source === "failed");
      if (failed.length > 0) throw new Error(`Benchmark packs failed to load: ${failed.map((p) => `${p.name}: ${p.error?.message}`).join("; ")}`);
      const samples = { isolated: [] as Array<{ chain: number; work: number; calls: number[] }>, shared: [] as Array<{ chain: number; work: number; calls: number[] }> };
      let start = 0;
      for (let r = 0; r < warmup + runs; r++) {
        for (const mode of ["isolated", "shared"] as const) {
          start++;
          const prompt = chain(mode === "isolated" ? packs.iso : packs.shared, start);
          const t = performance.now();
          const result = await host.run(prompt);
          const chainMs = performance.now() - t;
          if (result.status !== "success") throw new Error(`The ${mode} chain failed: ${JSON.stringify(result.error ?? result.validation)}`);
          const last = result.outputs[String(n)] as { value: number[]; work_ms: number[] };
          if (last.value[0] !== start + n) throw new Error(`The ${mode} chain computed ${last.value[0]}, expected ${start + n}.`);
          if (result.nodes.some((x) => x.status !== "executed")) throw new Error(`The ${mode} chain had cached nodes; every node must execute.`);
          if (r >= warmup) samples[mode].push({ chain: chainMs, work: last.work_ms[0]!, calls: result.nodes.map((x) => x.ms) });
        }
      }
      const stats = (mode: "isolated" | "shared"): ChainStats => {
        const s = samples[mode];
        const perNode = s.map((x) => (x.chain - x.work) / n);
        return {
          mode,
          processes: mode === "isolated" ? n : 1,
          chainP50Ms: quantile(s.map((x) => x.chain), 0.5),
          chainP90Ms: quantile(s.map((x) => x.chain), 0.9),
          workP50Ms: quantile(s.map((x) => x.work), 0.5),
          perNodeP50Ms: quantile(perNode, 0.5),
          perNodeP90Ms: quantile(perNode, 0.9),
          nodeCallP50Ms: quantile(s.flatMap((x) => x.calls), 0.5),
        };
      };
      const isolated = stats("isolated");
      const shared = stats("shared");
      const result: NodeOverheadResult = {
        nodes: n,
        runs,
        isolated,
        shared,
        differenceP50Ms: isolated.perNodeP50Ms - shared.perNodeP50Ms,
        startupMs,
        runtime: runtimeName(),
        date: new Date().toISOString(),
      };
      if (print) {
        const f = (x: number) => x.toFixed(3).padStart(9);
        process.stdout.write(`per-node overhead, a chain of ${n} nodes, ${runs} runs each (${result.runtime})\n`);
        process.stdout.write(`${"chain".padEnd(28)} ${"chain p50".padStart(9)} ${"chain p90".padStart(9)} ${"work p50".padStart(9)} ${"node p50".padStart(9)} ${"node p90".padStart(9)} ${"call p50".padStart(9)}\n`);
        for (const s of [isolated, shared]) {
          const label = s.mode === "isolated" ? `isolated (${s.processes} processes)` : "shared (1 process)";
          process.stdout.write(`${label.padEnd(28)} ${f(s.chainP50Ms)} ${f(s.chainP90Ms)} ${f(s.workP50Ms)} ${f(s.perNodeP50Ms)} ${f(s.perNodeP90Ms)} ${f(s.nodeCallP50Ms)}\n`);
        }
        process.stdout.write(`isolated − shared, per node (p50): ${result.differenceP50Ms.toFixed(3)} ms\n`);
        process.stdout.write("node = (chain wall time − work in Python) / nodes; call = executor's time per node (to the process and back); all ms\n");
      }
      const out = opts.out === undefined ? join(ROOT, "bench", "results", "node_overhead.json") : opts.out;
      if (out) {
        mkdirSync(dirname(out), { recursive: true });
        writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
      }
      return result;
    } finally {
      await host.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

// Standalone: `npx deno run -A bench/node_overhead.ts` (or a bundle whose entry is this module).
const entry = process.argv[1] ? pathToFileURL(process.argv[1]).href : "";
if (entry === import.meta.url && /node_overhead\.(ts|js)$/.test(import.meta.url)) await run();
