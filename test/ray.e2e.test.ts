/**
 * The Ray backend on a real Ray cluster of four nodes on this machine (head, `a` with
 * `pool_a`, `b1` and `b2` with `pool_b`; `test/fixtures/ray/cluster.py`), loopback only,
 * torn down by the suite. Packs' manifests place them: the two numpy pins on different nodes,
 * a handle user on `a`, a slow pack on one of the `pool_b` nodes, whose node the suite kills
 * mid-prompt.
 *
 * Ray comes from `PYISOLATE_RAY_PYTHON`, else `.ray-venv/bin/python`; without Ray there the
 * suite says so in one line and runs nothing.
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Prompt } from "../src/executor/types.ts";
import { createHost, type Host } from "../src/host.ts";
import { TestCluster } from "./ray_cluster.ts";
import { Logger } from "../src/log.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");
const rayPython = process.env.PYISOLATE_RAY_PYTHON ?? join(repo, ".ray-venv", "bin", "python");
const haveRay = existsSync(rayPython) && spawnSync(rayPython, ["-c", "import ray"], { stdio: "ignore" }).status === 0;
if (!haveRay) console.log(`ray: not running the Ray backend suite: ${rayPython} cannot import ray (set PYISOLATE_RAY_PYTHON to a Python with ray)`);

const demo: Prompt = JSON.parse(readFileSync(join(repo, "examples", "workflows", "demo.json"), "utf8"));
delete demo["11"]; // DeepDiffNode: a third environment that says nothing about placement

let root: string;
let cluster: TestCluster | undefined;
let nodes: Record<string, string> = {};
let address = "";
let local: { outputs: Record<string, unknown>; png: Buffer };
let host: Host;
const lines: string[] = [];

describe.runIf(haveRay)("the Ray backend", () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "pyisolate-ray-"));
    const custom = join(root, "custom_nodes");
    for (const name of ["ImageTools", "NumpyLegacyNode", "NumpyModernNode"]) cpSync(join(repo, "examples", "custom_nodes", name), join(custom, name), { recursive: true });
    cpSync(join(repo, "test", "fixtures", "handle_packs"), custom, { recursive: true });
    cpSync(join(repo, "test", "fixtures", "ray", "RaySlow"), join(custom, "RaySlow"), { recursive: true });
    appendFileSync(join(custom, "NumpyLegacyNode", "pyisolate.yaml"), "ray:\n  resources:\n    pool_a: 1\n");
    appendFileSync(join(custom, "NumpyModernNode", "pyisolate.yaml"), "ray:\n  resources:\n    pool_b: 1\n");
    appendFileSync(join(custom, "HandleUser", "pyisolate.yaml"), "ray:\n  num_cpus: 0.5\n  resources:\n    pool_a: 1\n");

    // The same prompt on the local backend first: the reference.
    const opts = { customNodes: custom, cacheDir: join(root, "cache"), python: hostPython, baseDir: join(root, "comfy") };
    const lhost = await createHost({ ...opts, outputDir: join(root, "out-local"), backend: "local", logger: new Logger(() => {}) });
    const lr = await lhost.run(demo);
    await lhost.close();
    expect(lr.status, JSON.stringify(lr.error)).toBe("success");
    local = { outputs: lr.outputs, png: readFileSync(join(root, "out-local", "demo_00001_.png")) };

    cluster = await TestCluster.start(rayPython, repo);
    const info = { address: cluster.address, nodes: cluster.nodes };
    nodes = info.nodes;
    address = info.address;
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);

    host = await createHost({ ...opts, outputDir: join(root, "out-ray"), backend: "ray", ray: { address, python: rayPython }, logger: new Logger((_l, line) => lines.push(line)) });
    expect(host.packs.filter((p) => p.error).map((p) => [p.name, p.error?.message])).toEqual([]);
  }, 600_000);

  afterAll(async () => {
    await host?.close();
    await cluster?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  const labelOf = (pack: string) => {
    const id = host.core.ray!.placement(pack)?.id;
    return Object.entries(nodes).find(([, v]) => v === id)?.[0];
  };

  it("runs the conflict workflow with its packs on different Ray nodes, with the local backend's exact result", async () => {
    const r = await host.run(demo);
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    expect(r.outputs).toEqual(local.outputs);
    expect(readFileSync(join(root, "out-ray", "demo_00001_.png")).equals(local.png)).toBe(true);
    expect(labelOf("NumpyLegacyNode")).toBe("a");
    expect(["b1", "b2"]).toContain(labelOf("NumpyModernNode"));
    // The image went host (MakeGradient) → a → pool_b → host (SaveImagePNG): each hop between
    // different Ray nodes through Ray's object store, fetched by the receiving side's actor.
    const ray = host.core.ray!;
    const at = { host: ray.relay!.node, NumpyLegacyNode: ray.placement("NumpyLegacyNode")!.id, NumpyModernNode: ray.placement("NumpyModernNode")!.id };
    const relays = await ray.relays();
    for (const [to, from] of [["NumpyLegacyNode", "host"], ["NumpyModernNode", "NumpyLegacyNode"], ["host", "NumpyModernNode"]] as const) {
      if (at[to] !== at[from]) expect(relays[to]?.fetched ?? 0, `${from} → ${to}`).toBeGreaterThan(0);
    }
    // The shared process stays on this machine; the isolated ones are actors (no local pid).
    expect(host.core.shared.pid).toBeGreaterThan(0);
    expect(host.core.processFor("NumpyLegacyNode").pid).toBeUndefined();
  }, 300_000);

  it("uses a MODEL-like handle of the shared process from a pack on another Ray node", async () => {
    const r = await host.run({
      "1": { class_type: "HSLoadModel", inputs: { name: "sd", seed: 1 } },
      "2": { class_type: "HUUseModel", inputs: { model: ["1", 0], factor: 10 } },
    });
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    const out = JSON.parse((r.outputs["2"] as { text: string[] }).text[0]!);
    expect(out).toMatchObject({ type: "FakeModel", is_proxy: true, describe: { name: "sd", seed: 1, scale: 1, pid: host.core.shared.pid } });
    expect(labelOf("HandleUser")).toBe("a");
  }, 300_000);

  it("a program whose last step is `await host.close()` runs to its end (nothing else holds its event loop)", async () => {
    const custom = join(root, "script_nodes");
    cpSync(join(repo, "test", "fixtures", "ray", "RaySlow"), join(custom, "RaySlow"), { recursive: true });
    const args = JSON.stringify({ customNodes: custom, cacheDir: join(root, "script_cache"), python: hostPython, address, rayPython });
    const child = spawn(process.execPath, ["--import", join(repo, "test", "tensors_host_loader.mjs"), join(repo, "test", "ray_host.ts"), args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    // Before the fix: exit code 13 (Node's "unsettled top-level await") inside close(), "closed" never printed.
    expect({ code, lines: out.trim().split("\n") }, err).toEqual({ code: 0, lines: [expect.stringMatching(/^success \{"text":\["script pid=\d+"\]\}$/), "closed"] });
  }, 300_000);

  it("losing a worker node mid-prompt fails the prompt naming node, pack and Ray node; the next prompt runs on the remaining node", async () => {
    const warm = await host.run({ "1": { class_type: "RaySleep", inputs: { seconds: 0, tag: "warm" } } });
    expect(warm.status, JSON.stringify(warm.error)).toBe("success");
    const victim = labelOf("RaySlow")!;
    expect(["b1", "b2"]).toContain(victim);
    const victimId = nodes[victim]!;
    const running = host.run({ "1": { class_type: "RaySleep", inputs: { seconds: 60, tag: "slow" } } });
    await new Promise((r) => setTimeout(r, 3000));
    cluster!.send(`remove ${victim}`);
    await cluster!.says(new RegExp(`removed ${victim}`), 60_000);
    const r = await running;
    expect(r.status).toBe("error");
    const text = JSON.stringify(r.error);
    expect(text).toContain("RaySlow");
    expect(text).toContain("RaySleep");
    expect(text).toContain(`Ray node ${victimId.slice(0, 12)}`);
    const next = await host.run({ "1": { class_type: "RaySleep", inputs: { seconds: 0, tag: "after" } } });
    expect(next.status, JSON.stringify(next.error)).toBe("success");
    const other = victim === "b1" ? "b2" : "b1";
    expect(labelOf("RaySlow")).toBe(other);
    expect((next.outputs["1"] as { text: string[] }).text[0]).toMatch(/^after pid=\d+$/);
  }, 300_000);
});
