/**
 * The shared end-to-end suite: the whole framework under the runtime that runs it, with real
 * uv environments, real Python processes, real Unix sockets and real `/dev/shm` segments.
 * Runner-neutral, like the contract suite: each runtime's caller passes its `describe`/`it`
 * and the runtime's name.
 *
 * Three packs, copied from `test/shared/e2e_packs/` into a temporary `custom_nodes` folder:
 * `E2eMaker` and `E2eRelay` are isolated (a `pyisolate.yaml`, share_torch, no dependencies, so
 * their environments build fast), `E2eShared` has no manifest and runs in the shared process.
 *
 * The tests run in order and share one host (the runners have no common `beforeAll`): the
 * first builds it, the last closes it and starts a second host from the metadata cache.
 * @module
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  createHost,
  isTuple,
  Logger,
  PyisolateError,
  RemoteError,
  TensorRef,
  tuple,
  viewTensor,
  type Host,
  type HostOptions,
  type Prompt,
} from "../../src/mod.ts";
import { detectRuntime, getRuntime } from "../../src/internals.ts";
import type { RuntimeName, TestApi } from "./api.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PACKS = fileURLToPath(new URL("./e2e_packs/", import.meta.url));
const PYTHON = process.env.PYISOLATE_PYTHON || join(ROOT, ".venv", "bin", "python");
const SHM_DIR = process.env.PYISOLATE_SHM_DIR || "/dev/shm";

/** Ceiling for a test that builds environments and starts processes (not a speed check). */
const SLOW_MS = 180_000;
/** Ceiling for a test over running processes. */
const CALL_MS = 60_000;

const MAX_U64 = 2n ** 64n - 1n;

/** `Math.fround((7x + 13y + 3c + seed % 256) % 256 / 255)`: E2eMaker's `make_image`, element by element. */
function expectedImage(width: number, height: number, seed: bigint): number[] {
  const s = Number(seed % 256n);
  const out: number[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) out.push(Math.fround(((7 * x + 13 * y + 3 * c + s) % 256) / 255));
    }
  }
  return out;
}

/** The tensor segments on disk of the hosts with these ids (and whether their folders remain). */
function ownSegments(...hostIds: string[]): string[] {
  const out: string[] = [];
  for (const id of hostIds) {
    const folder = `${SHM_DIR}/pyisolate-${id}`;
    try {
      out.push(...readdirSync(folder).filter((n) => n.startsWith(`pyisolate-${id}-`)));
    } catch {
      continue; // the folder is gone: nothing left
    }
    out.push(`(folder ${folder})`);
  }
  return out.sort();
}

/** The first `ui.text` entry of a node's output, parsed as JSON. */
function uiJson(outputs: Record<string, Record<string, unknown>>, id: string): Record<string, unknown> {
  const text = (outputs[id]?.text as string[] | undefined)?.[0];
  assert.equal(typeof text, "string", `node ${id} shows a text (outputs: ${JSON.stringify(Object.keys(outputs))})`);
  return JSON.parse(text!) as Record<string, unknown>;
}

/** The shared state of one run of the suite. */
interface E2eState {
  root: string;
  lines: string[];
  host: Host | undefined;
}

/**
 * Registers the e2e suite with a runtime's test runner.
 * @param t the runner's `describe`/`it`
 * @param runtime the runtime the caller runs under; the suite checks it is the one detected
 */
