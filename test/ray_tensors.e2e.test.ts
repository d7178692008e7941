/**
 * Tensors between Ray nodes, on a real Ray cluster of four nodes on this machine
 * (`test/fixtures/ray/cluster.py`: head, `a` with `pool_a`, `b1` and `b2` with `pool_b`),
 * loopback only. A pack pinned to `a` makes a 12 MiB IMAGE with known values, a pack on a
 * `pool_b` node and a shared pack (the host's machine) take it and report its sum, its sha256
 * and the segment they mapped it from; the shared pack makes one that the `pool_b` pack takes.
 *
 * All the test cluster's nodes share this machine's `/dev/shm`, so a segment of another node
 * could be opened by accident: the checks are that a consumer on another Ray node maps a
 * segment of its own (a copy its actor fetched through Ray, unlinked once mapped), that the
 * actors' relay counters saw the bytes, and that the host's sockets to the packs carried far
 * fewer bytes than the tensors.
 *
 * Ray comes from `PYISOLATE_RAY_PYTHON`, else `.ray-venv/bin/python`; without Ray there the
 * suite says so in one line and runs nothing.
 * @module
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHost, type Host } from "../src/host.ts";
import { TestCluster } from "./ray_cluster.ts";
import { Logger } from "../src/log.ts";
import { TensorRef } from "../src/values/tensors.ts";
import { viewTensor } from "../src/values/view.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");
const rayPython = process.env.PYISOLATE_RAY_PYTHON ?? join(repo, ".ray-venv", "bin", "python");
const haveRay = existsSync(rayPython) && spawnSync(rayPython, ["-c", "import ray"], { stdio: "ignore" }).status === 0;
if (!haveRay) console.log(`ray_tensors: not running the Ray tensor suite: ${rayPython} cannot import ray (set PYISOLATE_RAY_PYTHON to a Python with ray)`);

const H = 1024;
const W = 1024;
const NBYTES = H * W * 3 * 4; // 12 MiB of float32

/** What `rt_nodes.make` computes: element i is (i * 2654435761) % 2**20, as float32. */
function expected(scale = 1): { sum: number; sha256: string } {
  const n = H * W * 3;
  const a = new Float32Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const v = ((i % 1048576) * (2654435761 % 1048576)) % 1048576;
    a[i] = v * scale;
    sum += v * scale;
  }
  return { sum, sha256: createHash("sha256").update(new Uint8Array(a.buffer)).digest("hex") };
}

interface Described {
  who: string;
  sum: number;
  sha256: string;
  shape: number[];
  mapped: string | null;
  node: string | null;
}

let root: string;
let cluster: TestCluster | undefined;
let nodes: Record<string, string> = {};
let host: Host;
const lines: string[] = [];

