/**
 * Host startup with 20 isolated packs: `createHost` on a warm cache (every environment
 * built, every pack's nodes in the metadata cache: no process starts, `][ <Pack> loaded from
 * cache`) against a cold one (environments built, processes started, metadata cached).
 * Target for the warm start: ≤ 2 ms per pack (the README's performance table allows 5–20 ms).
 *
 * Packs are generated in a temp folder (`share_torch`, no dependencies, three V1 nodes
 * each). Prints a table and writes `bench/results/startup.json`.
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createHost, type Host } from "../src/host.ts";
import { Logger } from "../src/log.ts";

/** Options of {@link run}. */
export interface StartupOptions {
  /** Packs to generate. @default 20 */
  packs?: number;
  /** Warm starts to measure (after one unmeasured warm start). @default 20 */
  runs?: number;
  /** Cold starts to measure, each with a fresh cache folder. @default 1 */
  coldRuns?: number;
  /** The host Python. @default `PYISOLATE_PYTHON`, else the repo's `.venv` */
  python?: string;
  /** Where to write the JSON. @default `bench/results/startup.json`; `null`: do not write */
  out?: string | null;
  /** Print the table. @default true */
  print?: boolean;
}

/** The result of {@link run}. */
export interface StartupResult {
  packs: number;
  runs: number;
  /** Warm `createHost` (cache hit), whole host, ms. */
  warmP50Ms: number;
  warmP90Ms: number;
  warmMinMs: number;
  /** Warm p50 / packs, ms. */
  warmPerPackP50Ms: number;
  /** Warm `createHost` of the same folder with no packs in it: the fixed cost, ms (p50). */
  emptyP50Ms: number;
  /** (warm − empty) / packs: what each pack adds, ms (p50). */
  warmPerPackMarginalMs: number;
  /** Cold `createHost` (cache miss), whole host, ms (p50 of `coldRuns`). */
  coldMs: number;
  coldPerPackMs: number;
  /** `close()` of a warm host, ms (p50). */
  closeP50Ms: number;
  targetPerPackMs: number;
  runtime: string;
  date: string;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

function packSource(name: string): string {
  const cls = (suffix: string, fn: string) => `
class ${name}${suffix}:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "x"}), "count": ("INT", {"default": 1, "min": 0, "max": 100})}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "${fn}"
    CATEGORY = "bench/${name}"

    def ${fn}(self, text, count):
        return (text * count,)
`;
  return `${cls("Repeat", "repeat")}${cls("Echo", "echo")}${cls("Again", "again")}
NODE_CLASS_MAPPINGS = {"${name}Repeat": ${name}Repeat, "${name}Echo": ${name}Echo, "${name}Again": ${name}Again}
`;
}

function writePacks(dir: string, n: number): void {
  for (let i = 0; i < n; i++) {
    const name = `StartPack${String(i).padStart(2, "0")}`;
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, "pyisolate.yaml"), "isolated: true\nshare_torch: true\n");
    writeFileSync(join(dir, name, "__init__.py"), packSource(name));
  }
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))]!;
}

function runtimeName(): string {
  const v = process.versions as Record<string, string | undefined>;
  if (v.deno) return `deno ${v.deno}`;
  if (v.bun) return `bun ${v.bun}`;
  return `node ${v.node}`;
}

