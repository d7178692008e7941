/**
 * How the cost of a prompt grows with its size: 10, 100, 1,000 and 10,000 nodes, as a chain
 * (each node reads the one before) and wide (independent branches of two nodes), run through
 * `createHost` → `host.run` over a real Python process (one shared pack of trivial nodes), and
 * through the executor alone (a TypeScript backend: validation, ordering, scheduling, caching,
 * events; no process). Linear cost shows as a per-node time that stays flat as the prompt
 * grows. A last row puts a 10 MB widget value into a prompt of 200 tiny nodes and compares it
 * with the same prompt without it: the value goes only to the node that has it.
 *
 * Prints a table and writes `bench/results/workflow_scale.json`.
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { PromptExecutor } from "../src/executor/executor.ts";
import type { NodeBackend, NodeInfo, Prompt } from "../src/executor/types.ts";
import { createHost } from "../src/host.ts";
import { Logger } from "../src/log.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Options of {@link run}. */
export interface WorkflowScaleOptions {
  /** Prompt sizes (nodes). @default [10, 100, 1000, 10000] */
  sizes?: number[];
  /** Measured runs per size (1 for sizes of 10,000 and more). @default 3 */
  runs?: number;
  /** The host Python. @default `PYISOLATE_PYTHON`, else the repo's `.venv` */
  python?: string;
  /** Where to write the JSON. @default `bench/results/workflow_scale.json`; `null`: do not write */
  out?: string | null;
  /** Print the table. @default true */
  print?: boolean;
}

/** One row: a shape and size, through processes or the executor alone. */
export interface ScaleRow {
  shape: "chain" | "wide";
  nodes: number;
  via: "processes" | "executor";
  /** Median wall time of `run`, ms. */
  p50Ms: number;
  /** p50 / nodes, µs. */
  perNodeUs: number;
}

/** The result of {@link run}. */
export interface WorkflowScaleResult {
  rows: ScaleRow[];
  /** 200 tiny nodes with and without a 10 MB widget value in one other node (ms, p50). */
  bigWidget: { withMs: number; withoutMs: number; ratio: number; bytesSent: number };
  date: string;
}

const PACK = `
class Inc:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0, "min": 0, "max": 2**62})}}
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    def run(self, value):
        return (value + 1,)

class Show:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT",)}}
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    def run(self, value):
        return {"ui": {"value": [value]}}

class Text:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""})}}
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    def run(self, text):
        return (len(text),)

NODE_CLASS_MAPPINGS = {"Inc": Inc, "Show": Show, "Text": Text}
`;

/** A prompt of `n` nodes: a chain ending in a Show, or n/2 independent Inc → Show pairs. */
function build(shape: "chain" | "wide", n: number, start: number): Prompt {
  const p: Prompt = {};
  if (shape === "chain") {
    for (let i = 0; i < n - 1; i++) p[`n${i}`] = { class_type: "Inc", inputs: { value: i === 0 ? start : [`n${i - 1}`, 0] } };
    p.end = { class_type: "Show", inputs: { value: [`n${n - 2}`, 0] } };
  } else {
    for (let i = 0; i < n / 2; i++) {
      p[`i${i}`] = { class_type: "Inc", inputs: { value: start + i } };
      p[`s${i}`] = { class_type: "Show", inputs: { value: [`i${i}`, 0] } };
    }
  }
  return p;
}

const INFOS: Record<string, NodeInfo> = {
  Inc: { name: "Inc", input: { required: { value: ["INT", { min: 0, max: 2 ** 62 }] } }, output: ["INT"] },
  Show: { name: "Show", input: { required: { value: ["INT"] } }, output: [], output_node: true },
  Text: { name: "Text", input: { required: { text: ["STRING"] } }, output: ["INT"] },
};

