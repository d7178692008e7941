/**
 * Values across processes, end to end: a producer pack and a consumer pack, each in its own
 * Python process, with the host in between routing every value. Tensors cross as segments
 * the producer writes once; the host forwards TensorRefs untouched and owns the segments.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { HostCore } from "../src/process/host_core.ts";
import type { PythonProcess } from "../src/process/python_process.ts";
import { isTuple } from "../src/protocol/py_types.ts";
import { RemoteError } from "../src/protocol/remote_error.ts";
import { IO_TYPES } from "../src/values/io_types.gen.ts";
import { SegmentRegistry, listSegments } from "../src/values/segments.ts";
import { TensorRef, collectTensorRefs } from "../src/values/tensors.ts";
import { tensorValues } from "../src/values/view.ts";
import { writeTensorPacks } from "./tensors_packs.ts";
import { PYTHON, ROOT } from "./tensors_util.ts";

const packs = writeTensorPacks();
const registry = new SegmentRegistry();
let host: HostCore;
let producer: PythonProcess;
let consumer: PythonProcess;
/** Values the test (as the host) holds; released after each test. */
const held: unknown[] = [];

function hold<T>(v: T): T {
  registry.retain(v);
  held.push(v);
  return v;
}

beforeAll(async () => {
  await registry.sweepDeadHosts();
  host = new HostCore({
    hostPython: PYTHON,
    packs: [
      { name: "TensorProducer", path: packs.producer, kind: "isolated" },
      { name: "TensorConsumer", path: packs.consumer, kind: "isolated" },
    ],
  });
  producer = host.processFor("TensorProducer");
  consumer = host.processFor("TensorConsumer");
  await Promise.all([producer.start(), consumer.start()]);
  expect(producer.pid).not.toBe(consumer.pid);
});

afterEach(() => {
  for (const v of held.splice(0)) registry.release(v);
  // Every segment the test's processes wrote was retained by the host and is gone now.
  expect(listSegments(registry.dir, process.pid)).toEqual([]);
  expect(registry.retained()).toEqual([]);
});

afterAll(async () => {
  await host?.close();
  registry.releaseAll();
  rmSync(packs.root, { recursive: true, force: true });
});

describe("every serializable io type between two isolated processes", () => {
  it("crosses producer → host → consumer with values intact", async () => {
    const [values, described] = hold((await producer.call("Producer", "make")) as [Record<string, unknown>, Record<string, unknown>]);
    // Every io type that crosses has a sample.
    const serializable = [...new Set(IO_TYPES.filter((t) => t.serializable).map((t) => t.ioType))];
    expect(Object.keys(values).sort()).toEqual(serializable.sort());
    // The host sees TensorRefs, exact big ints and tuples.
    expect(values.IMAGE).toBeInstanceOf(TensorRef);
    expect(values.INT).toBe(2n ** 64n - 1n);
    expect(isTuple(values.TIMESTEPS_RANGE)).toBe(true);
    expect(Array.isArray(values.HISTOGRAM) && !isTuple(values.HISTOGRAM)).toBe(true);
    const cond = values.CONDITIONING as unknown[][];
    expect(cond[0]![0]).toBeInstanceOf(TensorRef);
    expect(isTuple((cond[0]![1] as Record<string, unknown>).area)).toBe(true);
    expect((values.LATENT as { batch_index: unknown[] }).batch_index).toEqual([0, 2n ** 53n + 1n]);
    // The consumer receives what the producer sent, exactly.
    const seen = hold(await consumer.call("Consumer", "describe", [values]));
    expect(seen).toEqual(described);
  });

  // JavaScript has one number type: a whole-number float (1.0) crosses the host marked (tag
  // 41506) so that the next process sees 1.0 again, not the int 1.
  it("keeps whole-number floats floats", async () => {
    const [v, described] = (await producer.call("Producer", "whole_floats")) as [unknown, unknown];
    expect(await consumer.call("Consumer", "describe_raw", [v])).toEqual(described);
  });

  it("keeps an IMAGE's values exact down to the bytes the host can view", async () => {
    const [image] = hold((await producer.call("Producer", "image", [16])) as [TensorRef, unknown]);
    const fromHost = await tensorValues(image);
    const back = hold((await consumer.call("Consumer", "forward", [image])) as TensorRef);
    expect(back.segment).toBe(image.segment); // forwarded unchanged: the same segment
    expect(await tensorValues(back)).toEqual(fromHost);
    expect(fromHost).toHaveLength(16 * 16 * 3);
  });

  it("refuses an opaque type with an error naming it", async () => {
    const err = await producer.call("Producer", "opaque").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).pythonType).toMatch(/OpaqueTypeError$/);
    expect((err as RemoteError).pythonMessage).toMatch(/^MODEL value cannot cross a process boundary \(node 'CheckpointLoaderSimple', slot 'MODEL'\)/);
  });
});

