import { afterEach, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decode, encode } from "../src/protocol/codec.ts";
import { tuple } from "../src/protocol/py_types.ts";
import { NdArrayRef, TensorRef, collectTensorRefs } from "../src/values/tensors.ts";
import { rmSync } from "node:fs";
import { SegmentRegistry, listSegments, newHostId, segmentHostId } from "../src/values/segments.ts";
import { tensorValues, viewTensor } from "../src/values/view.ts";
import { runtime as nodeRuntime } from "../adapters/node.ts";
import { runPython, startSegmentWriter } from "./tensors_util.ts";

const registry = new SegmentRegistry();

afterEach(() => {
  registry.releaseAll();
  expect(listSegments(registry.dir, process.pid)).toEqual([]);
});

describe("TensorRef through the codec", () => {
  it("decodes tag 41501 and re-encodes exactly the same bytes", () => {
    const bytes = runPython(`result = {"image": torch.rand(1, 8, 8, 3), "seed": 2**64 - 1, "pair": (1, [2])}`);
    const value = decode(bytes) as { image: TensorRef; seed: bigint; pair: unknown[] };
    expect(value.image).toBeInstanceOf(TensorRef);
    expect(value.image.shape).toEqual([1, 8, 8, 3]);
    expect(value.image.strides).toEqual([192, 24, 3, 1]);
    expect(value.image.dtype).toBe("float32");
    expect(value.image.nbytes).toBe(8 * 8 * 3 * 4);
    expect(value.seed).toBe(2n ** 64n - 1n);
    expect(Buffer.from(encode(value))).toEqual(Buffer.from(bytes));
  });

  it("decodes numpy arrays (tag 41505) and re-encodes them exactly", () => {
    const bytes = runPython(`result = [np.arange(6, dtype=np.int64).reshape(2, 3)[:, ::-1], np.zeros(0)]`);
    const [a, empty] = decode(bytes) as NdArrayRef[];
    expect(a).toBeInstanceOf(NdArrayRef);
    expect(a!.isNumpy).toBe(true);
    expect(a!.numpyDtype).toBe("<i8");
    expect(a!.strides).toEqual([3, -1]);
    expect(empty!.segment).toBe("");
    expect(Buffer.from(encode([a, empty]))).toEqual(Buffer.from(bytes));
  });

  it("finds every TensorRef in nested values", () => {
    const v = decode(runPython(`result = [[torch.ones(2), {"pooled_output": torch.ones(3), "n": 1}], {"samples": torch.zeros(1, 4, 2, 2)}]`));
    const refs = collectTensorRefs(v);
    expect(refs.map((r) => r.shape)).toEqual([[2], [3], [1, 4, 2, 2]]);
    expect(collectTensorRefs(new Map([["a", tuple(refs[0])]]))).toEqual([refs[0]]);
  });
});

