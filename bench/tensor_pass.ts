/**
 * Tensor passing, producer → host → consumer, for tensors of 1 KB to 1 GB. Two Python
 * processes (the host's Python) and the host in between, as in a workflow: the host asks the
 * producer for its tensor and hands it to the consumer, which maps it. The producer's one
 * write into shared memory is timed apart (in Python); "pass" is everything else — both calls,
 * the TensorRef through the host, the consumer's mapping — and should not grow with the size.
 * A baseline runs the same two calls with `None` instead of a tensor.
 *
 * Prints a table and writes `bench/results/tensor_pass.json`.
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { HostCore } from "../src/process/host_core.ts";
import { SegmentRegistry } from "../src/values/segments.ts";

/** Options of {@link run}. */
export interface TensorPassOptions {
  /** Tensor sizes in bytes. @default 1 KB, 64 KB, 1 MB, 12 MB (a 1×1024×1024×3 float32 IMAGE), 64 MB, 256 MB, 1 GB */
  sizes?: number[];
  /** Passes per size (the first few are warm-up and not counted). @default 200 for ≤ 64 MB, 50 above */
  iterations?: number;
  /** The Python to run both processes with. @default `PYISOLATE_PYTHON`, else the repo's `.venv` */
  python?: string;
  /** Where to write the JSON. @default `bench/results/tensor_pass.json`; `null`: do not write */
  out?: string | null;
  /** Print the table. @default true */
  print?: boolean;
}