describe("zero copy", () => {
  it("backs the consumer's tensor by the producer's segment, with no second copy", async () => {
    const image = hold((await producer.call("Producer", "make_one", ["IMAGE"])) as TensorRef);
    const before = listSegments(registry.dir, process.pid);
    expect(before).toEqual([image.segment]);
    const [mappedFrom, segmentsThen] = (await consumer.call("Consumer", "where", [image])) as [string, string[]];
    expect(mappedFrom).toBe(registry.path(image.segment));
    expect(segmentsThen).toEqual([image.segment]);
    expect(listSegments(registry.dir, process.pid)).toEqual([image.segment]);
  });

  it("a consumer writing into its input leaves the producer's output unchanged", async () => {
    const [image, original] = hold((await producer.call("Producer", "image", [32])) as [TensorRef, { sha: string }]);
    const hostBefore = await tensorValues(image);
    const scribbled = (await consumer.call("Consumer", "scribble", [image])) as { sha: string };
    expect(scribbled.sha).not.toBe(original.sha);
    // The segment — the producer's output the host holds — is as it was.
    expect(await tensorValues(image)).toEqual(hostBefore);
    const again = (await consumer.call("Consumer", "describe", [{ IMAGE: image }])) as { IMAGE: { sha: string } };
    expect(again.IMAGE.sha).toBe(original.sha);
    // What the consumer changed is its own: sent on, it travels as a new segment.
    const changed = hold((await consumer.call("Consumer", "held_back")) as TensorRef);
    expect(changed.segment).not.toBe(image.segment);
    expect(await tensorValues(changed)).toEqual(hostBefore.map((x) => Math.fround(7 - (x as number))));
  });

  it("an unchanged tensor forwarded through a process is written once", async () => {
    const latent = hold((await producer.call("Producer", "make_one", ["LATENT"])) as { samples: TensorRef; noise_mask: TensorRef });
    const segments = collectTensorRefs(latent).map((r) => r.segment).sort();
    const back = hold((await consumer.call("Consumer", "forward", [latent])) as typeof latent);
    expect(collectTensorRefs(back).map((r) => r.segment).sort()).toEqual(segments);
    expect(listSegments(registry.dir, process.pid)).toEqual(segments);
  });
});

describe("segments of a dead host", () => {
  it("a host killed with SIGKILL leaves segments that the next host removes", async () => {
    const script = join(ROOT, "test", "tensors_host.ts");
    const child = spawn(process.execPath, ["--import", join(ROOT, "test", "tensors_host_loader.mjs"), script, packs.producer], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PYISOLATE_BROKER: "inline" },
    });
    let out = "";
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const exited = new Promise<void>((res) => child.once("exit", () => res()));
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        if (out.includes("\n")) resolve(out.trim());
      });
      child.once("exit", (code) => reject(new Error(`host exited (${code}): ${err}`)));
    });
    const { hostPid, pythonPid, segments } = JSON.parse(line) as { hostPid: number; pythonPid: number; segments: string[] };
    expect(segments.length).toBeGreaterThan(3);
    child.kill("SIGKILL");
    await exited;
    // The host is gone; its Python process follows (end of stream on its socket).
    await waitFor(() => !alive(pythonPid));
    for (const s of segments) expect(existsSync(registry.path(s))).toBe(true);
    expect(listSegments(registry.dir, hostPid).sort()).toEqual([...segments].sort());
    // The next host sweeps them at start.
    const next = new SegmentRegistry();
    const removed = await next.sweepDeadHosts();
    expect(removed.sort()).toEqual(expect.arrayContaining([...segments].sort()));
    expect(listSegments(registry.dir, hostPid)).toEqual([]);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}