/** Runs the benchmark; prints a table and writes the JSON unless told not to. */
export async function run(opts: StartupOptions = {}): Promise<StartupResult> {
  const n = opts.packs ?? 20;
  const runs = opts.runs ?? 20;
  const coldRuns = opts.coldRuns ?? 1;
  const python = opts.python ?? process.env.PYISOLATE_PYTHON ?? join(ROOT, ".venv", "bin", "python");
  const print = opts.print ?? true;
  const root = mkdtempSync(join(tmpdir(), "pyisolate-bench-startup-"));
  const logger = new Logger(() => {});
  try {
    const nodesDir = join(root, "custom_nodes");
    const emptyDir = join(root, "empty_nodes");
    writePacks(nodesDir, n);
    mkdirSync(emptyDir);
    const start = (customNodes: string, cacheDir: string): Promise<Host> => createHost({ customNodes, cacheDir, baseDir: root, python, logger });

    // Cold: a fresh cache folder each time (environments, probes, metadata).
    const cold: number[] = [];
    for (let i = 0; i < coldRuns; i++) {
      const cacheDir = join(root, `cache-cold-${i}`);
      const t = performance.now();
      const host = await start(nodesDir, cacheDir);
      cold.push(performance.now() - t);
      const failed = host.packs.filter((p) => p.source === "failed" || p.nodes !== 3);
      await host.close();
      if (failed.length > 0) throw new Error(`Benchmark packs failed to load: ${failed.map((p) => `${p.name}: ${p.error?.message ?? `${p.nodes} nodes`}`).join("; ")}`);
    }

    // Warm: the last cold run's cache folder.
    const cacheDir = join(root, `cache-cold-${coldRuns - 1}`);
    const warm: number[] = [];
    const closes: number[] = [];
    const empty: number[] = [];
    for (let i = 0; i <= runs; i++) {
      const t = performance.now();
      const host = await start(nodesDir, cacheDir);
      const ms = performance.now() - t;
      if (!host.packs.every((p) => p.source === "cache")) {
        await host.close();
        throw new Error(`A warm start did not load every pack from the cache: ${host.packs.filter((p) => p.source !== "cache").map((p) => p.name).join(", ")}.`);
      }
      const c = performance.now();
      await host.close();
      if (i > 0) {
        warm.push(ms);
        closes.push(performance.now() - c);
      }
      const te = performance.now();
      const none = await start(emptyDir, cacheDir);
      if (i > 0) empty.push(performance.now() - te);
      await none.close();
    }

    const warmP50 = quantile(warm, 0.5);
    const emptyP50 = quantile(empty, 0.5);
    const coldMs = quantile(cold, 0.5);
    const result: StartupResult = {
      packs: n,
      runs,
      warmP50Ms: warmP50,
      warmP90Ms: quantile(warm, 0.9),
      warmMinMs: Math.min(...warm),
      warmPerPackP50Ms: warmP50 / n,
      emptyP50Ms: emptyP50,
      warmPerPackMarginalMs: (warmP50 - emptyP50) / n,
      coldMs,
      coldPerPackMs: coldMs / n,
      closeP50Ms: quantile(closes, 0.5),
      targetPerPackMs: 2,
      runtime: runtimeName(),
      date: new Date().toISOString(),
    };
    if (print) {
      const f = (x: number) => x.toFixed(2).padStart(10);
      process.stdout.write(`host startup with ${n} isolated packs, ${runs} warm starts (${result.runtime})\n`);
      process.stdout.write(`${"start".padEnd(34)} ${"total ms".padStart(10)} ${"per pack".padStart(10)}\n`);
      process.stdout.write(`${"warm (cache hit), p50".padEnd(34)} ${f(warmP50)} ${f(result.warmPerPackP50Ms)}\n`);
      process.stdout.write(`${"warm (cache hit), p90".padEnd(34)} ${f(result.warmP90Ms)} ${f(result.warmP90Ms / n)}\n`);
      process.stdout.write(`${"warm, no packs (fixed cost), p50".padEnd(34)} ${f(emptyP50)} ${"".padStart(10)}\n`);
      process.stdout.write(`${"warm minus fixed cost, p50".padEnd(34)} ${f(warmP50 - emptyP50)} ${f(result.warmPerPackMarginalMs)}\n`);
      process.stdout.write(`${"cold (cache miss)".padEnd(34)} ${f(coldMs)} ${f(result.coldPerPackMs)}\n`);
      process.stdout.write(`${"close() of a warm host, p50".padEnd(34)} ${f(result.closeP50Ms)} ${"".padStart(10)}\n`);
      const verdict = result.warmPerPackP50Ms <= result.targetPerPackMs ? "met" : "not met";
      process.stdout.write(`target ≤ ${result.targetPerPackMs} ms per pack on a warm start (README target: 5–20 ms): ${verdict} (${result.warmPerPackP50Ms.toFixed(2)} ms)\n`);
    }
    const out = opts.out === undefined ? join(ROOT, "bench", "results", "startup.json") : opts.out;
    if (out) {
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
    }
    return result;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

// Standalone: `npx deno run -A bench/startup.ts` (or a bundle whose entry is this module).
const entry = process.argv[1] ? pathToFileURL(process.argv[1]).href : "";
if (entry === import.meta.url && /startup\.(ts|js)$/.test(import.meta.url)) await run();
