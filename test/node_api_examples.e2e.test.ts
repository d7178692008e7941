/**
 * End to end with the example packs: NumpyLegacyNode (V1, numpy 1.26.4) and
 * NumpyModernNode (V3, numpy >= 2.1) run side by side in their own uv environments, each
 * seeing its own numpy; DeepDiffNode uses deepdiff, installed only in its environment; an
 * IMAGE made in the shared process crosses into both isolated packs and back.
 */
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EnvManager } from "../src/env/env_manager.ts";
import { HostCore } from "../src/process/host_core.ts";
import { Logger } from "../src/log.ts";
import { discoverPacks } from "../src/manifest/manifest.ts";
import { installNodeApi } from "../src/node_api/mod.ts";
import { NodeRegistry } from "../src/nodes/registry.ts";
import { ServiceRegistry } from "../src/rpc/services.ts";
import { SegmentRegistry } from "../src/values/segments.ts";
import { tensorValues } from "../src/values/view.ts";
import { TensorRef } from "../src/values/tensors.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");

let root: string;
let core: HostCore;
let registry: NodeRegistry;
let segments: SegmentRegistry;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-examples-"));
  const nodes = join(root, "custom_nodes");
  for (const name of ["NumpyLegacyNode", "NumpyModernNode", "DeepDiffNode"]) cpSync(join(repo, "examples", "custom_nodes", name), join(nodes, name), { recursive: true });
  cpSync(join(repo, "test", "fixtures", "node_packs", "SharedPlain"), join(nodes, "SharedPlain"), { recursive: true });
  const discovery = discoverPacks(nodes);
  expect(discovery.errors).toEqual([]);
  const packs = new Map(discovery.packs.map((p) => [p.name, p]));
  const envs = await EnvManager.create({ cacheDir: join(root, "cache"), python: hostPython });
  const built = await envs.build(discovery.packs.filter((p) => p.kind === "isolated"));
  expect(built.map((b) => [b.pack, b.status === "failed" ? b.error?.message : "ok"])).toEqual([
    ["DeepDiffNode", "ok"],
    ["NumpyLegacyNode", "ok"],
    ["NumpyModernNode", "ok"],
  ]);
  core = new HostCore({
    hostPython,
    packs: discovery.packs.map((p) => ({ name: p.name, path: p.path, kind: p.kind })),
    resolvePython: async (name) => envs.envPython(packs.get(name)!),
    services: new ServiceRegistry(),
    logger: new Logger(() => {}),
    exitHooks: false,
  });
  installNodeApi(core, { folders: { baseDir: join(root, "comfy") } });
  segments = new SegmentRegistry();
  registry = new NodeRegistry({ core, segments, logger: new Logger(() => {}) });
  const load = await registry.load();
  expect(load.map((l) => [l.pack, l.source, l.error?.message])).toEqual([
    ["DeepDiffNode", "process", undefined],
    ["NumpyLegacyNode", "process", undefined],
    ["NumpyModernNode", "process", undefined],
    ["SharedPlain", "process", undefined],
  ]);
}, 600_000);

afterAll(async () => {
  await core?.close();
  segments?.releaseAll();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("example packs", () => {
  it("each numpy pack sees its own numpy", async () => {
    expect((await registry.run("NumpyLegacyVersion")).outputs).toEqual(["1.26.4"]);
    const [modern] = (await registry.run("NumpyModernVersion", { label: "numpy" })).outputs as [string];
    const [, version] = modern.split(" ");
    expect(modern.startsWith("NUMPY 2.")).toBe(true);
    expect(Number(version!.split(".")[1])).toBeGreaterThanOrEqual(1);
  });

  it("schemas of both API styles", () => {
    const info = registry.objectInfo();
    expect(info.NumpyLegacyInvert?.input).toEqual({ required: { image: ["IMAGE"], strength: ["FLOAT", { default: 1.0, min: 0.0, max: 1.0, step: 0.01 }] } });
    expect(info.NumpyLegacyInvert?.python_module).toBe("custom_nodes.NumpyLegacyNode");
    expect(info.NumpyModernBrightness?.input).toEqual({
      required: { image: ["IMAGE", {}], amount: ["FLOAT", { default: 0.1, min: -1.0, max: 1.0, step: 0.01 }] },
    });
    expect(info.DeepDiffCompare?.output_node).toBe(true);
  });

  it("an IMAGE made in the shared process crosses into both numpy packs and back", async () => {
    const [image] = (await registry.run("PlainGradient", { width: 4, height: 1 })).outputs;
    expect(image).toBeInstanceOf(TensorRef);
    registry.retain(image);
    const legacy = await registry.run("NumpyLegacyInvert", { image, strength: 1.0 });
    const modern = await registry.run("NumpyModernBrightness", { image, amount: 0.5 });
    registry.retain([legacy.outputs, modern.outputs]);
    expect(legacy.outputs[1]).toBe("1.26.4");
    const inverted = await tensorValues(legacy.outputs[0] as TensorRef);
    const brighter = await tensorValues(modern.outputs[0] as TensorRef);
    const ramp = [0, 1 / 3, 2 / 3, 1];
    ramp.forEach((v, i) => {
      for (let c = 0; c < 3; c++) {
        expect(inverted[i * 3 + c]).toBeCloseTo(1 - v, 5);
        expect(brighter[i * 3 + c]).toBeCloseTo(Math.min(1, v + 0.5), 5);
      }
    });
    registry.release([image, legacy.outputs, modern.outputs]);
  });

  it("DeepDiffNode compares with deepdiff from its own environment", async () => {
    const r = await registry.run("DeepDiffCompare", { left: '{"a": 1, "b": [1, 2]}', right: '{"a": 2, "b": [2, 1]}', ignore_order: true });
    const [report, identical] = r.outputs as [string, boolean];
    expect(identical).toBe(false);
    expect(JSON.parse(report)).toEqual({ values_changed: { "root['a']": { new_value: 2, old_value: 1 } } });
    expect(r.ui).toEqual({ text: [report] });
  });
});
