// Prompts at the same time on the server (`serve(host, { maxConcurrentPrompts })`): a real host
// over two real isolated packs (written from test/fixtures/concurrency_packs/slow_pack.py.in: ConcA and ConcB, each a slow
// node that reports progress and a preview, greets its prompt's client by send_sync, and
// returns a value derived from its input with how many of its calls ran in its process at
// once), real servers on free loopback ports, real HTTP and WebSocket clients. Overlap and
// order are read from the events (their order, the executor's timestamps) and from GET
// /queue, never from how long anything took.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createHost, Logger, serve, type Host, type Prompt, type PromptServerHandle } from "../src/mod.ts";
import { call, WsClient, type WsMessage } from "./shared/server_client.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const PACKS = fileURLToPath(new URL("./fixtures/concurrency_packs/", import.meta.url));

/** Writes the two packs, ConcA (SlowA: value × 10 + 1) and ConcB (SlowB: value × 100 + 1), from one source. */
function writePacks(dir: string): void {
  const source = readFileSync(join(PACKS, "slow_pack.py.in"), "utf8");
  for (const [letter, factor] of [["A", "10"], ["B", "100"]] as const) {
    mkdirSync(join(dir, `Conc${letter}`), { recursive: true });
    copyFileSync(join(PACKS, "pyisolate.yaml"), join(dir, `Conc${letter}`, "pyisolate.yaml"));
    writeFileSync(join(dir, `Conc${letter}`, "__init__.py"), source.replaceAll("__LETTER__", letter).replaceAll("__FACTOR__", factor));
  }
}
const PYTHON = process.env.PYISOLATE_PYTHON || join(ROOT, ".venv", "bin", "python");
const RAY_PYTHON = process.env.PYISOLATE_RAY_PYTHON ?? join(ROOT, ".ray-venv", "bin", "python");
const haveRay = existsSync(RAY_PYTHON) && spawnSync(RAY_PYTHON, ["-c", "import ray"], { stdio: "ignore" }).status === 0;
if (!haveRay) console.log(`server_concurrency: not running the Ray backend part: ${RAY_PYTHON} cannot import ray (set PYISOLATE_RAY_PYTHON to a Python with ray)`);

let host: Host;
let server: PromptServerHandle;
const clients: WsClient[] = [];
const lines: string[] = [];

const slow = (cls: "SlowA" | "SlowB", value: number, steps = 10, delay = 0.1): Prompt => ({ "1": { class_type: cls, inputs: { value, steps, delay } } });

async function open(url: string): Promise<WsClient> {
  const c = await WsClient.open(url, { flags: { supports_preview_metadata: true } });
  clients.push(c);
  return c;
}

async function post(url: string, prompt: Prompt, clientId: string): Promise<string> {
  const r = await call(url, "/prompt", { body: { prompt, client_id: clientId } });
  expect(r.status, r.text).toBe(200);
  return String((r.body as { prompt_id: string }).prompt_id);
}

async function queue(url: string): Promise<{ running: string[]; pending: string[] }> {
  const q = (await call(url, "/queue")).body as { queue_running: unknown[][]; queue_pending: unknown[][] };
  return { running: q.queue_running.map((x) => String(x[1])), pending: q.queue_pending.map((x) => String(x[1])) };
}

