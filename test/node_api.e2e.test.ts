/**
 * End to end: the ComfyUI node API in real Python processes. Fixture packs of both API
 * styles load isolated (each in its own process and uv environment) and shared (together
 * in the shared process), list their schemas as ComfyUI would, and run with primitives,
 * combos, hidden inputs and ComfyUI's list semantics; an isolated node reaches every proxied
 * folder_paths and model_management function; an interrupt stops a running isolated node;
 * a metadata-cache hit registers nodes with no process started.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MetadataCache } from "../src/nodes/metadata_cache.ts";
import type { RemoteError } from "../src/protocol/remote_error.ts";
import { EnvManager } from "../src/env/env_manager.ts";
import { HostCore } from "../src/process/host_core.ts";
import { Logger } from "../src/log.ts";
import { discoverPacks, type PackInfo } from "../src/manifest/manifest.ts";
import { installNodeApi, type NodeApi, type NodeApiEvent } from "../src/node_api/mod.ts";
import { NodeRegistry, type PackLoad } from "../src/nodes/registry.ts";
import { ServiceRegistry } from "../src/rpc/services.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const fixtures = join(repo, "test", "fixtures", "node_packs");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");
const expected = JSON.parse(readFileSync(join(fixtures, "expected_object_info.json"), "utf8")) as Record<string, unknown>;

let root: string;
let envs: EnvManager;
/** One metadata cache per custom_nodes directory (entries are per pack name). */
const caches = new Map<string, MetadataCache>();

interface TestHost {
  core: HostCore;
  api: NodeApi;
  registry: NodeRegistry;
  load: PackLoad[];
  lines: string[];
  events: NodeApiEvent[];
  packs: Map<string, PackInfo>;
}

const hosts: TestHost[] = [];

/** A host over one custom_nodes directory, with its own services, the shared cache and envs. */
async function makeHost(customNodes: string, baseDir = join(root, "comfy")): Promise<TestHost> {
  const discovery = discoverPacks(customNodes);
  expect(discovery.errors).toEqual([]);
  const packs = new Map(discovery.packs.map((p) => [p.name, p]));
  await envs.build(discovery.packs.filter((p) => p.kind === "isolated"));
  const lines: string[] = [];
  let cache = caches.get(customNodes);
  if (!cache) caches.set(customNodes, (cache = new MetadataCache(join(root, `cache-${basename(customNodes)}`))));
  const logger = new Logger((_level, line) => lines.push(line));
  const core = new HostCore({
    hostPython,
    packs: discovery.packs.map((p) => ({ name: p.name, path: p.path, kind: p.kind })),
    resolvePython: async (name) => envs.envPython(packs.get(name)!),
    services: new ServiceRegistry(),
    logger,
    exitHooks: false,
  });
  const api = installNodeApi(core, { folders: { baseDir } });
  const events: NodeApiEvent[] = [];
  api.events.on((e) => events.push(e));
  const registry = new NodeRegistry({ core, cache, cacheKey: (name) => cache!.key(packs.get(name)!, envs.fingerprint(packs.get(name)!)), logger });
  const load = await registry.load();
  const host = { core, api, registry, load, lines, events, packs };
  hosts.push(host);
  return host;
}

function copyPack(name: string, into: string, withManifest: boolean): void {
  cpSync(join(fixtures, name), join(into, name), { recursive: true, filter: (src) => withManifest || !src.endsWith("pyisolate.yaml") });
}

async function rejection(p: Promise<unknown>): Promise<RemoteError> {
  try {
    await p;
  } catch (e) {
    return e as RemoteError;
  }
  throw new Error("expected the call to fail");
}

const HIDDEN = { prompt: { "12": { class_type: "X", inputs: {} } }, extra_pnginfo: { workflow: 1 }, unique_id: "12", prompt_id: "p-1" };
const PRIMITIVES = { count: [3], scale: [0.5], text: ["hi"], flag: [true], mode: ["mul"], extra: [4] };

let isolated: TestHost;
let shared: TestHost;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-nodeapi-"));
  envs = await EnvManager.create({ cacheDir: join(root, "cache"), python: hostPython });
  const isolatedDir = join(root, "custom_nodes");
  const sharedDir = join(root, "shared_nodes");
  for (const name of ["V1Basics", "V3Basics", "HostApis"]) {
    copyPack(name, isolatedDir, true);
    copyPack(name, sharedDir, false);
  }
  copyPack("SharedPlain", isolatedDir, false);
  mkdirSync(join(root, "comfy", "models", "checkpoints"), { recursive: true });
  writeFileSync(join(root, "comfy", "models", "checkpoints", "model.safetensors"), "weights");
  mkdirSync(join(root, "comfy", "input"), { recursive: true });
  writeFileSync(join(root, "comfy", "input", "photo.png"), "png");
  isolated = await makeHost(isolatedDir);
  shared = await makeHost(sharedDir, join(root, "comfy-shared"));
});