/** One row of the result. */
export interface TensorPassRow {
  label: string;
  bytes: number;
  /** Median time of the pass (producer → host → consumer mapped), ms. */
  passP50Ms: number;
  passP90Ms: number;
  /** Median of the same two calls carrying `None`, ms. */
  baselineP50Ms: number;
  /** Median of what the tensor adds to those two calls (pass minus the `None` pass run next to it), ms. */
  tensorCostP50Ms: number;
  /** Median time of the producer's one write into shared memory, ms. */
  writeP50Ms: number;
  iterations: number;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const IMAGE_BYTES = 1 * 1024 * 1024 * 3 * 4;
const DEFAULT_SIZES = [1 << 10, 64 << 10, 1 << 20, IMAGE_BYTES, 64 << 20, 256 << 20, 1 << 30];

const PRODUCER = String.raw`
import time
import torch
from pyisolate_runtime import cbor, rpc, tensors


class BenchProducer:
    ref = None
    tensor = None

    def prepare(self, nbytes, shape):
        if self.ref and self.ref.get("segment"):
            tensors.unlink_segment(self.ref["segment"])
        self.ref = None
        self.tensor = None
        shape = list(shape) if shape else [nbytes // 4]
        t = torch.empty(shape, dtype=torch.float32)
        t.view(-1)[:: max(1, t.numel() // 1024)] = 1.0   # touch it: a real output is in memory
        t.fill_(0.5)
        started = time.perf_counter()
        self.ref = tensors.encode_tensor(t)                # the one write
        write_ms = (time.perf_counter() - started) * 1000
        self.tensor = t
        return write_ms

    def rewrite(self):
        """Writes the tensor again into a fresh segment (timing the write alone)."""
        old = self.ref
        started = time.perf_counter()
        self.ref = tensors.encode_tensor(self.tensor)
        write_ms = (time.perf_counter() - started) * 1000
        tensors.unlink_segment(old["segment"])
        return write_ms

    @rpc.inline
    def get(self):
        """The output, as the host receives it after the write: its TensorRef."""
        return cbor.Tagged(tensors.TAG_TENSOR, self.ref)

    @rpc.inline
    def get_none(self):
        return None

    def done(self):
        if self.ref and self.ref.get("segment"):
            tensors.unlink_segment(self.ref["segment"])
        self.ref = None
        self.tensor = None


rpc.serve("BenchProducer", BenchProducer())
`;

const CONSUMER = String.raw`
from pyisolate_runtime import rpc


class BenchConsumer:
    held = None

    @rpc.inline
    def take(self, t):
        self.held = t        # mapped (decoding mapped it); keep it as a node's input would be
        return None if t is None else t.numel()


rpc.serve("BenchConsumer", BenchConsumer())
`;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

function label(bytes: number): string {
  if (bytes === IMAGE_BYTES) return "12 MB IMAGE 1×1024×1024×3 f32";
  if (bytes >= 1 << 30) return `${bytes / (1 << 30)} GB`;
  if (bytes >= 1 << 20) return `${bytes / (1 << 20)} MB`;
  return `${bytes / (1 << 10)} KB`;
}

/**
 * Runs the benchmark and returns its rows.
 * @example
 * const rows = await run({ sizes: [1 << 20], iterations: 50, out: null });
 */
export async function run(opts: TensorPassOptions = {}): Promise<TensorPassRow[]> {
  const python = opts.python ?? process.env.PYISOLATE_PYTHON ?? join(ROOT, ".venv", "bin", "python");
  const sizes = opts.sizes ?? DEFAULT_SIZES;
  const print = opts.print ?? true;
  const dir = mkdtempSync(join(tmpdir(), "pyisolate-bench-tensors-"));
  mkdirSync(join(dir, "BenchProducer"));
  mkdirSync(join(dir, "BenchConsumer"));
  writeFileSync(join(dir, "BenchProducer", "__init__.py"), PRODUCER);
  writeFileSync(join(dir, "BenchConsumer", "__init__.py"), CONSUMER);
  const segments = new SegmentRegistry();
  await segments.sweepDeadHosts();
  const host = new HostCore({
    hostPython: python,
    packs: [
      { name: "BenchProducer", path: join(dir, "BenchProducer"), kind: "isolated" },
      { name: "BenchConsumer", path: join(dir, "BenchConsumer"), kind: "isolated" },
    ],
  });
  const producer = host.processFor("BenchProducer");
  const consumer = host.processFor("BenchConsumer");
  const rows: TensorPassRow[] = [];
  try {
    await Promise.all([producer.start(), consumer.start()]);
    for (const bytes of sizes) {
      const iterations = opts.iterations ?? (bytes <= 64 << 20 ? 200 : 50);
      const warm = Math.min(10, Math.floor(iterations / 5));
      const shape = bytes === IMAGE_BYTES ? [1, 1024, 1024, 3] : null;
      const writes = [(await producer.call("BenchProducer", "prepare", [bytes, shape], { timeoutMs: 0 })) as number];
      const writeRuns = bytes <= 64 << 20 ? 5 : 2;
      for (let i = 1; i < writeRuns; i++) writes.push((await producer.call("BenchProducer", "rewrite", [], { timeoutMs: 0 })) as number);
      const pass: number[] = [];
      const base: number[] = [];
      const cost: number[] = [];
      for (let i = 0; i < iterations + warm; i++) {
        let t0 = performance.now();
        const ref = await producer.call("BenchProducer", "get");
        await consumer.call("BenchConsumer", "take", [ref]);
        const p = performance.now() - t0;
        t0 = performance.now();
        const none = await producer.call("BenchProducer", "get_none");
        await consumer.call("BenchConsumer", "take", [none]);
        const b = performance.now() - t0;
        if (i >= warm) {
          pass.push(p);
          base.push(b);
          cost.push(p - b);
        }
      }
      await consumer.call("BenchConsumer", "take", [null]);
      await producer.call("BenchProducer", "done");
      rows.push({
        label: label(bytes),
        bytes,
        passP50Ms: quantile(pass, 0.5),
        passP90Ms: quantile(pass, 0.9),
        baselineP50Ms: quantile(base, 0.5),
        tensorCostP50Ms: quantile(cost, 0.5),
        writeP50Ms: quantile(writes, 0.5),
        iterations,
      });
    }
  } finally {
    await host.close();
    segments.releaseAll();
    rmSync(dir, { recursive: true, force: true });
  }
  if (print) {
    const f = (x: number) => x.toFixed(3).padStart(9);
    process.stdout.write(`tensor pass, producer → host → consumer (${python})\n`);
    process.stdout.write(
      `${"size".padEnd(32)} ${"pass p50".padStart(9)} ${"pass p90".padStart(9)} ${"None p50".padStart(9)} ${"tensor".padStart(9)} ${"write p50".padStart(10)}   (ms)\n`,
    );
    for (const r of rows) {
      process.stdout.write(`${r.label.padEnd(32)} ${f(r.passP50Ms)} ${f(r.passP90Ms)} ${f(r.baselineP50Ms)} ${f(r.tensorCostP50Ms)} ${f(r.writeP50Ms).padStart(10)}\n`);
    }
    process.stdout.write("pass: both calls with the tensor; None: the same calls without; tensor: pass minus None; write: the producer's one write\n");
    const image = rows.find((r) => r.bytes === IMAGE_BYTES);
    if (image) {
      process.stdout.write(
        `IMAGE 1×1024×1024×3 float32: pass ${image.passP50Ms.toFixed(3)} ms, of which the tensor ${image.tensorCostP50Ms.toFixed(3)} ms (target ≤ 0.3 ms; README target ~1 ms for the whole pass)\n`,
      );
    }
  }
  const out = opts.out === undefined ? join(ROOT, "bench", "results", "tensor_pass.json") : opts.out;
  if (out) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify({ bench: "tensor_pass", date: new Date().toISOString(), node: process.version, rows }, null, 2)}\n`);
  }
  return rows;
}