describe.runIf(haveRay)("tensors on the Ray backend", () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "pyisolate-raytensors-"));
    const custom = join(root, "custom_nodes");
    for (const name of ["RayTensorMaker", "RayTensorTaker", "RayTensorHost"]) {
      cpSync(join(repo, "test", "fixtures", "ray", name), join(custom, name), { recursive: true });
      // The same node code in each pack.
      cpSync(join(repo, "test", "fixtures", "ray", "rt_nodes.py"), join(custom, name, "rt_nodes.py"));
    }
    cluster = await TestCluster.start(rayPython, repo);
    const info = { address: cluster.address, nodes: cluster.nodes };
    nodes = info.nodes;
    host = await createHost({
      customNodes: custom,
      cacheDir: join(root, "cache"),
      python: hostPython,
      baseDir: join(root, "comfy"),
      outputDir: join(root, "out"),
      backend: "ray",
      ray: { address: info.address, python: rayPython },
      logger: new Logger((_l, line) => lines.push(line)),
    });
    expect(host.packs.filter((p) => p.error).map((p) => [p.name, p.error?.message])).toEqual([]);
  }, 600_000);

  afterAll(async () => {
    await host?.close();
    await cluster?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it("a 12 MiB tensor crosses pack → pack, pack → host and host → pack between Ray nodes through Ray, exact, with only refs on the host's sockets", async () => {
    const ray = host.core.ray!;
    expect(ray.relay, ray.relayError).toBeDefined();
    const hostNode = ray.relay!.node;
    const procs = ["RayTensorMaker", "RayTensorTaker"].map((p) => host.core.processFor(p));
    // Start them first: the start-up's frames (the node list) are not what is measured.
    await Promise.all([...procs, host.core.shared].map((p) => p.start()));
    const traffic = () => [...procs, host.core.shared].reduce((n, p) => n + p.traffic.sent + p.traffic.received, 0);
    const before = traffic();
    const r = await host.run({
      "1": { class_type: "RTMakeMaker", inputs: { height: H, width: W } },
      "2": { class_type: "RTTakeTaker", inputs: { image: ["1", 0] } },
      "3": { class_type: "RTTakeHost", inputs: { image: ["1", 0] } },
      "4": { class_type: "RTMakeHost", inputs: { height: H, width: W } },
      "5": { class_type: "RTTakeTaker", inputs: { image: ["4", 0] } },
    });
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    const atHost = traffic() - before;

    const maker = ray.placement("RayTensorMaker")!.id;
    const taker = ray.placement("RayTensorTaker")!.id;
    expect(maker).toBe(nodes.a);
    expect([nodes.b1, nodes.b2]).toContain(taker);

    const want = expected();
    const got = (id: string) => JSON.parse((r.outputs[id] as { text: string[] }).text[0]!) as Described;
    const onDisk = new Set(host.segments.onDisk());
    const edges: Array<{ id: string; from: string; to: string }> = [
      { id: "2", from: maker, to: taker },
      { id: "3", from: maker, to: hostNode },
      { id: "5", from: hostNode, to: taker },
    ];
    let crossings = 0;
    for (const e of edges) {
      const d = got(e.id);
      expect({ sum: d.sum, sha256: d.sha256, shape: d.shape, node: d.node }, `node ${e.id}`).toEqual({ ...want, shape: [1, H, W, 3], node: e.to });
      expect(d.mapped, `node ${e.id}`).toMatch(/^pyisolate-[0-9a-f]+-[0-9a-f]+$/);
      if (e.from !== e.to) {
        // A copy of its own node, fetched by its actor and unlinked once mapped: not the
        // producer's segment, which the host still holds (the cached output).
        crossings++;
        expect(onDisk.has(d.mapped!), `node ${e.id} mapped ${d.mapped}`).toBe(false);
      } else {
        expect(onDisk.has(d.mapped!), `node ${e.id} mapped ${d.mapped}`).toBe(true);
      }
    }
    // The pack → pack edge always crosses (a and pool_b are different nodes), and the host's
    // node is at most one of them (the test cluster's driver joins on the head: all three cross).
    expect(crossings).toBeGreaterThanOrEqual(2);

    const relays = await ray.relays();
    const fetched = Object.values(relays).reduce((n, c) => n + c.fetched_bytes, 0);
    const served = Object.values(relays).reduce((n, c) => n + c.served_bytes, 0);
    expect(relays.RayTensorTaker!.fetched).toBeGreaterThanOrEqual(1);
    expect(relays.RayTensorMaker!.served).toBeGreaterThanOrEqual(1);
    expect({ fetched, served }).toEqual({ fetched: crossings * NBYTES, served: crossings * NBYTES });
    // Three 12 MiB tensors crossed (and two more came back as results): the host saw refs only.
    expect(atHost).toBeLessThan(1 << 20);
  }, 300_000);

  it("segments on other Ray nodes are unlinked there when the host lets go of them; a cached tensor whose actor is gone is made again", async () => {
    const ray = host.core.ray!;
    const small = (h: number) => ({
      "1": { class_type: "RTMakeMaker", inputs: { height: h, width: 8 } },
      "2": { class_type: "RTTakeTaker", inputs: { image: ["1", 0] } },
    });
    const first = await host.run(small(16));
    expect(first.status, JSON.stringify(first.error)).toBe("success");
    const unlinkedBefore = (await ray.relays()).RayTensorMaker!.unlinked;
    // Other inputs: the cached outputs of the first prompt (and of the 12 MiB one) are evicted.
    const second = await host.run(small(32));
    expect(second.status, JSON.stringify(second.error)).toBe("success");
    expect((await ray.relays()).RayTensorMaker!.unlinked).toBeGreaterThan(unlinkedBefore);

    // The maker's process (and so its actor) ends; its cached output lives on node a, which
    // nothing can read any more: the node runs again in a new actor.
    const maker = host.core.processFor("RayTensorMaker");
    maker.kill("SIGKILL");
    for (let i = 0; i < 300 && maker.state === "ready"; i++) await new Promise((r) => setTimeout(r, 100));
    expect(maker.state).toBe("exited");
    const again = await host.run({ ...small(32), "3": { class_type: "RTTakeHost", inputs: { image: ["1", 0] } } });
    expect(again.status, JSON.stringify(again.error)).toBe("success");
    const d = JSON.parse((again.outputs["3"] as { text: string[] }).text[0]!) as Described;
    expect(d.shape).toEqual([1, 32, 8, 3]);
    expect(d.sum).toBe(Array.from({ length: 32 * 8 * 3 }, (_, i) => (i * (2654435761 % 1048576)) % 1048576).reduce((a, b) => a + b, 0));
    expect((await ray.relays()).RayTensorMaker!.served).toBeGreaterThanOrEqual(1);
  }, 300_000);

  it("the host views a tensor of a pack on another Ray node: the driver copies it here through Ray", async () => {
    const ray = host.core.ray!;
    const maker = host.core.processFor("RayTensorMaker");
    const servedBefore = (await ray.relays()).RayTensorMaker?.served ?? 0;
    const before = maker.traffic.sent + maker.traffic.received;
    const ref = (await maker.call("RayTensorMaker", "make", [H, W])) as TensorRef;
    expect(ref).toBeInstanceOf(TensorRef);
    expect(ray.whereIs(ref)).toMatchObject({ node: nodes.a, remote: true });
    const disk = host.segments.onDisk();
    const view = await viewTensor(ref);
    try {
      expect(view.bytes.byteLength).toBe(NBYTES);
      expect(createHash("sha256").update(view.bytes).digest("hex")).toBe(expected().sha256);
    } finally {
      view.unmap();
    }
    expect(maker.traffic.sent + maker.traffic.received - before).toBeLessThan(1 << 16);
    expect((await ray.relays()).RayTensorMaker!.served).toBe(servedBefore + 1);
    // The copy was this view's: no file of it is left.
    expect(host.segments.onDisk()).toEqual(disk);
  }, 300_000);

  it("at close, the driver removes the host's segments on the other Ray nodes its actors ran on", async () => {
    await host.close();
    // a, and the pool_b node(s) the taker ran on: each a task of its own; all share this machine's /dev/shm.
    const said = lines.find((l) => /removed \d+ segments of this host on/.test(l));
    expect(said, lines.filter((l) => l.includes("ray")).join("\n")).toMatch(/removed [1-9]\d* segments of this host on ([2-9]) of \1 other Ray nodes/);
  }, 120_000);
});