/** The executor's backend without processes: the same node semantics, in TypeScript. */
const tsBackend: NodeBackend = {
  info: (c) => INFOS[c],
  owner: () => ({ pack: "Bench", process: "p", isolated: false }),
  hasIsChanged: () => false,
  hasValidateInputs: () => false,
  isChanged: async () => null,
  validateInputs: async () => true,
  async execute(c, inputs) {
    const v = inputs.value?.[0] as number;
    if (c === "Inc") return { outputs: [[v + 1]], ui: null };
    if (c === "Text") return { outputs: [[String(inputs.text?.[0]).length]], ui: null };
    return { outputs: [], ui: { value: [v] } };
  },
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs the benchmark; prints a table and writes the JSON unless told not to. */
export async function run(opts: WorkflowScaleOptions = {}): Promise<WorkflowScaleResult> {
  const sizes = opts.sizes ?? [10, 100, 1000, 10000];
  const runs = opts.runs ?? 3;
  const print = opts.print ?? true;
  const python = opts.python ?? process.env.PYISOLATE_PYTHON ?? join(ROOT, ".venv", "bin", "python");
  const root = mkdtempSync(join(tmpdir(), "pyisolate-bench-scale-"));
  mkdirSync(join(root, "custom_nodes", "ScaleNodes"), { recursive: true });
  writeFileSync(join(root, "custom_nodes", "ScaleNodes", "__init__.py"), PACK);
  const host = await createHost({ customNodes: join(root, "custom_nodes"), cacheDir: join(root, "cache"), baseDir: root, python, logger: new Logger(() => {}) });
  const rows: ScaleRow[] = [];
  let start = 1;
  try {
    const executor = new PromptExecutor(tsBackend);
    for (const shape of ["chain", "wide"] as const) {
      for (const n of sizes) {
        for (const via of ["executor", "processes"] as const) {
          const times: number[] = [];
          const count = n >= 10_000 ? 1 : runs;
          for (let r = 0; r < count + 1; r++) {
            const prompt = build(shape, n, start++); // a new start value: every node executes
            const t = performance.now();
            const res = via === "executor" ? await executor.run(prompt) : await host.run(prompt);
            const ms = performance.now() - t;
            if (res.status !== "success") throw new Error(`${shape} ${n} via ${via}: ${JSON.stringify(res.error ?? res.validation.error)}`);
            if (r > 0 || count === 1) times.push(ms);
          }
          const p50 = median(times);
          rows.push({ shape, nodes: n, via, p50Ms: p50, perNodeUs: (p50 * 1000) / n });
        }
      }
    }
    // A 10 MB widget value among 200 tiny nodes, against the same prompt without it.
    const tiny = (big: boolean, s: number): Prompt => {
      const p = build("wide", 200, s);
      p.text = { class_type: "Text", inputs: { text: (big ? "x".repeat(10 << 20) : "x") + s } }; // new each run: sent every time
      p.textShow = { class_type: "Show", inputs: { value: ["text", 0] } };
      return p;
    };
    const proc = host.core.shared;
    const timed = async (big: boolean) => {
      const times: number[] = [];
      let bytes = 0;
      for (let r = 0; r < runs + 1; r++) {
        const before = proc.traffic.sent;
        const t = performance.now();
        const res = await host.run(tiny(big, start++));
        if (res.status !== "success") throw new Error(JSON.stringify(res.error));
        if (r > 0) times.push(performance.now() - t);
        bytes = proc.traffic.sent - before;
      }
      return { ms: median(times), bytes };
    };
    const without = await timed(false);
    const withBig = await timed(true);
    const result: WorkflowScaleResult = {
      rows,
      bigWidget: { withMs: withBig.ms, withoutMs: without.ms, ratio: withBig.ms / without.ms, bytesSent: withBig.bytes },
      date: new Date().toISOString(),
    };
    if (print) {
      process.stdout.write(`prompt size against time: p50 of ${runs} runs (1 at 10,000 nodes); every node executes\n`);
      process.stdout.write(`${"shape".padEnd(6)} ${"nodes".padStart(6)} ${"executor ms".padStart(12)} ${"µs/node".padStart(8)} ${"processes ms".padStart(13)} ${"µs/node".padStart(8)}\n`);
      for (const shape of ["chain", "wide"] as const) {
        for (const n of sizes) {
          const e = rows.find((r) => r.shape === shape && r.nodes === n && r.via === "executor")!;
          const p = rows.find((r) => r.shape === shape && r.nodes === n && r.via === "processes")!;
          process.stdout.write(`${shape.padEnd(6)} ${String(n).padStart(6)} ${e.p50Ms.toFixed(1).padStart(12)} ${e.perNodeUs.toFixed(1).padStart(8)} ${p.p50Ms.toFixed(1).padStart(13)} ${p.perNodeUs.toFixed(1).padStart(8)}\n`);
        }
      }
      const b = result.bigWidget;
      process.stdout.write(`200 tiny nodes + one 10 MB widget value: ${b.withMs.toFixed(1)} ms, without it ${b.withoutMs.toFixed(1)} ms (×${b.ratio.toFixed(2)}); ${(b.bytesSent / 2 ** 20).toFixed(1)} MiB sent\n`);
    }
    const out = opts.out === undefined ? join(ROOT, "bench", "results", "workflow_scale.json") : opts.out;
    if (out) {
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
    }
    return result;
  } finally {
    await host.close();
    rmSync(root, { recursive: true, force: true });
  }
}

// Standalone: `npx deno run -A bench/workflow_scale.ts` (or a bundle whose entry is this module).
const entry = process.argv[1] ? pathToFileURL(process.argv[1]).href : "";
if (entry === import.meta.url && /workflow_scale\.(ts|js)$/.test(import.meta.url)) await run();