afterAll(async () => {
  await Promise.all(hosts.map((h) => h.core.close()));
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("loading", () => {
  it("starts one process per isolated pack and one shared process, and registers every node", () => {
    expect(isolated.load.map((l) => [l.pack, l.source])).toEqual([
      ["HostApis", "process"],
      ["SharedPlain", "process"],
      ["V1Basics", "process"],
      ["V3Basics", "process"],
    ]);
    expect(isolated.core.live().map((p) => p.name).sort()).toEqual(["HostApis", "V1Basics", "V3Basics", "shared"]);
    // isolated packs run on their own uv environment's Python, the shared process on the host's
    expect(isolated.core.processFor("V1Basics").python).toBe(envs.envPython(isolated.packs.get("V1Basics")!));
    expect(isolated.core.processFor("V1Basics").python).not.toBe(hostPython);
    expect(isolated.core.shared.python).toBe(hostPython);
    expect(isolated.registry.owner("V1Primitives")).toEqual({ pack: "V1Basics", process: "V1Basics", isolated: true });
    expect(isolated.registry.owner("PlainEcho")).toEqual({ pack: "SharedPlain", process: "shared", isolated: false });
    expect(shared.core.live().map((p) => p.name)).toEqual(["shared"]);
    expect(shared.registry.owner("V3Primitives")).toEqual({ pack: "V3Basics", process: "shared", isolated: false });
    expect(isolated.registry.webDirectories()).toEqual({ V1Basics: join(root, "custom_nodes", "V1Basics", "web") });
  });

  it.each(["isolated", "shared"])("lists schemas as ComfyUI emits them (%s)", (kind) => {
    const host = kind === "isolated" ? isolated : shared;
    const info = host.registry.objectInfo();
    expect(info.V1Primitives).toEqual(expected.V1Primitives);
    expect(info.V3Primitives).toEqual(expected.V3Primitives);
    expect(Object.keys(info).sort()).toEqual(
      [
        "HostApiProbe", "PathProbe", "PreviewProbe",
        "V1Checked", "V1Counter", "V1Double", "V1Primitives", "V1Range", "V1ShowText", "V1Sleeper", "V1Sum",
        "V3AsyncProgress", "V3Checked", "V3Double", "V3Primitives", "V3Range", "V3ShowText", "V3Sleeper", "V3Sum",
        ...(kind === "isolated" ? ["PlainEcho", "PlainGradient", "PlainMemoryEvents"] : []),
      ].sort(),
    );
    expect(host.registry.hasIsChanged("V1Checked")).toBe(true);
    expect(host.registry.hasValidateInputs("V3Checked")).toBe(true);
    expect(host.registry.hasIsChanged("V3Double")).toBe(false);
  });
});

describe.each(["isolated", "shared"])("executing (%s)", (kind) => {
  const host = (): TestHost => (kind === "isolated" ? isolated : shared);

  it.each(["V1", "V3"])("%s: primitives, a combo and hidden inputs", async (api) => {
    const inputs: Record<string, unknown[]> = { ...PRIMITIVES };
    if (api === "V1") inputs.seed = [2n ** 64n - 1n];
    const r = await host().registry.execute(`${api}Primitives`, inputs, HIDDEN, "12");
    const seed = api === "V1" ? `|${2n ** 64n - 1n}` : "";
    expect(r).toEqual({ outputs: [[7], [1.5], [`hi|True|mul${seed}|12|['12']|{'workflow': 1}`]], ui: null });
  });

  it.each(["V1", "V3"])("%s: ComfyUI's list semantics", async (api) => {
    const { registry } = host();
    expect((await registry.execute(`${api}Double`, { x: [1, 2, 3], k: [10, 100] }, {}, "1")).outputs).toEqual([[10, 200, 300]]);
    expect((await registry.execute(`${api}Sum`, { values: [1, 2, 3] }, {}, "2")).outputs).toEqual([[6], [3]]);
    expect((await registry.execute(`${api}Range`, { n: [2, 3] }, {}, "3")).outputs).toEqual([[0, 1, 0, 1, 2], ["n=2", "n=3"]]);
    expect(await registry.run(`${api}Double`, { x: 21, k: 2 })).toEqual({ outputs: [42], ui: null });
  });

  it.each(["V1", "V3"])("%s: ui outputs, IS_CHANGED and VALIDATE_INPUTS", async (api) => {
    const { registry } = host();
    expect(await registry.execute(`${api}ShowText`, { text: ["a", "b"] }, HIDDEN, "4")).toEqual({ outputs: [["A", "B"]], ui: { text: ["A", "B"] } });
    expect(await registry.isChanged(`${api}Checked`, { value: [3] }, {}, "5")).toEqual(["fingerprint-3"]);
    expect(await registry.validateInputs(`${api}Checked`, { value: [2] }, "5")).toBe(true);
    expect(await registry.validateInputs(`${api}Checked`, { value: [-1] }, "5")).toBe("value must be >= 0, got -1");
  });

  it("V3: async execute reports progress for its node", async () => {
    const { registry, events } = host();
    const before = events.length;
    expect((await registry.execute("V3AsyncProgress", { steps: [3] }, { prompt_id: "p-async" }, "31")).outputs).toEqual([["done 3 steps as node 31"]]);
    const progress = events.slice(before).filter((e) => e.type === "progress").map((e) => e.data);
    expect(progress).toEqual([1, 2, 3, 3].map((value) => ({ value, max: 3, node: "31", prompt_id: "p-async" })));
  });

  it("a node error carries the Python type and traceback", async () => {
    const e = await rejection(host().registry.execute("V1Double", { x: [1] }, {}, "1"));
    expect(e.pythonType).toBe("TypeError");
    expect(e.traceback).toContain("nodes_exec.py");
  });
});

describe("host services from an isolated node", () => {
  it("reaches every proxied folder_paths and model_management function", async () => {
    const { registry, api, events } = isolated;
    const base = join(root, "comfy");
    const extra = join(root, "extra_models");
    mkdirSync(extra, { recursive: true });
    writeFileSync(join(extra, "extra.ckpt"), "");
    api.promptServer.setClientId("c-42");
    const memoryBefore = (await registry.run("PlainMemoryEvents")).outputs;
    const before = events.length;
    const r = await registry.run("HostApiProbe", { folder: "checkpoints", filename: "model.safetensors", annotated: "photo.png [input]", extra_dir: extra });
    const out = r.outputs[0] as Record<string, unknown>;
    expect(out).toMatchObject({
      input_directory: join(base, "input"),
      output_directory: join(base, "output"),
      temp_directory: join(base, "temp"),
      models_dir: join(base, "models"),
      folder_paths_before: [join(base, "models", "checkpoints")],
      folder_paths_after: [join(base, "models", "checkpoints"), extra],
      supported_pt_extensions: [".bin", ".ckpt", ".pkl", ".pt", ".pt2", ".pth", ".safetensors", ".sft"],
      in_table: true,
      filename_list: ["extra.ckpt", "model.safetensors"],
      full_path: join(base, "models", "checkpoints", "model.safetensors"),
      missing_full_path: null,
      annotated_filepath: join(base, "input", "photo.png"),
      annotated_exists: true,
      annotated_split: ["photo.png", join(base, "input")],
      torch_device: "cpu",
      torch_device_name: "cpu",
      unet_offload_device: "cpu",
      vram_device: "cpu",
      cpu_mode: true,
      should_use_fp16: false,
      freed: true,
      interrupted: false,
      client_id: "c-42",
    });
    expect(out.free_memory).toBeGreaterThan(0);
    expect(out.total_memory).toBeGreaterThanOrEqual(out.free_memory as number);
    // add_model_folder_path went to the host's one table
    expect(api.folderPaths.get_folder_paths("checkpoints")).toEqual([join(base, "models", "checkpoints"), extra]);
    expect(events.slice(before)).toContainEqual({ type: "hostapis.probe", data: { node: "HostApiProbe", ok: true }, sid: "client-7", node: null });
    // soft_empty_cache / unload_all_models in HostApis were fanned out to the other live processes
    const memoryAfter = (await registry.run("PlainMemoryEvents")).outputs as number[];
    expect(memoryAfter).toEqual((memoryBefore as number[]).map((n) => n + 1));
  });

  it("refuses file names that leave their folder", async () => {
    for (const filename of ["../../etc/passwd", "/etc/passwd", "sub/../../x.safetensors"]) {
      const e = await rejection(isolated.registry.run("PathProbe", { folder: "checkpoints", filename }));
      expect(e.pythonType).toBe("ValueError");
      expect(e.pythonMessage).toMatch(/absolute path|climbs out of its folder/);
    }
    expect((await isolated.registry.run("PathProbe", { folder: "checkpoints", filename: "model.safetensors" })).outputs).toEqual([
      join(root, "comfy", "models", "checkpoints", "model.safetensors"),
    ]);
  });

  it("writes a preview image to the temp folder", async () => {
    const r = await isolated.registry.run("PreviewProbe", { size: 4 }, { prompt: {}, unique_id: "40" });
    const images = (r.ui as { images: Array<{ filename: string; subfolder: string; type: string }> }).images;
    expect(images).toHaveLength(1);
    expect(images[0]).toMatchObject({ subfolder: "", type: "temp" });
    const file = join(root, "comfy", "temp", images[0]!.filename);
    expect(readFileSync(file).subarray(1, 4).toString("latin1")).toBe("PNG");
  });
});

describe("interrupt", () => {
  it.each(["V1", "V3"])("%s: a long-running isolated node stops with InterruptProcessingException within 100 ms", async (api) => {
    const { registry, events } = isolated;
    await registry.execute(`${api}Double`, { x: [1], k: [1] }, { prompt_id: `warm-${api}` }, "1");
    const before = events.length;
    const running = registry.execute(`${api}Sleeper`, { seconds: [60] }, { prompt_id: `sleep-${api}` }, "50");
    const failed = rejection(running);
    // V1Sleeper reports its first progress step once it runs; V3Sleeper is given a moment.
    if (api === "V1") {
      const deadline = Date.now() + 30_000;
      while (!events.slice(before).some((e) => e.type === "progress" && (e.data as { node: string }).node === "50")) {
        if (Date.now() > deadline) throw new Error("the sleeper never started");
        await new Promise((r) => setTimeout(r, 5));
      }
    } else {
      await new Promise((r) => setTimeout(r, 300));
    }
    const sent = performance.now();
    registry.interrupt();
    const e = await failed;
    const elapsed = performance.now() - sent;
    if (process.env.PYISOLATE_REPORT_TIMES) process.stderr.write(`interrupt ${api}: ${elapsed.toFixed(1)} ms\n`);
    expect(e.pythonType).toBe("comfy.model_management.InterruptProcessingException");
    // A correctness bound of the interrupt path (event → flag → the node's next check), not a benchmark.
    expect(elapsed).toBeLessThan(100);
    // The next prompt starts clean.
    expect((await registry.execute(`${api}Double`, { x: [2], k: [3] }, { prompt_id: `after-${api}` }, "1")).outputs).toEqual([[6]]);
  });
});

describe("metadata cache", () => {
  it("a cache hit registers every node without starting any process; the first execution spawns just in time", async () => {
    const host = await makeHost(join(root, "custom_nodes"));
    expect(host.load.map((l) => l.source)).toEqual(["cache", "cache", "cache", "cache"]);
    for (const name of ["HostApis", "SharedPlain", "V1Basics", "V3Basics"]) expect(host.lines).toContain(`][ ${name} loaded from cache`);
    expect(host.core.processes().every((p) => p.starts === 0)).toBe(true);
    expect(host.core.live()).toEqual([]);
    expect(host.registry.objectInfo()).toEqual(isolated.registry.objectInfo());
    expect(host.registry.webDirectories()).toEqual(isolated.registry.webDirectories());

    expect((await host.registry.run("V3Double", { x: 4, k: 5 })).outputs).toEqual([20]);
    expect(host.lines).toContain("][ V3Basics - just-in-time spawning of isolated custom_node");
    expect(host.core.live().map((p) => p.name)).toEqual(["V3Basics"]);
  });

  it("a changed pack misses the cache and is loaded from its process again", async () => {
    const dir = join(root, "custom_nodes", "SharedPlain");
    writeFileSync(join(dir, "__init__.py"), readFileSync(join(dir, "__init__.py"), "utf8") + "\n# changed\n");
    const host = await makeHost(join(root, "custom_nodes"));
    expect(Object.fromEntries(host.load.map((l) => [l.pack, l.source]))).toEqual({ HostApis: "cache", SharedPlain: "process", V1Basics: "cache", V3Basics: "cache" });
    expect(host.core.live().map((p) => p.name)).toEqual(["shared"]);
    expect(existsSync(caches.get(join(root, "custom_nodes"))!.file("SharedPlain"))).toBe(true);
  });
});
