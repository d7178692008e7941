/**
 * Remote object handles end to end, through `createHost` with real processes: the fixture
 * packs of `test/fixtures/handle_packs/` — `HandleShared` (no manifest: the shared process)
 * makes a ModelPatcher-like `FakeModel`, a CLIP-like `CLIP` and a CONDITIONING holding a
 * model object; `HandleUser` (isolated, its own process) uses them through proxies, and
 * makes and uses objects of its own. Each node reports what it saw as JSON in `ui.text`.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/executor/executor.ts";
import type { Prompt } from "../src/executor/types.ts";
import { createHost, type Host } from "../src/host.ts";
import { Logger } from "../src/log.ts";
import { RemoteHandle } from "../src/values/handles.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");
/** A checkout of the real pack ComfyUI-PyIsolated, when this machine has one (CI does not). */
const pyIsolatedPack = join(process.env.PYISOLATE_EXT_PACKS ?? join(repo, "..", "ext"), "ComfyUI-PyIsolated");
const realSource = existsSync(join(pyIsolatedPack, "nodes.py")) ? readFileSync(join(pyIsolatedPack, "nodes.py"), "utf8") : null;
// Revisions up to d720f6d use `os` in TestCLIPProxy_APISO without importing it (a NameError in ComfyUI too); 143bf91 imports it.
const haveRealPack = realSource !== null && /^import os$/m.test(realSource);
if (!haveRealPack) {
  const why = realSource === null ? `no checkout at ${pyIsolatedPack}` : `the checkout at ${pyIsolatedPack} uses os without importing it (a revision before upstream's 143bf91)`;
  console.log(`handles: not running ComfyUI-PyIsolated's TestCLIPProxy_APISO: ${why}; set PYISOLATE_EXT_PACKS to a folder holding a working checkout`);
}

let root: string;
let host: Host;
const lines: string[] = [];

/** The first `ui.text` of node `id`, parsed as JSON. */
function ui(r: RunResult, id: string): Record<string, any> {
  const text = (r.outputs[id] as { text?: string[] } | undefined)?.text?.[0];
  expect(typeof text, `node ${id} reports (status ${r.status}: ${JSON.stringify(r.error)})`).toBe("string");
  return JSON.parse(text!) as Record<string, any>;
}

/** `$obj.stats()` of a process: its object table and its live proxies. */
async function stats(process: "shared" | "HandleUser"): Promise<{ objects: number; proxies: number; epoch: string }> {
  const proc = process === "shared" ? host.core.shared : host.core.processFor(process);
  return (await proc.call("$obj", "stats")) as { objects: number; proxies: number; epoch: string };
}

/** Polls until `pred` holds: releases travel as events, a moment after a run ends (a liveness bound, not a speed check). */
async function until(pred: () => Promise<boolean> | boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what} (the host holds ${JSON.stringify(host.core.handles.list())})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-handles-"));
  cpSync(join(repo, "test", "fixtures", "handle_packs"), join(root, "custom_nodes"), { recursive: true });
  if (haveRealPack) cpSync(pyIsolatedPack, join(root, "custom_nodes", "ComfyUI-PyIsolated"), { recursive: true, filter: (src) => !src.includes("/.git") });
  host = await createHost({
    customNodes: join(root, "custom_nodes"),
    cacheDir: join(root, "cache"),
    python: hostPython,
    baseDir: join(root, "comfy"),
    logger: new Logger((_level, line) => lines.push(line)),
  });
  expect(host.packs.map((p) => [p.name, p.kind, p.nodes, p.error?.message])).toEqual([
    ...(haveRealPack ? [["ComfyUI-PyIsolated", "isolated", 5, undefined]] : []),
    ["HandleShared", "shared", 5, undefined],
    ["HandleUser", "isolated", 10, undefined],
  ]);
}, 300_000);