export function defineE2eTests(t: TestApi, runtime: RuntimeName): void {
  let state: E2eState | undefined;

  const options = (s: E2eState): HostOptions => ({
    customNodes: join(s.root, "custom_nodes"),
    cacheDir: join(s.root, "cache"),
    python: PYTHON,
    baseDir: join(s.root, "comfy"),
    outputDir: join(s.root, "output"),
    logger: new Logger((_level, line) => s.lines.push(line)),
  });

  /** The host the first test started (every later test needs it). */
  const host = (): Host => {
    assert.ok(state?.host, "the host of the first test is running");
    return state.host;
  };

  t.describe(`End to end (${runtime})`, () => {
    t.it("builds an isolated pack's environment, lists every pack's nodes", async () => {
      assert.equal(detectRuntime(), runtime);
      assert.equal((await getRuntime()).name, runtime);
      const root = mkdtempSync(join(tmpdir(), `pyisolate-e2e-${runtime}-`));
      cpSync(PACKS, join(root, "custom_nodes"), { recursive: true });
      state = { root, lines: [], host: undefined };
      state.host = await createHost(options(state));
      const h = state.host;
      h.core.services.register("E2eHost", {
        greet: (name: string) => `hello ${name}, from ${runtime}`,
        refuse: (name: string) => {
          throw new PyisolateError("USAGE", `E2eHost refuses ${name}.`);
        },
      });

      assert.deepEqual(
        h.packs.map((p) => [p.name, p.kind, p.source, p.nodes, p.env, p.error?.message]),
        [
          ["E2eMaker", "isolated", "process", 3, "built", undefined],
          ["E2eRelay", "isolated", "process", 2, "built", undefined],
          ["E2eShared", "shared", "process", 1, "shared", undefined],
        ],
      );
      const nodes = h.nodes();
      assert.deepEqual(Object.keys(nodes).sort(), ["E2eBigValue", "E2eCheckImage", "E2eDescribe", "E2eForward", "E2eMakeImage", "E2eSharedInfo"]);
      assert.deepEqual(nodes.E2eMakeImage?.input.required?.seed, ["INT", { default: 0, min: 0, max: 2 ** 64 - 1 }]);
      assert.deepEqual(nodes.E2eForward?.output, ["IMAGE", "STRING"]);
      assert.equal(nodes.E2eCheckImage?.output_node, true);
      // The isolated packs run in processes of their own, on their own environments.
      const procs = h.core.processes();
      const maker = h.core.processFor("E2eMaker");
      const relay = h.core.processFor("E2eRelay");
      assert.equal(procs.length, 3);
      assert.notEqual(maker.pid, relay.pid);
      assert.ok(state.lines.some((l) => l.startsWith("][ E2eMaker")), state.lines.join("\n"));
    }, SLOW_MS);

    t.it("calls Python from the host and the host from Python; a Python exception is a RemoteError with its traceback", async () => {
      const maker = host().core.processFor("E2eMaker");
      assert.equal(await maker.call("E2eMaker", "add", [2, 40]), 42);
      // Python → host: a host service, and the host's error raised in Python.
      const [greeting, refused] = (await maker.call("E2eMaker", "ask_host", ["ann"])) as [string, string];
      assert.equal(greeting, `hello ann, from ${runtime}`);
      assert.match(refused, /E2eHost refuses ann\./);
      // A TS function crosses as a callable: Python calls back into this thread.
      const seen: unknown[] = [];
      const doubled = await maker.call("E2eMaker", "apply", [(x: number) => (seen.push(x), x * 2), 21]);
      assert.equal(doubled, 42);
      assert.deepEqual(seen, [21]);

      const err = await maker.call("E2eMaker", "fail", [-3]).then(
        () => assert.fail("the call should have raised"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof RemoteError, `a RemoteError, got ${String(err)}`);
      assert.equal(err.code, "REMOTE");
      assert.equal(err.pythonType, "ValueError");
      assert.equal(err.pythonMessage, "check_value refused -3: negative values are not allowed");
      assert.match(err.traceback, /Traceback \(most recent call last\)/);
      assert.match(err.traceback, /E2eMaker[/\\]__init__\.py", line \d+, in check_value/);
      assert.match(err.traceback, /raise ValueError\(/);
      assert.match(err.message, /E2eMaker/);
      // The process survives its exception.
      assert.equal(await maker.call("E2eMaker", "add", [1, 1]), 2);
    }, CALL_MS);

    t.it("a workflow moves an IMAGE from one isolated process to another and back, exactly and without copying", async () => {
      const h = host();
      const seed = MAX_U64;
      const prompt: Prompt = {
        "1": { class_type: "E2eMakeImage", inputs: { width: 8, height: 6, seed } },
        "2": { class_type: "E2eForward", inputs: { image: ["1", 0] } },
        "3": { class_type: "E2eCheckImage", inputs: { image: ["2", 0], width: 8, height: 6, seed, relay: ["2", 1] } },
        "4": { class_type: "E2eSharedInfo", inputs: { label: `from ${runtime}` } },
      };
      const result = await h.run(prompt);
      assert.equal(result.error, undefined, JSON.stringify(result.error));
      assert.equal(result.status, "success");
      assert.deepEqual(
        result.nodes.map((n) => [n.id, n.pack, n.isolated, n.status]).sort(),
        [
          ["1", "E2eMaker", true, "executed"],
          ["2", "E2eRelay", true, "executed"],
          ["3", "E2eMaker", true, "executed"],
          ["4", "E2eShared", false, "executed"],
        ],
      );
      const report = uiJson(result.outputs, "3") as {
        exact: boolean;
        dtype: string;
        shape: number[];
        segment: string | null;
        pid: number;
        relay: { segment: string | null; pid: number };
      };
      assert.equal(report.exact, true, "the image came back with every value exact");
      assert.equal(report.dtype, "torch.float32");
      assert.deepEqual(report.shape, [1, 6, 8, 3]);
      // Zero copy: the relay and the maker both read the one segment the maker wrote.
      const id = h.segments.hostId;
      assert.match(report.segment ?? "", new RegExp(`^${SHM_DIR}/pyisolate-${id}/pyisolate-${id}-[0-9a-zA-Z]+$`));
      assert.equal(report.relay.segment, report.segment);
      assert.notEqual(report.relay.pid, report.pid);
      assert.equal(report.pid, h.core.processFor("E2eMaker").pid);
      assert.equal(report.relay.pid, h.core.processFor("E2eRelay").pid);
      // The host holds that segment for the output cache; nothing else was written.
      assert.deepEqual(ownSegments(id), [`(folder ${SHM_DIR}/pyisolate-${id})`, report.segment!.slice(report.segment!.lastIndexOf("/") + 1)].sort());
      // The shared pack ran in the shared process and called the host (folder_paths).
      assert.deepEqual(result.outputs["4"], {
        text: [`from ${runtime}`],
        pid: [h.core.shared.pid],
        output_dir: [join(state!.root, "output")],
      });
    }, CALL_MS);

    t.it("integers above 2^53 and tuples vs lists cross exactly, through a node and through a call", async () => {
      const h = host();
      const result = await h.run({
        "1": { class_type: "E2eBigValue", inputs: { seed: MAX_U64 } },
        "2": { class_type: "E2eDescribe", inputs: { value: ["1", 0] } },
      });
      assert.equal(result.status, "success", JSON.stringify(result.error));
      const int = (v: bigint | number) => ({ int: String(v) });
      assert.deepEqual(uiJson(result.outputs, "2"), {
        dict: {
          seed: int(MAX_U64),
          pair: { tuple: [int(MAX_U64), int(7)] },
          items: { list: [int(MAX_U64 - 1n), int(7)] },
          nested: { list: [{ tuple: [int(1), int(2)] }, { list: [int(3), { tuple: [int(4)] }] }] },
        },
      });

      const maker = h.core.processFor("E2eMaker");
      const sent = [MAX_U64, -(2n ** 63n), 2 ** 53 - 1, tuple<number | bigint>(1, 2n ** 60n), [1, 2], tuple()];
      const [back, kinds, strs] = (await maker.call("E2eMaker", "echo", [sent])) as [unknown[], string[], string[]];
      assert.deepEqual(kinds, ["int", "int", "int", "tuple", "list", "tuple"]);
      assert.deepEqual(strs.slice(0, 3), [String(MAX_U64), String(-(2n ** 63n)), String(2 ** 53 - 1)]);
      assert.equal(back[0], MAX_U64);
      assert.equal(back[1], -(2n ** 63n));
      assert.equal(back[2], 2 ** 53 - 1);
      assert.equal(isTuple(back[3]), true);
      assert.deepEqual([...(back[3] as unknown[])], [1, 2n ** 60n]);
      assert.equal(isTuple(back[4]), false);
      assert.deepEqual(back[4], [1, 2]);
      assert.equal(isTuple(back[5]), true);
    }, CALL_MS);

    t.it(`TypeScript views a tensor's bytes in place (${runtime})`, async () => {
      const maker = host().core.processFor("E2eMaker");
      const [w, hgt, seed] = [32, 16, 2n ** 53n + 5n];
      const ref = (await maker.call("E2eMaker", "image", [w, hgt, seed])) as TensorRef;
      assert.ok(ref instanceof TensorRef);
      assert.deepEqual([ref.dtype, [...ref.shape], ref.device], ["float32", [1, hgt, w, 3], "cpu"]);
      const view = await viewTensor(ref);
      try {
        assert.equal(view.zeroCopy, true, `${runtime} maps tensor segments without copying`);
        assert.equal(view.bytes.byteLength, w * hgt * 3 * 4);
        assert.ok(view.data instanceof Float32Array);
        assert.ok(view.start === 0, "element [0, 0, 0, 0] is the first of the span");
        const expected = expectedImage(w, hgt, seed);
        const got = Array.from(view.data.subarray(0, expected.length));
        assert.deepEqual(got, expected);
      } finally {
        view.unmap();
      }
    }, CALL_MS);

    t.it("close() leaves no segment; a second host registers every node from the metadata cache, starting no process", async () => {
      const s = state;
      assert.ok(s, "the first test set the suite up");
      try {
        assert.ok(s.host, "the host of the first test is running");
        const first = s.host.segments.hostId;
        assert.ok(ownSegments(first).length > 1, "the cached IMAGE outputs hold segments until close()");
        await s.host.close();
        s.host = undefined;
        assert.deepEqual(ownSegments(first), []);

        s.lines.length = 0;
        const again = await createHost(options(s));
        try {
          assert.deepEqual(
            again.packs.map((p) => [p.name, p.source, p.nodes, p.env]),
            [
              ["E2eMaker", "cache", 3, "cached"],
              ["E2eRelay", "cache", 2, "cached"],
              ["E2eShared", "cache", 1, "shared"],
            ],
          );
          assert.deepEqual(Object.keys(again.nodes()).sort(), ["E2eBigValue", "E2eCheckImage", "E2eDescribe", "E2eForward", "E2eMakeImage", "E2eSharedInfo"]);
          assert.ok(again.core.processes().every((p) => p.starts === 0 && p.state === "idle"), "no process started");
          for (const pack of ["E2eMaker", "E2eRelay", "E2eShared"]) assert.ok(s.lines.includes(`][ ${pack} loaded from cache`), s.lines.join("\n"));
          assert.ok(!s.lines.some((l) => l.includes("just-in-time spawning")), s.lines.join("\n"));
          // The first node to run starts its process just in time.
          const r = await again.run({ "1": { class_type: "E2eSharedInfo", inputs: { label: "cached" } } });
          assert.equal(r.status, "success");
          assert.deepEqual(r.outputs["1"]?.text, ["cached"]);
        } finally {
          await again.close();
        }
        assert.deepEqual(ownSegments(first, again.segments.hostId), []);
      } finally {
        await s.host?.close();
        rmSync(s.root, { recursive: true, force: true });
        state = undefined;
      }
    }, SLOW_MS);
  });
}
