/**
 * The same measurements under Node, Deno and Bun, in one table: RPC latency (a small call
 * host → Python → host through the broker worker, p50/p99), tensor passing (1 MB and a 12 MB
 * IMAGE, producer → host → consumer) and TypeScript's zero-copy view of a 12 MB IMAGE. Each
 * runtime runs `bench/runtimes_entry.ts` in a process of its own, one after the other, and
 * reports JSON; this module prints the table and writes `bench/results/runtimes.json`.
 *
 * Run: `node dist/bench.js runtimes` after the build, or from sources
 * `node --import ./workers/ts_register.mjs bench/runtimes.ts`. The runtimes come from
 * `node_modules/.bin` (the `deno` and `bun` dev dependencies), else PATH; Node is the one
 * running this module.
 * @module
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { getRuntime } from "../src/runtime/detect.ts";
import type { ExitStatus } from "../src/runtime/contract.ts";
import type { RuntimeMeasurement } from "./runtimes_entry.ts";

/** A runtime the benchmark can run. */
export type BenchRuntime = "node" | "deno" | "bun";

/** Options of {@link run}. */
export interface RuntimesBenchOptions {
  /** Which runtimes, in order. @default ["node", "deno", "bun"] */
  runtimes?: BenchRuntime[];
  /** Measured RPC calls per runtime. @default 5000 */
  calls?: number;
  /** Passes per tensor size, and views of the IMAGE. @default 100 */
  iterations?: number;
  /** Where to write the JSON. @default `bench/results/runtimes.json`; `null`: do not write */
  out?: string | null;
  /** Print the table. @default true */
  print?: boolean;
}

/** One runtime's row: its measurement, or why it has none. */
export interface RuntimesBenchRow {
  runtime: BenchRuntime;
  result?: RuntimeMeasurement;
  error?: string;
}

// bench/runtimes.ts and dist/bench.js both sit one level below the repository root.
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ENTRY = join(ROOT, "bench", "runtimes_entry.ts");
const MARK = "PYISOLATE_BENCH_RESULT ";

function concat(chunks: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return all;
}

function tool(name: string): string {
  const local = join(ROOT, "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
}

/** The command that runs the entry under `rt`. */
function command(rt: BenchRuntime, args: string[]): { cmd: string; args: string[] } {
  switch (rt) {
    case "node": {
      // Node 22.6+ strips types itself; Node 20 loads the sources through the repository's hooks.
      const strips = (process as unknown as { features?: { typescript?: unknown } }).features?.typescript;
      const node = process.versions.bun || process.versions.deno ? "node" : process.execPath;
      return { cmd: node, args: [...(strips ? [] : ["--import", join(ROOT, "workers", "ts_register.mjs")]), ENTRY, ...args] };
    }
    case "deno":
      return { cmd: tool("deno"), args: ["run", "-A", "--no-check", ENTRY, ...args] };
    case "bun":
      return { cmd: tool("bun"), args: [ENTRY, ...args] };
  }
}

async function measureIn(rt: BenchRuntime, calls: number, iterations: number): Promise<RuntimesBenchRow> {
  const runtime = await getRuntime();
  const c = command(rt, [String(calls), String(iterations)]);
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const child = runtime.spawn({
    cmd: c.cmd,
    args: c.args,
    cwd: ROOT,
    env: { ...(process.env as Record<string, string>), NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    onStdout: (b) => out.push(b.slice()),
    onStderr: (b) => err.push(b.slice()),
  });
  let status: ExitStatus;
  try {
    status = await child.exited;
  } catch (e) {
    return { runtime: rt, error: `could not start ${c.cmd}: ${(e as Error).message}` };
  }
  const text = new TextDecoder().decode(concat(out));
  const line = text.split("\n").find((l) => l.startsWith(MARK));
  if (status.code !== 0 || !line) {
    const tail = new TextDecoder().decode(concat(err)).trim().split("\n").slice(-5).join(" / ");
    return { runtime: rt, error: `${rt} exited with ${status.code ?? status.signal}${line ? "" : ", no result"}: ${tail}` };
  }
  return { runtime: rt, result: JSON.parse(line.slice(MARK.length)) as RuntimeMeasurement };
}

function table(rows: RuntimesBenchRow[]): string {
  const head = ["runtime", "RPC p50 µs", "RPC p99 µs", "calls/s", "1 MB pass p50 ms", "12 MB IMAGE pass p50 ms", "12 MB IMAGE tensor ms", "TS view 12 MB µs", "zero-copy"];
  const cells = rows.map((r) => {
    const m = r.result;
    if (!m) return [r.runtime, `failed: ${r.error ?? "?"}`];
    const [mb, image] = [m.tensors.find((t) => t.bytes === 1 << 20), m.tensors.find((t) => t.bytes !== 1 << 20)];
    return [
      `${m.runtime} ${m.version}`,
      (m.rpc.p50_ms * 1000).toFixed(1),
      (m.rpc.p99_ms * 1000).toFixed(1),
      m.rpc.calls_per_s.toFixed(0),
      mb ? mb.passP50Ms.toFixed(3) : "-",
      image ? image.passP50Ms.toFixed(3) : "-",
      image ? image.tensorCostP50Ms.toFixed(3) : "-",
      m.view.p50_us.toFixed(1),
      m.view.zeroCopy ? "yes" : "NO (copied)",
    ];
  });
  const lines = [`| ${head.join(" | ")} |`, `|${head.map((h) => "-".repeat(h.length + 2)).join("|")}|`];
  for (const c of cells) lines.push(`| ${c.join(" | ")} |`);
  return lines.join("\n");
}

/**
 * Runs the benchmark under each runtime and returns the rows.
 * @example
 * ```ts
 * import { run } from "./bench/runtimes.ts";
 * await run({ runtimes: ["node", "bun"], calls: 5_000 });
 * ```
 */
export async function run(opts: RuntimesBenchOptions = {}): Promise<RuntimesBenchRow[]> {
  const calls = opts.calls ?? 5_000;
  const iterations = opts.iterations ?? 100;
  const rows: RuntimesBenchRow[] = [];
  for (const rt of opts.runtimes ?? (["node", "deno", "bun"] as BenchRuntime[])) {
    if (opts.print !== false) process.stderr.write(`measuring under ${rt}…\n`);
    rows.push(await measureIn(rt, calls, iterations));
  }
  const out = opts.out === undefined ? join(ROOT, "bench", "results", "runtimes.json") : opts.out;
  if (out) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify({ benchmark: "runtimes", date: new Date().toISOString(), cpus: cpus().length, calls, iterations, rows }, null, 2)}\n`);
  }
  if (opts.print !== false) {
    process.stdout.write(`Per runtime (${calls} RPC calls; ${iterations} tensor passes per size; ${cpus().length} CPUs)\n${table(rows)}\n`);
    process.stdout.write(
      "RPC: $rt.echo of a small map, host → Python → host, worker broker. pass: producer → host → consumer, consumer mapped;" +
        " tensor: pass minus the same calls carrying None. TS view: viewTensor + read + unmap of the IMAGE.\n",
    );
    if (out) process.stdout.write(`wrote ${out}\n`);
  }
  return rows;
}

// Standalone: `node --import ./workers/ts_register.mjs bench/runtimes.ts`, `deno run -A bench/runtimes.ts`, `bun bench/runtimes.ts`.
const entry = process.argv[1] ? new URL(`file://${process.argv[1]}`).href : "";
if (entry === import.meta.url && /runtimes\.ts$/.test(import.meta.url)) {
  const rows = await run();
  process.exitCode = rows.every((r) => r.result) ? 0 : 1;
}