afterAll(async () => {
  await host?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("an object used in the process that made it", () => {
  it("is the identical object, not a proxy, from a loader to a user in one isolated pack", async () => {
    const r = await host.run({
      "1": { class_type: "HUSameLoad", inputs: { tag: "t1" } },
      "2": { class_type: "HUSameCheck", inputs: { model: ["1", 0], tag: "t1" } },
    });
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    expect(ui(r, "2")).toEqual({ identical: true, is_proxy: false, type: "Local", tag: "t1", objects: 1 });
    // Nothing crossed between processes: no hint.
    expect(lines.some((l) => l.includes("crosses processes"))).toBe(false);
  });
});

describe("an object of the shared process used from an isolated pack", () => {
  it("forwards method calls, values, new handles, callbacks and attribute writes", async () => {
    lines.length = 0;
    const prompt: Prompt = {
      "1": { class_type: "HSLoadModel", inputs: { name: "sd", seed: 1 } },
      "2": { class_type: "HUUseModel", inputs: { model: ["1", 0], factor: 10 } },
    };
    const r = await host.run(prompt);
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    const out = ui(r, "2");
    const sharedPid = host.core.shared.pid;
    expect(out.pid).toBe(host.core.processFor("HandleUser").pid);
    expect(out).toMatchObject({
      type: "FakeModel",
      is_proxy: true,
      describe: { name: "sd", seed: 1, scale: 1, pid: sharedPid },
      apply: [2, 3, 4, 5], // ones * (arange(4) + 1) * 1 + 1
      name: "sd",
      weight: [1, 2, 3, 4],
      clone_is_proxy: true,
      clone_is_model: false,
      wrappers: ["times"],
      apply_wrapped: [10, 20, 30, 40], // the callback ran in HandleUser, called from the shared process
      callback_ran_here: true,
      scale_back: 3,
      apply_scaled: [30, 60, 90, 120],
      len: 4,
      iter: [1, 2, 3, 4],
      item: 3,
      entered: 1,
      with_is_model: true,
      exited: 0,
      async: 42,
      sync_of_async: 8,
      same_as: true,
      hasattr_missing: false,
      copy_is_proxy: true,
    });
    expect(out.pickle_error).toMatch(/^Cannot pickle the HandleShared\.FakeModel object: this is a proxy, and the object itself lives in the shared process/);
    // The clone is the node's MODEL output: a handle of the shared process, in the cache.
    // (The user's proxies are released a moment after the node returns.)
    await until(() => host.core.handles.size === 2, "the host holds only the cached handles");
    const handles = host.core.handles.list();
    expect(handles.map((h) => [h.owner, h.type, h.producer?.nodeId, h.retained]).sort()).toEqual([
      ["shared", "HandleShared.FakeModel", "1", 1],
      ["shared", "HandleShared.FakeModel", "2", 1],
    ]);
    // The scheduling hint, once for the run.
    const hints = lines.filter((l) => l.includes("crosses processes"));
    expect(hints).toEqual([
      "][ HandleUser - node 2 (HUUseModel) uses a HandleShared.FakeModel object made by node 1 (HSLoadModel, pack HandleShared) in another process: every call on it crosses processes; run both nodes in one process to avoid that (docs/handles.md)",
    ]);
  });

  it("a wrapper of another process is called as a plain function from a running event loop, and calls the owner back with keywords", async () => {
    const r = await host.run({
      "1": { class_type: "HSLoadModel", inputs: { name: "sd", seed: 1 } },
      "2": { class_type: "HUWrapThrough", inputs: { model: ["1", 0], offset: 5.0 } },
      "3": { class_type: "HSApplyAsync", inputs: { model: ["2", 0] } },
      "4": { class_type: "HSApplyAsync", inputs: { model: ["1", 0] } },
    });
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    // (ones * (arange(4) + 1) + 5) * 2, summed: the keyword reached `inner` as `offset`.
    const value = (id: string) => (r.outputs[id] as { value: unknown[] }).value.map(Number);
    expect(value("3")).toEqual([60]);
    expect(value("4")).toEqual([10]); // unwrapped: ones * (arange(4) + 1)
  });

  it("carries a handle nested in a CONDITIONING-shaped list", async () => {
    const r = await host.run({
      "1": { class_type: "HSControlCond", inputs: { strength: 0.25 } },
      "2": { class_type: "HUReadCond", inputs: { conditioning: ["1", 0] } },
    });
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    expect(ui(r, "2")).toEqual({ shape: [1, 2, 4], entry_type: "list", control_is_proxy: true, kind: "control", strength: 0.25, strength_plain: 0.25 });
    const held = host.core.handles.list().filter((h) => h.type === "HandleShared.Control");
    expect(held).toHaveLength(1);
    expect(held[0]!.retained).toBe(1);
  });

  it("runs a TestCLIPProxy_APISO-like V3 node on a CLIP of another pack", async () => {
    const r = await host.run({
      "1": { class_type: "HSLoadClip", inputs: {} },
      "2": { class_type: "HUTestClip", inputs: { clip: ["1", 0], text: "a photo of a cat" } },
      "3": { class_type: "HUShowText", inputs: { text: ["2", 1] } },
    });
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    expect((r.outputs["3"] as { text: string[] }).text[0]).toBe(["Isolated: True", "CLIP type: CLIP", "tokenize: keys=['l']", "encode: shape=(1, 5, 8)"].join("\n"));
  });

  it.runIf(haveRealPack)("runs ComfyUI-PyIsolated's TestCLIPProxy_APISO, unmodified, on a CLIP of another pack", async () => {
    const r = await host.run({
      "1": { class_type: "HSLoadClip", inputs: {} },
      "2": { class_type: "TestCLIPProxy_APISO", inputs: { clip: ["1", 0], text: "a photo of a cat" } },
      "3": { class_type: "HUShowText", inputs: { text: ["2", 1] } },
      "4": { class_type: "HUCondShape", inputs: { conditioning: ["2", 0] } },
    });
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    // The node reports encode's shape only for a tuple entry; ComfyUI's CLIP (and this one) give lists.
    expect((r.outputs["3"] as { text: string[] }).text[0]).toBe(["Isolated: True", "CLIP type: CLIP", "tokenize: keys=['l']"].join("\n"));
    // Its CONDITIONING (made by the CLIP's owner, passed on by the real node) reaches a third node.
    // Five words, each a token (the sum of its characters' codes mod 1000: "a" is 97), 8 wide.
    expect(ui(r, "4")).toEqual({ shape: [1, 5, 8], pooled: [1, 8], first: 97 });
  });

  it("releases an object once the output cache drops it: the owner's table is back to empty", async () => {
    // Run something unrelated: the cache keeps only this prompt's nodes.
    const r = await host.run({ "1": { class_type: "HUStats", inputs: { n: 1 } } });
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    await until(async () => (await stats("shared")).objects === 0, "the shared process holds no object");
    await until(async () => (await stats("HandleUser")).objects === 0, "HandleUser holds no object");
    expect(host.core.handles.size).toBe(0);
    expect((await stats("HandleUser")).proxies).toBe(0);
  });
});

describe("lifetimes", () => {
  it("an owner crashing mid-workflow fails the node with an error naming the object's node and pack, and the next run makes it anew", async () => {
    const user = host.core.processFor("HandleUser");
    const before = (await stats("HandleUser")).epoch;
    const prompt: Prompt = {
      "1": { class_type: "HUSameLoad", inputs: { tag: "c" } },
      "2": { class_type: "HSCrash", inputs: { model: ["1", 0] } },
    };
    const r = await host.run(prompt);
    expect(r.status).toBe("error");
    expect(r.error?.node_id).toBe("2");
    expect(String(r.error?.exception_message)).toMatch(
      /The HandleUser\.HUSameLoad\.load\.<locals>\.Local object made by node 1 \(HUSameLoad\) of pack "HandleUser" is gone: it lived in process "HandleUser", which exited while crash\(\) ran on it/,
    );
    await until(() => user.state === "exited", "HandleUser is seen as exited");
    // The cached output of node 1 holds a gone object: node 1 runs again, in a new process
    // start (a new epoch: no stale id is resurrected). Node 2 asks it to crash again.
    const again = await host.run(prompt);
    expect(again.nodes.find((n) => n.id === "1")?.status).toBe("executed");
    expect(again.status).toBe("error");
    expect((await stats("HandleUser")).epoch).not.toBe(before);
    // And a workflow that does not crash it works on the restarted process.
    const ok = await host.run({
      "1": { class_type: "HUSameLoad", inputs: { tag: "c" } },
      "2": { class_type: "HUSameCheck", inputs: { model: ["1", 0], tag: "c" } },
    });
    expect(ok.status, JSON.stringify(ok.error)).toBe("success");
    expect(ui(ok, "2").identical).toBe(true);
  });

  it("a stale handle sent to the restarted owner is refused, not resolved", async () => {
    const stale = new RemoteHandle({ id: "00000000.deadbeef", owner: "HandleUser", type: "x.Y", repr: "<x.Y>" });
    const err = await host.registry.execute("HUSameCheck", { model: [stale], tag: ["c"] }, {}, "9").catch((e: unknown) => e);
    expect(String((err as Error).message)).toMatch(/The x\.Y handle 00000000\.deadbeef of process "HandleUser" is not held by the host/);
  });

  it("1,000 runs of a handle-passing workflow keep the owner's table, the user's proxies and the host's memory flat", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const prompt = (seed: number): Prompt => ({
      "1": { class_type: "HSLoadModel", inputs: { name: "loop", seed } },
      "2": { class_type: "HUStep", inputs: { model: ["1", 0] } },
    });
    const sample = async (i: number) => {
      gc();
      await new Promise((r) => setTimeout(r, 20));
      gc();
      const u = await host.run({ "9": { class_type: "HUStats", inputs: { n: i } }, ...prompt(i) });
      await until(() => host.core.handles.size === 2, "the host holds only the cached handles");
      return { heap: process.memoryUsage().heapUsed, user: ui(u, "9"), shared: await stats("shared"), host: host.core.handles.size };
    };
    for (let i = 0; i < 100; i++) expect((await host.run(prompt(i))).status).toBe("success");
    const early = await sample(100);
    for (let i = 101; i < 1000; i++) {
      const r = await host.run(prompt(i));
      if (r.status !== "success") throw new Error(`run ${i}: ${JSON.stringify(r.error)}`);
    }
    const late = await sample(1000);
    // The cache holds the last run's two MODEL outputs; the shared process holds those two
    // objects; the user process holds no proxy once the run is over.
    expect([early.host, late.host]).toEqual([2, 2]);
    await until(async () => (await stats("shared")).objects === 2, "the shared process holds the two cached objects");
    expect(late.shared.objects).toBeLessThanOrEqual(early.shared.objects + 1);
    expect(late.user.proxies).toBeLessThanOrEqual(2);
    expect(late.user.callbacks).toBeLessThanOrEqual(early.user.callbacks + 20);
    const growth = late.heap - early.heap;
    console.log(`1,000 runs: host heap ${(early.heap / 2 ** 20).toFixed(1)} → ${(late.heap / 2 ** 20).toFixed(1)} MiB; shared objects ${early.shared.objects} → ${late.shared.objects}; user proxies ${early.user.proxies} → ${late.user.proxies}, callbacks ${early.user.callbacks} → ${late.user.callbacks}; host handles ${early.host} → ${late.host}`);
    expect(growth).toBeLessThan(8 * 2 ** 20);
  }, 300_000);
});