describe("viewTensor", () => {
  it("views a segment without copying, through koffi's mmap", async () => {
    const ref = decode(runPython(`result = torch.arange(1024, dtype=torch.float32)`)) as TensorRef;
    registry.retain(ref);
    const view = await viewTensor(ref, { runtime: nodeRuntime });
    expect(view.zeroCopy).toBe(true);
    expect(view.data).toBeInstanceOf(Float32Array);
    expect(view.data![1023]).toBe(1023);
    // The view is the shared pages themselves: a change to the file shows through it.
    const f = await import("node:fs");
    const fd = f.openSync(registry.path(ref.segment), "r+");
    f.writeSync(fd, new Uint8Array(new Float32Array([42]).buffer), 0, 4, 4 * 1000);
    f.closeSync(fd);
    expect(view.data![1000]).toBe(42);
    // Writing into the view changes only this process's copy, never the segment.
    view.data![0] = -1;
    const fresh = await viewTensor(ref, { runtime: nodeRuntime });
    expect(fresh.data![0]).toBe(0);
    fresh.unmap();
    view.unmap();
  });

  it("falls back to a copying read when mapping is off", async () => {
    const ref = decode(runPython(`result = torch.arange(10, dtype=torch.int64)`)) as TensorRef;
    registry.retain(ref);
    process.env.PYISOLATE_MAPFILE = "copy";
    try {
      const view = await viewTensor(ref, { runtime: nodeRuntime });
      expect(view.zeroCopy).toBe(false);
      expect([...(view.data as BigInt64Array)]).toEqual([...Array(10).keys()].map(BigInt));
      view.unmap();
    } finally {
      delete process.env.PYISOLATE_MAPFILE;
    }
  });

  it("reads values in logical order for strided tensors and numpy arrays", async () => {
    const [t, a, b] = decode(
      runPython(`result = [torch.arange(6, dtype=torch.int32).reshape(2, 3).t(), np.arange(5, dtype=np.float64)[::-1], torch.tensor([True, False, True])]`),
    ) as TensorRef[];
    registry.retain([t, a, b]);
    expect(t!.strides).toEqual([1, 3]);
    expect(await tensorValues(t!)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(await tensorValues(a!)).toEqual([4, 3, 2, 1, 0]);
    expect(await tensorValues(b!)).toEqual([1, 0, 1]);
  });

  it("says so when the segment was already released", async () => {
    const ref = decode(runPython(`result = torch.ones(4)`)) as TensorRef;
    registry.retain(ref);
    registry.release(ref);
    await expect(viewTensor(ref)).rejects.toThrow(/is gone: it was released/);
  });
});

describe("SegmentRegistry", () => {
  it("counts references and unlinks a segment when the last one goes", () => {
    const v = decode(runPython(`t = torch.ones(8)\nresult = {"a": t, "b": [t.clone()]}`)) as { a: TensorRef; b: TensorRef[] };
    const [a, b] = [v.a.segment, v.b[0]!.segment];
    expect(registry.retain(v)).toBe(2);
    registry.retain(v.a);
    expect(registry.refCount(a)).toBe(2);
    expect(registry.release(v)).toEqual([b]);
    expect(existsSync(registry.path(b))).toBe(false);
    expect(existsSync(registry.path(a))).toBe(true);
    expect(registry.release(v.a)).toEqual([a]);
    expect(existsSync(registry.path(a))).toBe(false);
    expect(registry.retained()).toEqual([]);
  });

  it("removes every segment of this host on releaseAll, seen or not", () => {
    decode(runPython(`result = [torch.ones(3), torch.zeros(3)]`)); // never retained
    expect(registry.onDisk()).toHaveLength(2);
    expect(registry.releaseAll()).toHaveLength(2);
    expect(registry.onDisk()).toEqual([]);
  });

  it("sweeps the segments of a host killed with SIGKILL, and keeps those of live hosts", async () => {
    const dead = await startSegmentWriter(3);
    const live = await startSegmentWriter(1);
    try {
      expect(dead.names.every((n) => segmentHostId(n) === String(dead.pid))).toBe(true);
      await dead.kill();
      for (const n of dead.names) expect(existsSync(registry.path(n))).toBe(true); // left behind
      const removed = await registry.sweepDeadHosts();
      expect(removed.sort()).toEqual([...dead.names].sort());
      for (const n of dead.names) expect(existsSync(registry.path(n))).toBe(false);
      expect(existsSync(registry.path(live.names[0]!))).toBe(true);
    } finally {
      await live.kill();
      await new SegmentRegistry({ hostId: String(live.pid) }).close();
    }
  });

  it("keeps folders that have no liveness socket, and files that are not segments", async () => {
    const id = newHostId();
    const folder = join(registry.dir, `pyisolate-${id}`);
    const odd = join(registry.dir, "pyisolate-notapid-x");
    writeFileSync(odd, "x");
    mkdirSync(folder);
    writeFileSync(join(folder, `pyisolate-${id}-00ff`), "x");
    try {
      expect(await registry.sweepDeadHosts()).toEqual([]);
      expect(existsSync(odd)).toBe(true);
      expect(existsSync(join(folder, `pyisolate-${id}-00ff`))).toBe(true);
    } finally {
      unlinkSync(odd);
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it("keeps the segments of another live host in the same process", async () => {
    const a = new SegmentRegistry({ hostId: newHostId() });
    const b = new SegmentRegistry({ hostId: newHostId() });
    await a.claim();
    await b.claim();
    try {
      const v = decode(runPython(`result = torch.ones(4)`, { hostId: b.hostId })) as TensorRef;
      b.retain(v);
      expect(await a.sweepDeadHosts()).toEqual([]);
      await a.close();
      expect(existsSync(b.path(v.segment))).toBe(true);
      expect(existsSync(a.hostDir)).toBe(false);
    } finally {
      await a.close();
      await b.close();
    }
    expect(existsSync(b.hostDir)).toBe(false);
  });
});