/** Polls `check` until it holds (up to 30 s). */
async function poll(what: string, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function history(url: string, id: string): Promise<{ outputs: Record<string, Record<string, unknown>>; status: { status_str: string; messages: Array<[string, Record<string, unknown>]> } }> {
  return ((await call(url, `/history/${id}`)).body as Record<string, never>)[id]!;
}

/** The executor's message `type` of a prompt, from a client's messages. */
function event(seq: WsMessage[], type: string): Record<string, unknown> {
  const m = seq.find((x) => x.type === type);
  expect(m, `${type} in ${seq.map((x) => x.type).join(",")}`).toBeDefined();
  return m!.data;
}

/** The prompt ids a client's messages name (JSON `prompt_id`, and the preview frames' metadata). */
function promptIds(seq: WsMessage[]): Set<string> {
  const ids = new Set<string>();
  for (const m of seq) {
    if (m.binary) {
      if (m.type !== 4) continue;
      const len = new DataView(m.binary.buffer, m.binary.byteOffset).getUint32(0);
      const meta = JSON.parse(new TextDecoder().decode(m.binary.subarray(4, 4 + len))) as { prompt_id?: string };
      if (meta.prompt_id) ids.add(meta.prompt_id);
    } else if (typeof m.data.prompt_id === "string") ids.add(m.data.prompt_id);
  }
  return ids;
}

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), "pyisolate-concurrency-"));
  writePacks(join(root, "custom_nodes"));
  const logger = new Logger((_level, line) => lines.push(line));
  host = await createHost({ customNodes: join(root, "custom_nodes"), cacheDir: join(root, "cache"), python: PYTHON, baseDir: join(root, "comfy"), logger });
  expect(host.packs.map((p) => [p.name, p.kind, p.nodes, p.error?.message])).toEqual([
    ["ConcA", "isolated", 1, undefined],
    ["ConcB", "isolated", 1, undefined],
  ]);
  server = await serve(host, { port: 0, logger, frontendRoot: false, maxConcurrentPrompts: 2 });
}, 300_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.close();
  await host?.close();
});

