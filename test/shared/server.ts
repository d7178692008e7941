/**
 * The shared server suite: `serve(host)` under the runtime that runs it, with a real HTTP
 * client (the runtime's `fetch`) and real WebSocket clients against a real server on a free
 * loopback port, over two real packs copied from `test/shared/server_packs/`:
 * `ServerIsolated` (its own process and environment; nodes that show seeds, report
 * progress, send events and fail; routes from `route_manifest.json` and from decorators;
 * a web directory) and `ServerShared` (the shared process; a slow node and a route).
 *
 * The tests run in order and share one host and server (the runners have no common
 * `beforeAll`): the first starts them, the last shuts them down.
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { decode as decodePng, encode as encodePng } from "fast-png";
import { createHost, Logger, serve, type Host, type Prompt, type PromptServerHandle } from "../../src/mod.ts";
import { readPrompt } from "../../src/cli/run.ts";
import { detectRuntime } from "../../src/internals.ts";
import type { RuntimeName, TestApi } from "./api.ts";
import { call, shortForm, until, WsClient, type WsMessage } from "./server_client.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PACKS = fileURLToPath(new URL("./server_packs/", import.meta.url));
const PYTHON = process.env.PYISOLATE_PYTHON || join(ROOT, ".venv", "bin", "python");

/** Ceiling for the test that builds an environment and starts the server (not a speed check). */
const SLOW_MS = 180_000;
/** Ceiling for a test over the running server. */
const CALL_MS = 90_000;

const MAX_U64 = 2n ** 64n - 1n;
const MAX_U64_TEXT = "18446744073709551615";

interface State {
  root: string;
  lines: string[];
  host?: Host;
  server?: PromptServerHandle;
  /** Clients to close at the end. */
  clients: WsClient[];
}

/** A PNG of `w`×`h` RGBA pixels from `px(x, y)`, with text chunks. */
function png(w: number, h: number, px: (x: number, y: number) => [number, number, number, number], text?: Record<string, string>): Uint8Array {
  const data = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(px(x, y), (y * w + x) * 4);
  return encodePng({ width: w, height: h, data, depth: 8, channels: 4, ...(text ? { text } : {}) });
}

/**
 * Registers the server suite with a runtime's test runner.
 * @param t the runner's `describe`/`it`
 * @param runtime the runtime the caller runs under
 */
