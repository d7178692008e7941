/**
 * Prompts at the same time on the server: the wall time of a batch of prompts sent together
 * to `serve(host, { maxConcurrentPrompts })`, with 1 lane (ComfyUI's one at a time: the
 * baseline, measured in the same run) and with 2, through real HTTP and WebSocket clients over
 * two real isolated packs. Three batches: prompts that alternate between the two packs (they
 * can overlap), prompts that all need the same pack (they take turns in its process: no gain
 * expected), and many tiny prompts (the cost of the lanes themselves).
 *
 * Prints a table and writes `bench/results/concurrent_prompts.json`.
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createHost } from "../src/host.ts";
import { Logger } from "../src/log.ts";
import { serve } from "../src/server/server.ts";
import { until, WsClient } from "../test/shared/server_client.ts";
import type { Prompt } from "../src/executor/types.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Options of {@link run}. */
export interface ConcurrentPromptsOptions {
  /** Seconds each slow prompt's node sleeps. @default 0.3 */
  sleep?: number;
  /** Slow prompts per batch. @default 4 */
  prompts?: number;
  /** Tiny prompts in the overhead batch. @default 40 */
  tiny?: number;
  /** The host Python. @default `PYISOLATE_PYTHON`, else the repo's `.venv` */
  python?: string;
  /** Where to write the JSON. @default `bench/results/concurrent_prompts.json`; `null`: do not write */
  out?: string | null;
  /** Print the table. @default true */
  print?: boolean;
}

/** One row: a batch, with one lane and with two. */
export interface ConcurrentRow {
  batch: string;
  prompts: number;
  oneLaneMs: number;
  twoLanesMs: number;
  /** oneLaneMs / twoLanesMs. */
  speedup: number;
}

const pack = (cls: string) => `
import time

class ${cls}:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0, "min": 0, "max": 2**62}),
                             "sleep": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 10.0})}}
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    OUTPUT_NODE = True
    def run(self, value, sleep):
        if sleep:
            time.sleep(sleep)
        return {"ui": {"value": [value + 1]}, "result": (value + 1,)}

NODE_CLASS_MAPPINGS = {"${cls}": ${cls}}
`;

const MANIFEST = "isolated: true\nshare_torch: true\ndependencies: []\n";

/** Sends every prompt of the batch, then waits for each one's `executing` null on the socket. */
async function batch(url: string, prompts: Prompt[]): Promise<number> {
  const ws = await WsClient.open(url, { clientId: "bench" });
  const from = ws.messages.length;
  const t = performance.now();
  const ids: string[] = [];
  for (const prompt of prompts) {
    const r = await fetch(`${url}/prompt`, { method: "POST", body: JSON.stringify({ prompt, client_id: "bench" }) });
    if (r.status !== 200) throw new Error(`POST /prompt answered ${r.status}: ${await r.text()}`);
    ids.push(((await r.json()) as { prompt_id: string }).prompt_id);
  }
  const left = new Set(ids);
  await until("the batch to finish", () => {
    for (const m of ws.messages.slice(from)) if (m.type === "executing" && m.data.node === null) left.delete(String(m.data.prompt_id));
    return left.size === 0 || undefined;
  }, 120_000);
  const ms = performance.now() - t;
  ws.close();
  return ms;
}

/** Runs the benchmark; prints a table and writes the JSON unless told not to. */
export async function run(opts: ConcurrentPromptsOptions = {}): Promise<{ rows: ConcurrentRow[]; date: string }> {
  const sleep = opts.sleep ?? 0.3;
  const n = opts.prompts ?? 4;
  const tiny = opts.tiny ?? 40;
  const print = opts.print ?? true;
  const python = opts.python ?? process.env.PYISOLATE_PYTHON ?? join(ROOT, ".venv", "bin", "python");
  const root = mkdtempSync(join(tmpdir(), "pyisolate-bench-concurrent-"));
  for (const [name, cls] of [["BenchA", "SleepA"], ["BenchB", "SleepB"]] as const) {
    mkdirSync(join(root, "custom_nodes", name), { recursive: true });
    writeFileSync(join(root, "custom_nodes", name, "__init__.py"), pack(cls));
    writeFileSync(join(root, "custom_nodes", name, "pyisolate.yaml"), MANIFEST);
  }
  const host = await createHost({ customNodes: join(root, "custom_nodes"), cacheDir: join(root, "cache"), baseDir: root, python, logger: new Logger(() => {}) });
  let value = 0;
  const one = (cls: string, s: number): Prompt => ({ "1": { class_type: cls, inputs: { value: value++, sleep: s } } });
  const batches: Array<[string, () => Prompt[]]> = [
    [`alternating packs, ${sleep} s each`, () => Array.from({ length: n }, (_, i) => one(i % 2 ? "SleepB" : "SleepA", sleep))],
    [`one pack, ${sleep} s each`, () => Array.from({ length: n }, () => one("SleepA", sleep))],
    ["tiny prompts, alternating packs", () => Array.from({ length: tiny }, (_, i) => one(i % 2 ? "SleepB" : "SleepA", 0))],
  ];
  const rows: ConcurrentRow[] = [];
  try {
    const servers = { 1: await serve(host, { port: 0, frontendRoot: false, logger: new Logger(() => {}) }), 2: await serve(host, { port: 0, frontendRoot: false, maxConcurrentPrompts: 2, logger: new Logger(() => {}) }) };
    try {
      // Warm-up: both processes started, on both servers.
      for (const s of [servers[1], servers[2]]) await batch(s.url, [one("SleepA", 0), one("SleepB", 0)]);
      for (const [name, make] of batches) {
        const times: Record<1 | 2, number[]> = { 1: [], 2: [] };
        for (let r = 0; r < 3; r++) for (const lanes of [1, 2] as const) times[lanes].push(await batch(servers[lanes].url, make()));
        const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[1]!;
        const [a, b] = [med(times[1]), med(times[2])];
        rows.push({ batch: name, prompts: make().length, oneLaneMs: +a.toFixed(1), twoLanesMs: +b.toFixed(1), speedup: +(a / b).toFixed(2) });
      }
    } finally {
      await servers[1].close();
      await servers[2].close();
    }
  } finally {
    await host.close();
    rmSync(root, { recursive: true, force: true });
  }
  const result = { rows, date: new Date().toISOString() };
  if (print) {
    process.stdout.write("| batch | prompts | 1 lane (baseline), ms | 2 lanes, ms | speedup |\n|---|---:|---:|---:|---:|\n");
    for (const r of rows) process.stdout.write(`| ${r.batch} | ${r.prompts} | ${r.oneLaneMs} | ${r.twoLanesMs} | ${r.speedup}× |\n`);
  }
  const out = opts.out === undefined ? join(ROOT, "bench", "results", "concurrent_prompts.json") : opts.out;
  if (out !== null) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
  }
  return result;
}