describe("serve with maxConcurrentPrompts: 2", () => {
  it("runs two clients' prompts over different packs at once; each client gets only its own prompt's events; outputs and history are right", async () => {
    const a = await open(server.url);
    const b = await open(server.url);
    const [fa, fb] = [a.messages.length, b.messages.length];
    // The same node id in both prompts: what tells their events apart is the prompt id.
    const idA = await post(server.url, slow("SlowA", 3), a.sid);
    const idB = await post(server.url, slow("SlowB", 4), b.sid);
    // Both run: GET /queue lists both in queue_running, and queue_remaining counts them.
    await poll("both prompts in queue_running", async () => {
      const q = await queue(server.url);
      return q.running.length === 2 && q.running.includes(idA) && q.running.includes(idB) && q.pending.length === 0;
    });
    const seqA = await a.prompt(idA, fa);
    const seqB = await b.prompt(idB, fb);

    // Overlap, from the executor's own timestamps: B started before A ended, and A before B ended.
    expect(Number(event(seqB, "execution_start").timestamp)).toBeLessThan(Number(event(seqA, "execution_success").timestamp));
    expect(Number(event(seqA, "execution_start").timestamp)).toBeLessThan(Number(event(seqB, "execution_success").timestamp));
    // A status message said two prompts remained (both running).
    const remaining = (seq: WsMessage[]) => seq.filter((m) => m.type === "status").map((m) => (m.data.status as { exec_info: { queue_remaining: number } }).exec_info.queue_remaining);
    expect(Math.max(...remaining(seqA))).toBe(2);

    // Each client's messages name its own prompt only: executor events, progress, progress_state, previews.
    expect([...promptIds(seqA)]).toEqual([idA]);
    expect([...promptIds(seqB)]).toEqual([idB]);
    for (const [seq, id] of [[seqA, idA], [seqB, idB]] as const) {
      const progress = seq.filter((m) => m.type === "progress").map((m) => m.data);
      expect(progress.length).toBe(10);
      expect(progress.every((p) => p.prompt_id === id && p.node === "1")).toBe(true);
      expect(progress.map((p) => p.value)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(seq.filter((m) => m.binary && m.type === 4).length).toBe(1);
    }
    // The preview each client got is its own prompt's image (8 bytes of the value).
    const image = (seq: WsMessage[]) => {
      const f = seq.find((m) => m.binary && m.type === 4)!.binary!;
      const len = new DataView(f.buffer, f.byteOffset).getUint32(0);
      return [...f.subarray(4 + len)];
    };
    expect(image(seqA)).toEqual(Array(8).fill(3));
    expect(image(seqB)).toEqual(Array(8).fill(4));
    // send_sync to PromptServer.instance.client_id: the node's own prompt's client.
    expect(seqA.filter((m) => m.type === "conc.hello").map((m) => m.data)).toEqual([{ value: 3, prompt_id: idA }]);
    expect(seqB.filter((m) => m.type === "conc.hello").map((m) => m.data)).toEqual([{ value: 4, prompt_id: idB }]);
    // Outputs: each its own value (ConcA: 10·v + 1, ConcB: 100·v + 1); each pack's process ran one call at a time.
    expect(event(seqA, "executed")).toEqual({ node: "1", display_node: "1", output: { value: [31], peak: [1] }, prompt_id: idA });
    expect(event(seqB, "executed")).toEqual({ node: "1", display_node: "1", output: { value: [401], peak: [1] }, prompt_id: idB });
    const [hA, hB] = [await history(server.url, idA), await history(server.url, idB)];
    expect(hA.outputs).toEqual({ "1": { value: [31], peak: [1] } });
    expect(hB.outputs).toEqual({ "1": { value: [401], peak: [1] } });
    expect([hA.status.status_str, hB.status.status_str]).toEqual(["success", "success"]);
    expect(hA.status.messages.map((m) => m[1].prompt_id)).toEqual([idA, idA, idA]);
    expect(hB.status.messages.map((m) => m[0])).toEqual(["execution_start", "execution_cached", "execution_success"]);
    expect(await queue(server.url)).toEqual({ running: [], pending: [] });
  }, 120_000);

  it("POST /interrupt with a prompt_id stops that prompt only; the other finishes", async () => {
    const a = await open(server.url);
    const b = await open(server.url);
    const [fa, fb] = [a.messages.length, b.messages.length];
    const idA = await post(server.url, slow("SlowA", 5, 400, 0.05), a.sid);
    const idB = await post(server.url, slow("SlowB", 6, 30, 0.05), b.sid);
    await a.next((m) => m.type === "progress", fa);
    const progressB = await b.next((m) => m.type === "progress", fb);
    expect((await call(server.url, "/interrupt", { body: { prompt_id: idA } })).status).toBe(200);
    const seqA = await a.prompt(idA, fa);
    const seqB = await b.prompt(idB, fb);
    expect(seqA.slice(-3).map((m) => m.type)).toEqual(["execution_interrupted", "status", "executing"]);
    expect(event(seqA, "execution_interrupted")).toMatchObject({ prompt_id: idA, node_id: "1", node_type: "SlowA", executed: [] });
    // B ran to its end, after the interrupt too: every step, its output, success.
    expect(b.messages.indexOf(progressB)).toBeGreaterThanOrEqual(fb);
    expect(seqB.filter((m) => m.type === "progress").length).toBe(30);
    expect(seqB.some((m) => m.type === "execution_interrupted")).toBe(false);
    expect(event(seqB, "executed").output).toEqual({ value: [601], peak: [1] });
    expect(event(seqB, "execution_success").prompt_id).toBe(idB);
    // B was still running when A ended interrupted.
    expect(Number(event(seqA, "execution_interrupted").timestamp)).toBeLessThan(Number(event(seqB, "execution_success").timestamp));
    expect((await history(server.url, idA)).status.status_str).toBe("error");
    expect((await history(server.url, idB)).status.status_str).toBe("success");
    expect(lines.some((l) => l.includes(`Interrupting prompt ${idA}`))).toBe(true);
    // The interrupted pack's process starts its next node clean.
    const c = a.messages.length;
    const again = await post(server.url, slow("SlowA", 7, 2, 0.01), a.sid);
    expect(event(await a.prompt(again, c), "executed").output).toEqual({ value: [71], peak: [1] });
  }, 120_000);

  it("POST /interrupt without a prompt_id stops every running prompt", async () => {
    const a = await open(server.url);
    const b = await open(server.url);
    const [fa, fb] = [a.messages.length, b.messages.length];
    const idA = await post(server.url, slow("SlowA", 8, 400, 0.05), a.sid);
    const idB = await post(server.url, slow("SlowB", 9, 400, 0.05), b.sid);
    await a.next((m) => m.type === "progress", fa);
    await b.next((m) => m.type === "progress", fb);
    expect((await call(server.url, "/interrupt", { body: {} })).status).toBe(200);
    const [seqA, seqB] = [await a.prompt(idA, fa), await b.prompt(idB, fb)];
    expect(event(seqA, "execution_interrupted").prompt_id).toBe(idA);
    expect(event(seqB, "execution_interrupted").prompt_id).toBe(idB);
    expect(seqA.filter((m) => m.type === "progress").length).toBeLessThan(400);
    expect(seqB.filter((m) => m.type === "progress").length).toBeLessThan(400);
  }, 120_000);

  it("two prompts that need the same pack both run, taking turns in its process node by node; each gets its own output", async () => {
    const a = await open(server.url);
    const b = await open(server.url);
    const [fa, fb] = [a.messages.length, b.messages.length];
    // Same class, same node id: in the process they would share ComfyUI's node object.
    const idA = await post(server.url, slow("SlowA", 11, 10, 0.05), a.sid);
    const idB = await post(server.url, slow("SlowA", 12, 10, 0.05), b.sid);
    const [seqA, seqB] = [await a.prompt(idA, fa), await b.prompt(idB, fb)];
    // Both were admitted at once (B started before A ended) …
    expect(Number(event(seqB, "execution_start").timestamp)).toBeLessThan(Number(event(seqA, "execution_success").timestamp));
    // … and ran one after the other in ConcA's process: each call ran alone there.
    expect(event(seqA, "executed").output).toEqual({ value: [111], peak: [1] });
    expect(event(seqB, "executed").output).toEqual({ value: [121], peak: [1] });
    expect([...promptIds(seqA)]).toEqual([idA]);
    expect([...promptIds(seqB)]).toEqual([idB]);
    expect(seqB.filter((m) => m.type === "progress").every((m) => m.data.prompt_id === idB)).toBe(true);

    // What the turns guard against: the Python runtime itself serves two calls into one
    // process at once (each in a worker thread), each answered with its own outputs.
    const direct = await Promise.all([13, 14].map((value) => host.registry.execute("SlowA", { value: [value], steps: [10], delay: [0.05] }, { prompt_id: `direct-${value}`, unique_id: "1" }, "1")));
    expect(direct.map((r) => r.ui)).toEqual([
      { value: [131], peak: [2] },
      { value: [141], peak: [2] },
    ]);
  }, 120_000);

  it("a prompt goes to the free lane whose cache holds its nodes", async () => {
    const a = await open(server.url);
    const from = a.messages.length;
    // Two prompts at once: lane 0 and lane 1 each cache their own node "1".
    const p1 = slow("SlowB", 21, 2, 0.01);
    const p2 = slow("SlowB", 22, 2, 0.01);
    const id1 = await post(server.url, p1, a.sid);
    const id2 = await post(server.url, p2, a.sid);
    await a.prompt(id1, from);
    await a.prompt(id2, from);
    // p2 again, both lanes free: it goes where p2's output is cached, and runs nothing.
    const again = a.messages.length;
    const id3 = await post(server.url, p2, a.sid);
    const seq = await a.prompt(id3, again);
    expect(event(seq, "execution_cached").nodes).toEqual(["1"]);
    expect(event(seq, "executed").output).toEqual({ value: [2201], peak: [1] });
    expect(seq.some((m) => m.type === "executing" && m.data.node === "1")).toBe(false);
  }, 120_000);

  it("refuses a lane count that is not a whole number from 1", async () => {
    await expect(serve(host, { port: 0, frontendRoot: false, maxConcurrentPrompts: 0 })).rejects.toThrow(/maxConcurrentPrompts must be a whole number from 1, got 0/);
    await expect(serve(host, { port: 0, frontendRoot: false, maxConcurrentPrompts: 1.5 })).rejects.toThrow(/got 1\.5/);
  });
});

describe("serve with one prompt at a time (the default)", () => {
  it("runs prompts strictly one after another, in queue order", async () => {
    const one = await serve(host, { port: 0, logger: new Logger(() => {}), frontendRoot: false });
    try {
      expect(one.queue.maxConcurrent).toBe(1);
      const a = await open(one.url);
      const b = await open(one.url);
      const [fa, fb] = [a.messages.length, b.messages.length];
      const idA = await post(one.url, slow("SlowA", 31, 10, 0.05), a.sid);
      const idB = await post(one.url, slow("SlowB", 32, 10, 0.05), b.sid);
      await a.next((m) => m.type === "progress", fa);
      expect(await queue(one.url)).toEqual({ running: [idA], pending: [idB] });
      const [seqA, seqB] = [await a.prompt(idA, fa), await b.prompt(idB, fb)];
      // B started after A had ended.
      expect(Number(event(seqB, "execution_start").timestamp)).toBeGreaterThanOrEqual(Number(event(seqA, "execution_success").timestamp));
      const remaining = seqA.filter((m) => m.type === "status").map((m) => (m.data.status as { exec_info: { queue_remaining: number } }).exec_info.queue_remaining);
      // A queued, A started, B queued, A done.
      expect(remaining).toEqual([1, 1, 2, 1]);
      expect(event(seqA, "executed").output).toEqual({ value: [311], peak: [1] });
      expect(event(seqB, "executed").output).toEqual({ value: [3201], peak: [1] });
      expect([...promptIds(seqA)]).toEqual([idA]);
      expect([...promptIds(seqB)]).toEqual([idB]);
    } finally {
      await one.close();
    }
  }, 120_000);
});

describe.runIf(haveRay)("serve with maxConcurrentPrompts: 2 on the Ray backend", () => {
  let rayHost: Host | undefined;
  let rayServer: PromptServerHandle | undefined;
  afterAll(async () => {
    await rayServer?.close();
    await rayHost?.close();
  }, 120_000);

  it("runs prompts over two packs' actors at once, each client getting its own events; an interrupt by prompt_id stops that one only", async () => {
    const root = mkdtempSync(join(tmpdir(), "pyisolate-concurrency-ray-"));
    writePacks(join(root, "custom_nodes"));
    rayHost = await createHost({ customNodes: join(root, "custom_nodes"), cacheDir: join(root, "cache"), python: PYTHON, baseDir: join(root, "comfy"), backend: "ray", ray: { address: "auto", python: RAY_PYTHON }, logger: new Logger(() => {}) });
    expect(rayHost.packs.map((p) => [p.name, p.error?.message])).toEqual([["ConcA", undefined], ["ConcB", undefined]]);
    rayServer = await serve(rayHost, { port: 0, logger: new Logger(() => {}), frontendRoot: false, maxConcurrentPrompts: 2 });
    const url = rayServer.url;
    const a = await open(url);
    const b = await open(url);
    let [fa, fb] = [a.messages.length, b.messages.length];
    const idA = await post(url, slow("SlowA", 41), a.sid);
    const idB = await post(url, slow("SlowB", 42), b.sid);
    const [seqA, seqB] = [await a.prompt(idA, fa, 180_000), await b.prompt(idB, fb, 180_000)];
    expect(Number(event(seqB, "execution_start").timestamp)).toBeLessThan(Number(event(seqA, "execution_success").timestamp));
    expect([...promptIds(seqA)]).toEqual([idA]);
    expect([...promptIds(seqB)]).toEqual([idB]);
    expect(seqA.filter((m) => m.type === "progress").length).toBe(10);
    expect(seqA.filter((m) => m.type === "conc.hello").map((m) => m.data)).toEqual([{ value: 41, prompt_id: idA }]);
    expect(seqB.filter((m) => m.type === "conc.hello").map((m) => m.data)).toEqual([{ value: 42, prompt_id: idB }]);
    expect(event(seqA, "executed").output).toEqual({ value: [411], peak: [1] });
    expect(event(seqB, "executed").output).toEqual({ value: [4201], peak: [1] });

    [fa, fb] = [a.messages.length, b.messages.length];
    const longA = await post(url, slow("SlowA", 43, 400, 0.05), a.sid);
    const shortB = await post(url, slow("SlowB", 44, 30, 0.05), b.sid);
    await a.next((m) => m.type === "progress", fa, 120_000);
    await b.next((m) => m.type === "progress", fb, 120_000);
    await call(url, "/interrupt", { body: { prompt_id: longA } });
    const [iA, iB] = [await a.prompt(longA, fa, 120_000), await b.prompt(shortB, fb, 120_000)];
    expect(event(iA, "execution_interrupted").prompt_id).toBe(longA);
    expect(iB.some((m) => m.type === "execution_interrupted")).toBe(false);
    expect(iB.filter((m) => m.type === "progress").length).toBe(30);
    expect(event(iB, "executed").output).toEqual({ value: [4401], peak: [1] });
  }, 600_000);
});