export function defineServerTests(t: TestApi, runtime: RuntimeName): void {
  let state: State | undefined;
  const s = (): Required<Omit<State, "clients">> & State => {
    assert.ok(state?.host && state.server, "the host and server of the first test are running");
    return state as Required<Omit<State, "clients">> & State;
  };
  const url = () => s().server.url;
  const client = async (opts: Parameters<typeof WsClient.open>[1] = {}) => {
    const c = await WsClient.open(url(), opts);
    s().clients.push(c);
    return c;
  };
  /** Posts a prompt for a client; returns its id. */
  const post = async (prompt: Prompt | string, clientId?: string, extra: Record<string, unknown> = {}): Promise<string> => {
    const raw = typeof prompt === "string" ? `{"prompt": ${prompt}${clientId ? `, "client_id": ${JSON.stringify(clientId)}` : ""}}` : JSON.stringify({ prompt, ...(clientId ? { client_id: clientId } : {}), ...extra });
    const r = await call(url(), "/prompt", { raw });
    assert.equal(r.status, 200, r.text);
    return String((r.body as { prompt_id: string }).prompt_id);
  };
  const history = async (id: string) => ((await call(url(), `/history/${id}`)).body as Record<string, Record<string, unknown>>)[id]!;

  t.describe(`Server (${runtime})`, () => {
    t.it("starts a host over isolated and shared packs and serves it on a free loopback port", async () => {
      assert.equal(detectRuntime(), runtime);
      const root = mkdtempSync(join(tmpdir(), `pyisolate-server-${runtime}-`));
      cpSync(PACKS, join(root, "custom_nodes"), { recursive: true });
      state = { root, lines: [], clients: [] };
      const logger = new Logger((_level, line) => state!.lines.push(line));
      state.host = await createHost({ customNodes: join(root, "custom_nodes"), cacheDir: join(root, "cache"), python: PYTHON, baseDir: join(root, "comfy"), logger });
      assert.deepEqual(
        state.host.packs.map((p) => [p.name, p.kind, p.nodes, p.error?.message]),
        [
          ["ServerIsolated", "isolated", 5, undefined],
          ["ServerShared", "shared", 1, undefined],
        ],
      );
      // The API alone: the editor (served at / when installed) is the browser test's.
      state.server = await serve(state.host, { port: 0, logger, frontendRoot: false });
      assert.match(state.server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(state.server.port, 8188);
      assert.deepEqual(
        state.server.packRoutes.map((r) => `${r.pack} ${r.method} ${r.path} ${r.source}`).slice(0, 3),
        ["ServerIsolated GET /server_test/status manifest", "ServerIsolated POST /server_test/process manifest", "ServerIsolated GET /server_test/hello/{name} decorator"],
      );
    }, SLOW_MS);

    t.it("answers ComfyUI's read-only routes with ComfyUI's shapes, at /… and at /api/…", async () => {
      const { host } = s();
      const models = join(s().root, "comfy", "models");
      mkdirSync(join(models, "embeddings"), { recursive: true });
      writeFileSync(join(models, "embeddings", "easy.pt"), "x");
      mkdirSync(join(models, "checkpoints"), { recursive: true });
      const header = new TextEncoder().encode(JSON.stringify({ __metadata__: { trained_by: "us", epochs: "3" }, w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }));
      const st = new Uint8Array(8 + header.length + 4);
      new DataView(st.buffer).setBigUint64(0, BigInt(header.length), true);
      st.set(header, 8);
      writeFileSync(join(models, "checkpoints", "tiny.safetensors"), st);

      const info = await call(url(), "/object_info");
      const apiInfo = await call(url(), "/api/object_info");
      assert.equal(info.status, 200);
      assert.equal(info.text, apiInfo.text);
      assert.match(info.headers.get("content-type")!, /^application\/json/);
      assert.deepEqual(Object.keys(info.body as object).sort(), ["Boom", "Notify", "Preview", "SeedEcho", "SharedSlow", "SlowProgress"]);
      assert.deepEqual(Object.keys(((await call(url(), "/object_info/SeedEcho")).body as object)), ["SeedEcho"]);
      assert.deepEqual((await call(url(), "/object_info/NoSuchNode")).body, {});
      assert.deepEqual((info.body as Record<string, { output_node: boolean; python_module: string }>).SeedEcho!.output_node, true);

      const stats = (await call(url(), "/system_stats")).body as { system: Record<string, unknown>; devices: Array<Record<string, unknown>> };
      for (const k of ["os", "ram_total", "ram_free", "comfyui_version", "python_version", "pytorch_version", "embedded_python", "argv"]) assert.ok(k in stats.system, k);
      assert.equal(stats.system.python_version, host.python.version);
      assert.deepEqual(Object.keys(stats.devices[0]!).sort(), ["index", "name", "torch_vram_free", "torch_vram_total", "type", "vram_free", "vram_total"]);
      assert.deepEqual((await call(url(), "/features")).body, { supports_preview_metadata: true, max_upload_size: 104857600 });
      assert.deepEqual((await call(url(), "/api/embeddings")).body, ["easy"]);
      assert.ok(((await call(url(), "/models")).body as string[]).includes("checkpoints"));
      assert.deepEqual((await call(url(), "/models/checkpoints")).body, ["tiny.safetensors"]);
      assert.equal((await call(url(), "/models/no_such_folder")).status, 404);
      assert.deepEqual((await call(url(), "/view_metadata/checkpoints?filename=tiny.safetensors")).body, { trained_by: "us", epochs: "3" });
      assert.equal((await call(url(), "/view_metadata/checkpoints?filename=missing.safetensors")).status, 404);
      assert.deepEqual((await call(url(), "/extensions")).body, ["/extensions/ServerIsolated/hello.js"]);
      const script = await call(url(), "/extensions/ServerIsolated/hello.js");
      assert.equal(script.status, 200);
      assert.match(script.text, /ServerIsolated extension loaded/);
      assert.match(script.headers.get("content-type")!, /javascript/);
      assert.equal((await call(url(), "/extensions/ServerIsolated/..%2F__init__.py")).status, 404);
      assert.deepEqual((await call(url(), "/prompt")).body, { exec_info: { queue_remaining: 0 } });
      assert.deepEqual((await call(url(), "/api/queue")).body, { queue_running: [], queue_pending: [] });
      assert.deepEqual((await call(url(), "/history")).body, {});
      // /internal is served without the /api prefix, as in ComfyUI.
      assert.equal(typeof (await call(url(), "/internal/logs")).body, "string");
      assert.ok(Array.isArray(((await call(url(), "/internal/logs/raw")).body as { entries: unknown[] }).entries));
      // As ComfyUI's main.py does, the output folder's checkpoints follow the models folder's.
      assert.deepEqual(((await call(url(), "/internal/folder_paths")).body as Record<string, string[]>).checkpoints, [join(models, "checkpoints"), join(s().root, "comfy", "output", "checkpoints")]);
      assert.deepEqual((await call(url(), "/internal/files/output")).body, []);
      assert.equal((await call(url(), "/internal/files/elsewhere")).status, 400);
      assert.equal((await call(url(), "/no/such/route")).status, 404);
    }, CALL_MS);

    t.it("/ws sends status with the sid on connect and answers the client's feature_flags; clientId is kept", async () => {
      const a = await client();
      assert.match(a.sid, /^[0-9a-f]{32}$/);
      assert.deepEqual(a.messages[0], { type: "status", data: { status: { exec_info: { queue_remaining: 0 } }, sid: a.sid } });
      const b = await client({ clientId: "client-b", flags: { supports_preview_metadata: true }, path: "/api/ws" });
      assert.equal(b.sid, "client-b");
      assert.deepEqual(b.messages[1], { type: "feature_flags", data: { supports_preview_metadata: true, max_upload_size: 104857600 } });
    }, CALL_MS);

    t.it("POST /prompt validates first: 400 with error and node_errors, as ComfyUI answers", async () => {
      const none = await call(url(), "/prompt", { body: { client_id: "x" } });
      assert.equal(none.status, 400);
      assert.deepEqual(none.body, { error: { type: "no_prompt", message: "No prompt provided", details: "No prompt provided", extra_info: {} }, node_errors: {} });
      const unknown = await call(url(), "/prompt", { body: { prompt: { "1": { class_type: "NoSuchNode", inputs: {} } } } });
      assert.equal(unknown.status, 400);
      assert.equal((unknown.body as { error: { type: string } }).error.type, "invalid_prompt");
      const big = await call(url(), "/prompt", { raw: `{"prompt": {"1": {"class_type": "SeedEcho", "inputs": {"seed": -1}}}}` });
      assert.equal(big.status, 400);
      const e = big.body as { error: { type: string }; node_errors: Record<string, { errors: Array<{ type: string }>; class_type: string; dependent_outputs: string[] }> };
      assert.equal(e.error.type, "prompt_outputs_failed_validation");
      assert.deepEqual(e.node_errors["1"]!.errors.map((x) => x.type), ["value_smaller_than_min"]);
      assert.deepEqual([e.node_errors["1"]!.class_type, e.node_errors["1"]!.dependent_outputs], ["SeedEcho", ["1"]]);
      assert.equal((await call(url(), "/prompt", { raw: "{not json" })).status, 400);
      const ok = await call(url(), "/prompt", { body: { prompt: { "1": { class_type: "SeedEcho", inputs: { seed: 5 } } } } });
      assert.equal(ok.status, 200);
      const body = ok.body as { prompt_id: string; number: number; node_errors: object };
      assert.match(body.prompt_id, /^[0-9a-f-]{36}$/);
      assert.equal(typeof body.number, "number");
      assert.deepEqual(body.node_errors, {});
      await until("the prompt to finish", () => (s().server.queue.info().exec_info.queue_remaining === 0 ? true : undefined));
    }, CALL_MS);

    t.it("a prompt's /ws messages follow ComfyUI's order event by event; a cached re-run too", async () => {
      const c = await client({ flags: { supports_preview_metadata: true } });
      const prompt = `{"1": {"class_type": "SlowProgress", "inputs": {"steps": 2, "delay": 0.01}}, "2": {"class_type": "SeedEcho", "inputs": {"seed": ${MAX_U64_TEXT}, "after": ["1", 0]}}}`;
      const from = c.messages.length;
      const id = await post(prompt, c.sid);
      const seq = await c.prompt(id, from);
      assert.deepEqual(seq.map(shortForm), [
        "status",
        "status",
        "execution_start",
        "execution_cached",
        "progress_state(1:running)",
        "executing(1)",
        "progress_state(1:running)",
        "progress(1)",
        "bin3",
        "progress_state(1:running)",
        "progress(1)",
        "bin3",
        "progress_state(1:finished)",
        "progress_state(1:finished,2:running)",
        "executing(2)",
        "executed(2)",
        "progress_state(1:finished,2:finished)",
        "execution_success",
        "status",
        "executing(null)",
      ]);
      const by = (type: string) => seq.filter((m) => m.type === type);
      assert.deepEqual(by("status").map((m) => (m.data.status as { exec_info: { queue_remaining: number } }).exec_info.queue_remaining), [1, 1, 0]);
      assert.deepEqual(by("execution_cached")[0]!.data.nodes, []);
      assert.deepEqual(by("executing")[0]!.data, { node: "1", display_node: "1", prompt_id: id });
      assert.deepEqual(by("progress").map((m) => m.data), [
        { value: 1, max: 2, node: "1", prompt_id: id },
        { value: 2, max: 2, node: "1", prompt_id: id },
      ]);
      const state = by("progress_state")[1]!.data.nodes as Record<string, unknown>;
      assert.deepEqual(state["1"], { value: 1, max: 2, state: "running", node_id: "1", prompt_id: id, display_node_id: "1", parent_node_id: null, real_node_id: "1" });
      // send_progress_text: ComfyUI's TEXT frame (node id length, node id, text).
      const text = seq.find((m) => m.binary)!.binary!;
      const len = new DataView(text.buffer, text.byteOffset).getUint32(0);
      assert.equal(new TextDecoder().decode(text.subarray(4, 4 + len)), "1");
      assert.equal(new TextDecoder().decode(text.subarray(4 + len)), "step 1");
      assert.deepEqual(by("executed")[0]!.data, { node: "2", display_node: "2", output: { text: [`${MAX_U64_TEXT}|int`], seed: [MAX_U64] }, prompt_id: id });
      assert.deepEqual(Object.keys(by("execution_success")[0]!.data).sort(), ["prompt_id", "timestamp"]);

      // The same prompt again: every node cached; the output node shows its cached output.
      const again = c.messages.length;
      const id2 = await post(prompt, c.sid);
      const seq2 = await c.prompt(id2, again);
      assert.deepEqual(seq2.map(shortForm), ["status", "status", "execution_start", "execution_cached", "executed(2)", "progress_state(2:finished)", "execution_success", "status", "executing(null)"]);
      assert.deepEqual((seq2[3]!.data.nodes as string[]).sort(), ["1", "2"]);
      assert.deepEqual(seq2[4]!.data.output, { text: [`${MAX_U64_TEXT}|int`], seed: [MAX_U64] });
    }, CALL_MS);

    t.it("a 2^64 − 1 seed reaches the node exactly from POST /prompt and from a workflow file, and comes back in /history", async () => {
      const c = await client();
      const from = c.messages.length;
      const id = await post(`{"1": {"class_type": "SeedEcho", "inputs": {"seed": ${MAX_U64_TEXT}}}}`, c.sid);
      await c.prompt(id, from);
      const raw = (await call(url(), `/history/${id}`)).text;
      assert.ok(raw.includes(`"seed":${MAX_U64_TEXT}`), raw);
      const h = await history(id);
      assert.deepEqual(h.outputs, { "1": { text: [`${MAX_U64_TEXT}|int`], seed: [MAX_U64] } });
      const [number, pid, prompt, extra, outputs] = h.prompt as [number, string, Prompt, Record<string, unknown>, string[]];
      assert.deepEqual([typeof number, pid, prompt["1"]!.inputs.seed, extra.client_id, outputs], ["number", id, MAX_U64, c.sid, ["1"]]);
      assert.deepEqual(h.status, { status_str: "success", completed: true, messages: (h.status as { messages: unknown[] }).messages });
      assert.deepEqual((h.status as { messages: Array<[string, unknown]> }).messages.map((m) => m[0]), ["execution_start", "execution_cached", "execution_success"]);
      assert.deepEqual(h.meta, { "1": { node_id: "1", display_node: "1", parent_node: null, real_node_id: "1" } });

      // From a file, as `pyisolate run` reads it.
      const file = join(s().root, "seed.json");
      writeFileSync(file, `{"7": {"class_type": "SeedEcho", "inputs": {"seed": ${MAX_U64_TEXT}}}}`);
      const fromFile = readPrompt(file);
      assert.equal(fromFile["7"]!.inputs.seed, MAX_U64);
      const result = await s().host.run(fromFile);
      assert.deepEqual(result.outputs["7"], { text: [`${MAX_U64_TEXT}|int`], seed: [MAX_U64] });
    }, CALL_MS);

    t.it("a failing node: execution_error with ComfyUI's fields, then status and executing null; the server keeps running prompts", async () => {
      const c = await client();
      const from = c.messages.length;
      const id = await post({ "1": { class_type: "Boom", inputs: { value: 42 } } }, c.sid);
      const seq = await c.prompt(id, from);
      assert.deepEqual(seq.map(shortForm), ["status", "status", "execution_start", "execution_cached", "progress_state(1:running)", "executing(1)", "execution_error", "status", "executing(null)"]);
      const err = seq[6]!.data;
      assert.deepEqual(Object.keys(err).sort(), ["current_inputs", "current_outputs", "exception_message", "exception_type", "executed", "node_id", "node_type", "prompt_id", "timestamp", "traceback"]);
      assert.deepEqual([err.node_id, err.node_type, err.exception_type, err.exception_message], ["1", "Boom", "ValueError", "boom from ServerIsolated with 42"]);
      assert.ok((err.traceback as string[]).some((f) => /ServerIsolated[/\\]__init__\.py", line \d+, in run/.test(f)), String(err.traceback));
      assert.deepEqual(err.current_inputs, { value: [42] });
      assert.ok(Array.isArray(err.current_outputs));
      const h = await history(id);
      assert.deepEqual([(h.status as { status_str: string }).status_str, (h.status as { completed: boolean }).completed], ["error", false]);
      const next = c.messages.length;
      const ok = await post({ "1": { class_type: "SeedEcho", inputs: { seed: 1 } } }, c.sid);
      assert.ok((await c.prompt(ok, next)).some((m) => m.type === "execution_success"));
    }, CALL_MS);

    t.it("POST /interrupt stops the running prompt: execution_interrupted, then status and executing null", async () => {
      const c = await client();
      const from = c.messages.length;
      const id = await post({ "1": { class_type: "SlowProgress", inputs: { steps: 400, delay: 0.05 } }, "2": { class_type: "SeedEcho", inputs: { seed: 0, after: ["1", 0] } } }, c.sid);
      await c.next((m) => m.type === "progress", from);
      // Another prompt's id interrupts nothing.
      assert.equal((await call(url(), "/interrupt", { body: { prompt_id: "not-running" } })).status, 200);
      assert.equal((await call(url(), "/api/interrupt", { body: { prompt_id: id } })).status, 200);
      const seq = await c.prompt(id, from);
      const tail = seq.slice(-3).map(shortForm);
      assert.deepEqual(tail, ["execution_interrupted", "status", "executing(null)"]);
      const data = seq.at(-3)!.data;
      assert.deepEqual([data.prompt_id, data.node_id, data.node_type, data.executed], [id, "1", "SlowProgress", []]);
      const progress = seq.filter((m) => m.type === "progress").length;
      assert.ok(progress >= 1 && progress < 400, `${progress} progress messages`);
      assert.equal(((await history(id)).status as { status_str: string }).status_str, "error");
    }, CALL_MS);

    t.it("two clients see only their own prompt's messages; send_sync reaches the client it names, or every client", async () => {
      const a = await client();
      const b = await client();
      const fa = a.messages.length;
      const fb = b.messages.length;
      const id = await post({ "1": { class_type: "Notify", inputs: { to: b.sid, note: "for b" } } }, a.sid);
      const seqA = await a.prompt(id, fa);
      await b.next((m) => m.type === "server_test.all", fb);
      await until("b's last status", () => b.messages.slice(fb).filter((m) => m.type === "status").length >= 3 || undefined);
      const seqB = b.messages.slice(fb);
      assert.ok(seqA.some((m) => m.type === "executing" && m.data.node === "1"));
      assert.deepEqual(seqB.map(shortForm).filter((x) => x.startsWith("exec") || x.startsWith("progress")), [], "b sees none of a's prompt");
      assert.deepEqual(seqB.filter((m) => m.type === "server_test.note").map((m) => m.data), [{ note: "for b", to: b.sid, from: a.sid }]);
      assert.deepEqual(seqA.filter((m) => m.type === "server_test.note"), [], "the note was for b only");
      assert.deepEqual([seqA, seqB].map((q) => q.filter((m) => m.type === "server_test.all").map((m) => m.data)), [[{ note: "for b", from: a.sid }], [{ note: "for b", from: a.sid }]]);
      // Node messages come inside the node's span, where ComfyUI sends them.
      assert.deepEqual(seqA.map(shortForm).slice(4, 8), ["progress_state(1:running)", "executing(1)", "server_test.all", "progress_state(1:finished)"]);
    }, CALL_MS);

    t.it("branches that run in parallel are shown one node at a time, each node's messages inside its own span", async () => {
      const c = await client();
      const from = c.messages.length;
      const id = await post(
        {
          "1": { class_type: "SlowProgress", inputs: { steps: 4, delay: 0.05 } },
          "2": { class_type: "SharedSlow", inputs: { steps: 4, delay: 0.05 } },
          "3": { class_type: "SeedEcho", inputs: { seed: 3, after: ["1", 0] } },
        },
        c.sid,
      );
      const seq = await c.prompt(id, from);
      let current: string | null = null;
      const announced: string[] = [];
      for (const m of seq) {
        if (m.type === "executing") {
          current = m.data.node as string | null;
          if (current !== null) announced.push(current);
        } else if (m.type === "progress" || m.type === "executed") {
          assert.equal(m.data.node, current, `${shortForm(m)} while the client sees ${current} running`);
        } else if (m.type === "progress_state") {
          const running = Object.entries(m.data.nodes as Record<string, { state: string }>).filter(([, v]) => v.state === "running").map(([k]) => k);
          assert.ok(running.length <= 1, `one node running at a time, got ${running.join(",")}`);
        }
      }
      assert.deepEqual([...announced].sort(), ["1", "2", "3"]);
      assert.ok(announced.indexOf("1") < announced.indexOf("3"));
      assert.equal(seq.filter((m) => m.type === "progress").length, 8);
      assert.ok(seq.some((m) => m.type === "execution_success"));
    }, CALL_MS);

    t.it("preview images go as ComfyUI's binary frames: with metadata to clients that support it, plain otherwise", async () => {
      const withMeta = await client({ flags: { supports_preview_metadata: true } });
      const plain = await client({ flags: {} });
      const run = async (c: WsClient, size: number) => {
        const from = c.messages.length;
        const id = await post({ "1": { class_type: "Preview", inputs: { size } } }, c.sid);
        return { id, frames: (await c.prompt(id, from)).filter((m): m is Extract<WsMessage, { binary: Uint8Array }> => m.binary !== undefined) };
      };
      const a = await run(withMeta, 16);
      assert.deepEqual(a.frames.map((f) => f.type), [4]);
      const f = a.frames[0]!.binary;
      const metaLen = new DataView(f.buffer, f.byteOffset).getUint32(0);
      const meta = JSON.parse(new TextDecoder().decode(f.subarray(4, 4 + metaLen))) as Record<string, unknown>;
      assert.deepEqual(meta, { node_id: "1", prompt_id: a.id, display_node_id: "1", parent_node_id: null, real_node_id: "1", image_type: "image/png" });
      assert.deepEqual([...f.subarray(4 + metaLen)], Array.from({ length: 16 }, (_, i) => i));
      const b = await run(plain, 17);
      assert.deepEqual(b.frames.map((x) => x.type), [1]);
      assert.deepEqual([...b.frames[0]!.binary], [0, 0, 0, 2, ...Array.from({ length: 17 }, (_, i) => i)]);
    }, CALL_MS);

    t.it("the queue: GET /queue while a prompt runs, front, delete, clear; the history: max_items, delete, clear; POST /free", async () => {
      const c = await client();
      const from = c.messages.length;
      const slow = await post({ "1": { class_type: "SlowProgress", inputs: { steps: 400, delay: 0.05 } }, "2": { class_type: "SeedEcho", inputs: { seed: 0, after: ["1", 0] } } }, c.sid);
      await c.next((m) => m.type === "progress", from);
      const second = await post({ "1": { class_type: "SeedEcho", inputs: { seed: 11 } } }, c.sid);
      const first = await post({ "1": { class_type: "SeedEcho", inputs: { seed: 12 } } }, c.sid, { front: true });
      const q = (await call(url(), "/queue")).body as { queue_running: unknown[][]; queue_pending: unknown[][] };
      assert.deepEqual(q.queue_running.map((x) => x[1]), [slow]);
      assert.deepEqual(q.queue_pending.map((x) => x[1]), [first, second], "a prompt sent with front comes first");
      assert.ok((q.queue_pending[0]![0] as number) <= 0);
      assert.deepEqual((await call(url(), "/prompt")).body, { exec_info: { queue_remaining: 3 } });
      assert.equal((await call(url(), "/queue", { body: { delete: [second] } })).status, 200);
      assert.deepEqual(((await call(url(), "/queue")).body as { queue_pending: unknown[][] }).queue_pending.map((x) => x[1]), [first]);
      await call(url(), "/queue", { body: { clear: true } });
      assert.deepEqual(((await call(url(), "/queue")).body as { queue_pending: unknown[] }).queue_pending, []);
      await call(url(), "/interrupt", { body: {} });
      await c.prompt(slow, from);
      assert.deepEqual((await call(url(), "/history/" + second)).body, {});

      const all = Object.keys((await call(url(), "/history")).body as object);
      assert.ok(all.length >= 5);
      assert.deepEqual(Object.keys((await call(url(), "/history?max_items=2")).body as object), all.slice(-2));
      assert.deepEqual(Object.keys((await call(url(), "/api/history?max_items=1&offset=1")).body as object), [all[1]]);
      await call(url(), "/history", { body: { delete: [all[0]] } });
      assert.deepEqual(Object.keys((await call(url(), "/history")).body as object), all.slice(1));
      await call(url(), "/history", { body: { clear: true } });
      assert.deepEqual((await call(url(), "/history")).body, {});
      assert.equal((await call(url(), "/free", { body: { unload_models: true, free_memory: true } })).status, 200);
      // After /free the executor's cache is empty: the same prompt executes again.
      const n = c.messages.length;
      const again = await post({ "1": { class_type: "SeedEcho", inputs: { seed: 1 } } }, c.sid);
      assert.deepEqual((await c.prompt(again, n)).find((m) => m.type === "execution_cached")!.data.nodes, []);
    }, CALL_MS);

    t.it("the history keeps ComfyUI's cap", async () => {
      const { host, root } = s();
      const small = await serve(host, { port: 0, maxHistory: 2, logger: new Logger(() => {}) });
      try {
        const c = await WsClient.open(small.url);
        const ids: string[] = [];
        for (let i = 0; i < 4; i++) {
          const from = c.messages.length;
          const r = await call(small.url, "/prompt", { body: { prompt: { "1": { class_type: "SeedEcho", inputs: { seed: 100 + i } } }, client_id: c.sid } });
          ids.push((r.body as { prompt_id: string }).prompt_id);
          await c.prompt(ids.at(-1)!, from);
        }
        c.close();
        // As ComfyUI's task_done: the oldest entry goes once the history holds more than the cap.
        assert.deepEqual(Object.keys((await call(small.url, "/history")).body as object), ids.slice(1));
      } finally {
        await small.close();
      }
      assert.ok(existsSync(root));
    }, CALL_MS);

    t.it("/view serves input, output and temp files and refuses names that leave their folder; uploads, duplicates and masks", async () => {
      const image = png(4, 3, (x, y) => [x * 60, y * 80, 100, 255], { workflow: '{"x":1}' });
      const upload = async (path: string, bytes: Uint8Array, name: string, fields: Record<string, string> = {}) => {
        const form = new FormData();
        form.append("image", new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "image/png" }), name);
        for (const [k, v] of Object.entries(fields)) form.append(k, v);
        return call(url(), path, { raw: form });
      };
      const up = await upload("/upload/image", image, "pic.png");
      assert.equal(up.status, 200, up.text);
      assert.deepEqual(up.body, { name: "pic.png", subfolder: "", type: "input" });
      assert.deepEqual((await upload("/upload/image", image, "pic.png")).body, { name: "pic.png", subfolder: "", type: "input" }, "the same bytes are not saved twice");
      const other = png(4, 3, () => [1, 2, 3, 255]);
      assert.deepEqual((await upload("/api/upload/image", other, "pic.png")).body, { name: "pic (1).png", subfolder: "", type: "input" });
      assert.deepEqual((await upload("/upload/image", other, "sub.png", { subfolder: "clips", type: "temp", overwrite: "true" })).body, { name: "sub.png", subfolder: "clips", type: "temp" });
      assert.equal((await upload("/upload/image", other, "x.png", { subfolder: "../../escape" })).status, 400);

      const view = await fetch(`${url()}/view?filename=pic.png&type=input`);
      assert.equal(view.status, 200);
      assert.equal(view.headers.get("content-type"), "image/png");
      assert.equal(view.headers.get("content-disposition"), 'filename="pic.png"');
      assert.deepEqual(new Uint8Array(await view.arrayBuffer()), image);
      assert.equal((await call(url(), "/api/view?filename=sub.png&type=temp&subfolder=clips")).status, 200);
      assert.equal((await call(url(), "/view?filename=pic.png%20%5Binput%5D")).status, 200);
      for (const bad of ["../secret.png", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a..b.png"]) assert.equal((await call(url(), `/view?filename=${bad}&type=input`)).status, 400, bad);
      assert.equal((await call(url(), "/view?filename=pic.png&type=input&subfolder=..%2F..")).status, 403);
      assert.equal((await call(url(), "/view?filename=pic.png&type=input&subfolder=%2Fetc")).status, 403);
      assert.equal((await call(url(), "/view?filename=pic.png&type=nowhere")).status, 400);
      assert.equal((await call(url(), "/view?filename=missing.png&type=input")).status, 404);
      assert.equal((await call(url(), "/view")).status, 404);

      // A mask: its alpha goes onto the original, which keeps its workflow text.
      const mask = png(4, 3, (x) => [0, 0, 0, x === 0 ? 0 : 200]);
      const m = await upload("/upload/mask", mask, "clipspace-mask.png", { original_ref: JSON.stringify({ filename: "pic.png", type: "input", subfolder: "" }) });
      assert.equal(m.status, 200, m.text);
      assert.deepEqual(m.body, { name: "clipspace-mask.png", subfolder: "", type: "input" });
      const masked = decodePng(readFileSync(join(s().root, "comfy", "input", "clipspace-mask.png")));
      assert.equal(masked.channels, 4);
      assert.deepEqual([masked.data[0], masked.data[1], masked.data[3], masked.data[7]], [0, 0, 0, 200]);
      assert.deepEqual(masked.text, { workflow: '{"x":1}' });
      const alpha = decodePng(new Uint8Array(await (await fetch(`${url()}/view?filename=clipspace-mask.png&type=input&channel=a`)).arrayBuffer()));
      assert.deepEqual([alpha.data[3], alpha.data[7], alpha.data[4]], [0, 200, 0]);
      const rgb = decodePng(new Uint8Array(await (await fetch(`${url()}/view?filename=pic.png&type=input&channel=rgb`)).arrayBuffer()));
      assert.equal(rgb.channels, 3);
      assert.equal((await upload("/upload/mask", mask, "m2.png", { original_ref: JSON.stringify({ filename: "../pic.png" }) })).status, 400);
    }, CALL_MS);

    t.it("users, settings and user data are files under the user directory; paths that leave it are refused", async () => {
      const users = (await call(url(), "/users")).body as { storage: string; migrated: boolean };
      assert.equal(users.storage, "server");
      assert.equal((await call(url(), "/settings", { body: { "Comfy.A": 1, "Comfy.Seed": MAX_U64 } })).status, 200);
      assert.equal((await call(url(), "/api/settings/Comfy.B", { raw: '"two"' })).status, 200);
      assert.deepEqual((await call(url(), "/settings")).body, { "Comfy.A": 1, "Comfy.Seed": MAX_U64, "Comfy.B": "two" });
      assert.equal((await call(url(), "/settings/Comfy.B")).body, "two");
      assert.equal((await call(url(), "/settings/Comfy.None")).text, "null");
      const userDir = join(s().root, "comfy", "user", "default");
      assert.ok(readFileSync(join(userDir, "comfy.settings.json"), "utf8").includes(MAX_U64_TEXT));
      assert.equal(((await call(url(), "/users")).body as { migrated: boolean }).migrated, true);

      const wf = '{"nodes": [], "seed": 18446744073709551615}';
      const saved = await call(url(), "/userdata/workflows%2Fa.json", { raw: wf });
      assert.equal(saved.status, 200, saved.text);
      assert.equal(saved.body, join("workflows", "a.json"));
      assert.equal((await call(url(), "/userdata/workflows%2Fa.json?overwrite=false", { raw: "x" })).status, 409);
      assert.equal((await call(url(), "/api/userdata/workflows%2Fa.json")).text, wf);
      assert.deepEqual((await call(url(), "/userdata?dir=workflows")).body, ["a.json"]);
      assert.deepEqual((await call(url(), "/userdata?dir=workflows&split=true")).body, [["a.json", "a.json"]]);
      const full = ((await call(url(), "/userdata?dir=workflows&full_info=true")).body as Array<Record<string, unknown>>)[0]!;
      assert.deepEqual([full.path, full.size, typeof full.modified], ["a.json", wf.length, "number"]);
      assert.equal((await call(url(), "/userdata?dir=nothing")).status, 404);
      assert.equal((await call(url(), "/userdata")).status, 400);
      const v2 = (await call(url(), "/v2/userdata")).body as Array<{ name: string; type: string; path: string }>;
      assert.deepEqual(v2.map((e) => [e.type, e.path]), [["directory", "workflows"], ["file", "workflows/a.json"], ["file", "comfy.settings.json"]]);
      const moved = await call(url(), "/userdata/workflows%2Fa.json/move/workflows%2Fb.json?full_info=true", { method: "POST" });
      assert.equal((moved.body as { path: string }).path, "workflows/b.json");
      assert.equal((await call(url(), "/userdata/workflows%2Fa.json")).status, 404);
      assert.equal((await call(url(), "/userdata/workflows%2Fb.json", { method: "DELETE" })).status, 204);
      assert.equal((await call(url(), "/userdata/..%2F..%2Fescape.json", { raw: "x" })).status, 403);
      assert.equal((await call(url(), "/userdata/..%2F..%2Fescape.json")).status, 403);
      const user = await call(url(), "/users", { body: { username: "ann" } });
      assert.match(String(user.body), /^ann_[0-9a-f-]{36}$/);
      assert.equal((await call(url(), "/users", { body: { username: "ann" } })).status, 400);
    }, CALL_MS);

    t.it("pack routes from route_manifest.json and from decorators answer in the pack's process, with JSON, forms and files", async () => {
      const pid = s().host.core.processFor("ServerIsolated").pid;
      const status = await call(url(), "/server_test/status?x=1");
      assert.equal(status.status, 200);
      assert.deepEqual(status.body, { status: "ok", pid, module: "ServerIsolated", query: { x: "1" } });
      assert.deepEqual((await call(url(), "/api/server_test/status")).body, { status: "ok", pid, module: "ServerIsolated", query: {} });
      const processed = await call(url(), "/server_test/process", { raw: `{"values": [1, 2.5, ${MAX_U64_TEXT}]}` });
      assert.deepEqual(processed.body, { result: { values: [1, 2.5, MAX_U64] }, method: "POST" });

      const hello = await call(url(), "/server_test/hello/ann?q=z", { headers: { "X-Test": "yes" } });
      assert.deepEqual(hello.body, { hello: "ann", pid, q: "z", agent: "yes" });
      assert.match(hello.headers.get("content-type")!, /^application\/json/);
      assert.deepEqual((await call(url(), "/api/server_test/hello/b%20c")).body, { hello: "b c", pid, q: null, agent: null });
      const echo = await call(url(), "/server_test/echo", { raw: `{"seed": ${MAX_U64_TEXT}}` });
      assert.equal(echo.text, `{"echo": {"seed": ${MAX_U64_TEXT}}, "type": "int"}`);

      const file = new Uint8Array(3000).map((_, i) => (i * 7) & 255);
      const form = new FormData();
      form.append("kind", "multipart");
      form.append("upload", new Blob([file], { type: "application/x-test" }), "blob.bin");
      const sent = await call(url(), "/server_test/form", { raw: form });
      assert.deepEqual(sent.body, { kind: "multipart", upload: { filename: "blob.bin", size: 3000, sha256: createHash("sha256").update(file).digest("hex"), content_type: "application/x-test" } });
      const urlencoded = await fetch(`${url()}/server_test/form`, { method: "POST", body: new URLSearchParams({ a: "1", b: "two words" }) });
      assert.deepEqual(await urlencoded.json(), { a: "1", b: "two words" });

      const fail = await call(url(), "/server_test/fail");
      assert.equal(fail.status, 500);
      const e = fail.body as { error: string; pack: string; route: string; exception_type: string };
      assert.deepEqual([e.pack, e.route, e.exception_type], ["ServerIsolated", "GET /server_test/fail", "RuntimeError"]);
      assert.match(e.error, /Route GET \/server_test\/fail of pack "ServerIsolated" failed: RuntimeError: this handler always fails/);
      assert.ok(s().lines.some((l) => l.includes("route GET /server_test/fail failed") && l.includes("Traceback")), "the traceback is logged");
      assert.equal((await call(url(), "/server_test/status")).status, 200, "the next request succeeds");

      const missing = await call(url(), "/server_test/missing");
      assert.deepEqual([missing.status, missing.text], [404, "no such thing"]);
      assert.deepEqual([(await call(url(), "/server_test/text")).text], ["plain text"]);
      // Bytes in (`await request.read()`) and out; text in (`await request.text()`), a list out.
      const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
      const raw = await fetch(`${url()}/server_test/raw`, { method: "PUT", body: bytes });
      assert.equal(raw.status, 200);
      assert.equal(raw.headers.get("content-type"), "application/octet-stream");
      assert.deepEqual(new Uint8Array(await raw.arrayBuffer()), bytes.slice().reverse());
      assert.deepEqual((await call(url(), "/server_test/words", { method: "PATCH", raw: "héllo  wörld " })).body, ["héllo", "wörld"]);
      const served = await call(url(), "/server_test/file");
      assert.match(served.text, /ServerIsolated extension loaded/);
      assert.equal((await call(url(), "/server_test/router")).text, "from the router");
      assert.equal((await call(url(), "/api/server_test/router")).status, 404, "app.router routes have no /api twin, as in ComfyUI");
      assert.equal((await call(url(), "/server_test/hello/ann", { method: "DELETE" })).status, 404);
      assert.deepEqual((await call(url(), "/server_shared/ping")).body, { pong: true, shared: true });
    }, CALL_MS);

    t.it("send_sync from a pack's route handler (outside any prompt) reaches the client it names, or every client", async () => {
      const a = await client();
      const b = await client();
      const [fa, fb] = [a.messages.length, b.messages.length];
      assert.equal((await call(url(), "/server_test/broadcast", { body: { to: b.sid, n: 1 } })).status, 204);
      assert.equal((await call(url(), "/server_test/broadcast", { body: { n: 2 } })).status, 204);
      await b.next((m) => m.type === "server_test.route" && (m.data as { n: number }).n === 2, fb);
      await a.next((m) => m.type === "server_test.route" && (m.data as { n: number }).n === 2, fa);
      assert.deepEqual(b.messages.slice(fb).filter((m) => m.type === "server_test.route").map((m) => m.data.n), [1, 2]);
      assert.deepEqual(a.messages.slice(fa).filter((m) => m.type === "server_test.route").map((m) => m.data.n), [2]);
    }, CALL_MS);

    t.it("a warm start registers the pack routes from the metadata cache without starting a process; the first request starts it", async () => {
      const st = s();
      for (const c of st.clients) c.close();
      st.clients = [];
      await st.server.close();
      await st.host.close();
      const logger = new Logger((_level, line) => st.lines.push(line));
      st.host = await createHost({ customNodes: join(st.root, "custom_nodes"), cacheDir: join(st.root, "cache"), python: PYTHON, baseDir: join(st.root, "comfy"), logger });
      assert.deepEqual(st.host.packs.map((p) => p.source), ["cache", "cache"]);
      st.server = await serve(st.host, { port: 0, logger, frontendRoot: false });
      assert.ok(st.server.packRoutes.some((r) => r.path === "/server_test/hello/{name}" && r.source === "decorator"));
      const proc = st.host.core.processFor("ServerIsolated");
      assert.equal(proc.state, "idle");
      assert.deepEqual(((await call(url(), "/extensions")).body), ["/extensions/ServerIsolated/hello.js"]);
      assert.equal(proc.state, "idle", "listing extensions starts nothing");
      const hello = await call(url(), "/server_test/hello/warm");
      assert.equal(hello.status, 200, hello.text);
      assert.equal((hello.body as { hello: string }).hello, "warm");
      assert.equal(proc.state, "ready");
    }, SLOW_MS);

    t.it("close() interrupts the running prompt and closes the clients; closing the host leaves no process and no segment", async () => {
      const st = s();
      const c = await client();
      const from = c.messages.length;
      const id = await post({ "1": { class_type: "SlowProgress", inputs: { steps: 1000, delay: 0.05 } }, "2": { class_type: "SeedEcho", inputs: { seed: 0, after: ["1", 0] } } }, c.sid);
      await c.next((m) => m.type === "progress", from);
      await st.server.close();
      assert.deepEqual(st.server.queue.running, []);
      assert.equal(((st.server.queue.history({ promptId: id })[id]!.status) as { status_str: string }).status_str, "error");
      await until("the client to be closed", () => (c.closed !== null ? true : undefined));
      // Sent before the close: the client got it first.
      assert.ok(c.messages.slice(from).some((m) => m.type === "execution_interrupted" && m.data.prompt_id === id), "the client saw its prompt interrupted");
      await assert.rejects(fetch(`${url()}/prompt`));
      const procs = st.host.core.processes();
      const folder = st.host.segments.hostDir;
      assert.ok(existsSync(folder), "the host's segment folder exists while it runs");
      await st.host.close();
      assert.ok(procs.every((p) => p.state === "closed" || p.state === "exited" || p.state === "idle"), procs.map((p) => p.state).join(","));
      assert.ok(!existsSync(folder), "closing the host removed its segment folder");
    }, CALL_MS);
  });
}
