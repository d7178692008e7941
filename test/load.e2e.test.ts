// The load test: 32 isolated packs live at once in one workflow, run 1,000 times back to back
// (every node executes every run, tensors cross through /dev/shm), then this process's
// children, file descriptors, sockets, memory and segments are back where they were after the
// first runs. PYISOLATE_LOAD_RUNS changes the number of runs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHost, Logger, type Host } from "../src/mod.ts";
import type { Prompt } from "../src/executor/types.ts";
import { descendants, waitFor } from "./fault_util.ts";

const PACKS = 32;
const RUNS = Number(process.env.PYISOLATE_LOAD_RUNS ?? 1000);
const TENSOR_EVERY = 8; // packs 0, 8, 16, 24 also make an IMAGE

const tmp = mkdtempSync(join(tmpdir(), "pyisolate-load-"));
const nodes = join(tmp, "custom_nodes");
let host: Host;

const name = (i: number) => `Load${String(i).padStart(2, "0")}`;

function writePacks(): void {
  for (let i = 0; i < PACKS; i++) {
    const dir = join(nodes, name(i));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "pyisolate.yaml"), "isolated: true\nshare_torch: true\n");
    const image = i % TENSOR_EVERY === 0;
    writeFileSync(
      join(dir, "__init__.py"),
      [
        `class Step${i}:`,
        "    @classmethod",
        "    def INPUT_TYPES(cls):",
        '        return {"required": {"value": ("INT", {"default": 0, "min": 0, "max": 2**40})}}',
        `    RETURN_TYPES = ${image ? '("INT", "IMAGE")' : '("INT",)'}`,
        '    FUNCTION = "run"',
        "    def run(self, value):",
        image ? "        import torch\n        return (value + 1, torch.full((1, 16, 16, 3), float(value % 251) / 251))" : "        return (value + 1,)",
        `NODE_CLASS_MAPPINGS = {"Step${i}": Step${i}}`,
        "",
      ].join("\n"),
    );
  }
  mkdirSync(join(nodes, "LoadSum"));
  writeFileSync(
    join(nodes, "LoadSum", "__init__.py"),
    [
      "class LoadSum:",
      "    @classmethod",
      "    def INPUT_TYPES(cls):",
      `        return {"required": {"value": ("INT",), ${Array.from({ length: PACKS / TENSOR_EVERY }, (_v, k) => `"i${k}": ("IMAGE",)`).join(", ")}}}`,
      "    RETURN_TYPES = ()",
      '    FUNCTION = "run"',
      "    OUTPUT_NODE = True",
      "    def run(self, value, **images):",
      '        return {"ui": {"value": [value], "sum": [round(sum(float(t.sum()) for t in images.values()), 3)]}}',
      'NODE_CLASS_MAPPINGS = {"LoadSum": LoadSum}',
      "",
    ].join("\n"),
  );
}

/** The 32-pack chain, each run with a new start value so that every node executes. */
function prompt(start: number): Prompt {
  const p: Prompt = {};
  for (let i = 0; i < PACKS; i++) p[`n${i}`] = { class_type: `Step${i}`, inputs: { value: i === 0 ? start : [`n${i - 1}`, 0] } };
  const images = Object.fromEntries(Array.from({ length: PACKS / TENSOR_EVERY }, (_v, k) => [`i${k}`, [`n${k * TENSOR_EVERY}`, 1]]));
  p.sum = { class_type: "LoadSum", inputs: { value: [`n${PACKS - 1}`, 0], ...images } };
  return p;
}

function expectedSum(start: number): number {
  let s = 0;
  for (let k = 0; k < PACKS / TENSOR_EVERY; k++) s += (((start + k * TENSOR_EVERY) % 251) / 251) * 16 * 16 * 3;
  return Math.round(s * 1000) / 1000;
}

function measure() {
  const fds = readdirSync("/proc/self/fd");
  const sockets = fds.filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith("socket:");
    } catch {
      return false;
    }
  }).length;
  (globalThis as { gc?: () => void }).gc?.();
  const mem = process.memoryUsage();
  return { children: descendants(process.pid).length, fds: fds.length, sockets, segments: host.segments.onDisk().length, rss: mem.rss, heap: mem.heapUsed };
}

beforeAll(async () => {
  writePacks();
  host = await createHost({ customNodes: nodes, cacheDir: join(tmp, "cache"), baseDir: tmp, logger: new Logger(() => {}), buildConcurrency: 4 });
}, 600_000);

afterAll(async () => {
  await host?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe(`load: ${PACKS} isolated packs in one workflow`, () => {
  it(`runs ${RUNS} times back to back and leaves processes, fds, memory and /dev/shm at baseline`, async () => {
    expect(host.packs.filter((p) => p.kind === "isolated" && !p.error)).toHaveLength(PACKS);
    for (let r = 0; r < 20; r++) {
      const res = await host.run(prompt(r));
      expect(res.status, JSON.stringify(res.error)).toBe("success");
    }
    expect(host.core.live()).toHaveLength(PACKS + 1); // every pack's process and the shared one, all at once
    const before = measure();
    for (let r = 20; r < RUNS; r++) {
      const res = await host.run(prompt(r));
      if (res.status !== "success") throw new Error(`run ${r}: ${JSON.stringify(res.error)}`);
      if (r % 97 === 0) expect(res.outputs.sum).toEqual({ value: [r + PACKS], sum: [expectedSum(r)] });
      expect(res.nodes.filter((n) => n.status === "executed")).toHaveLength(PACKS + 1);
    }
    await waitFor(() => {
      const now = measure();
      return now.children === before.children && now.fds === before.fds && now.sockets === before.sockets && now.segments === before.segments;
    }, 15_000, () => `not back at baseline: ${JSON.stringify({ before, now: measure() })}`);
    const after = measure();
    process.stdout.write(`load: ${RUNS} runs, ${PACKS + 1} processes; rss ${(before.rss / 2 ** 20).toFixed(0)} → ${(after.rss / 2 ** 20).toFixed(0)} MiB, heap ${(before.heap / 2 ** 20).toFixed(0)} → ${(after.heap / 2 ** 20).toFixed(0)} MiB\n`);
    expect(after.segments).toBe(PACKS / TENSOR_EVERY); // the images the output cache holds, nothing more
    expect(after.heap - before.heap).toBeLessThan(48 * 2 ** 20);
    expect(after.rss - before.rss).toBeLessThan(160 * 2 ** 20);
  }, 1_200_000);
});
