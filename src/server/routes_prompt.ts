/**
 * Prompts, the queue and the history: `GET/POST /prompt`, `GET/POST /queue`, `GET/POST
 * /history`, `GET /history/{prompt_id}`, `POST /interrupt`, `POST /free` — ComfyUI's paths,
 * bodies and status codes. A posted prompt is validated first (400 with `error` and
 * `node_errors` when it fails), then queued (`{prompt_id, number, node_errors}`).
 * @module
 */
import type { Hono } from "hono";
import type { Prompt } from "../executor/types.ts";
import { BadJson, empty, json, readJson } from "./http.ts";
import type { ServerContext } from "./context.ts";
import { PromptQueue } from "./queue.ts";

type Body = Record<string, unknown>;

async function body(req: Request): Promise<Body> {
  const data = await readJson(req);
  return data && typeof data === "object" && !Array.isArray(data) ? (data as Body) : {};
}

function badJson(e: unknown): Response {
  if (e instanceof BadJson) return json({ error: { type: "invalid_json", message: e.message, details: "", extra_info: {} }, node_errors: {} }, 400);
  throw e;
}

function asNumber(v: unknown): number {
  return typeof v === "bigint" ? Number(v) : Number(v);
}

/** Registers the prompt, queue and history routes. */
export function promptRoutes(app: Hono, ctx: ServerContext): void {
  const { queue, host } = ctx;

  app.get("/prompt", () => json(queue.info()));

  app.post("/prompt", async (c) => {
    let data: Body;
    try {
      data = await body(c.req.raw);
    } catch (e) {
      return badJson(e);
    }
    ctx.logger.info("got prompt");
    const number = "number" in data ? asNumber(data.number) : queue.nextNumber(Boolean(data.front));
    if (!("prompt" in data)) {
      const error = { type: "no_prompt", message: "No prompt provided", details: "No prompt provided", extra_info: {} };
      return json({ error, node_errors: {} }, 400);
    }
    const prompt = data.prompt as Prompt;
    const promptId = "prompt_id" in data && data.prompt_id !== null && data.prompt_id !== undefined ? String(data.prompt_id) : crypto.randomUUID();
    const valid = await host.validate(prompt);
    const extra: Body = data.extra_data && typeof data.extra_data === "object" ? { ...(data.extra_data as Body) } : {};
    if ("client_id" in data) extra.client_id = data.client_id;
    if (!valid.ok) {
      ctx.logger.warn(`invalid prompt: ${valid.error?.message ?? "?"}`);
      return json({ error: valid.error, node_errors: valid.node_errors }, 400);
    }
    if (queue.closed) return json({ error: { type: "server_shutting_down", message: "The server is shutting down", details: "", extra_info: {} }, node_errors: {} }, 503);
    const extraData = PromptQueue.withoutSensitive(extra);
    extraData.create_time = Date.now();
    queue.put({ number, promptId, prompt, extraData, outputs: valid.outputs });
    return json({ prompt_id: promptId, number, node_errors: valid.node_errors });
  });

  app.get("/queue", () => json(queue.current()));

  app.post("/queue", async (c) => {
    let data: Body;
    try {
      data = await body(c.req.raw);
    } catch (e) {
      return badJson(e);
    }
    if (data.clear) queue.wipe();
    if (Array.isArray(data.delete)) for (const id of data.delete) queue.delete(String(id));
    return empty();
  });

  app.get("/history", (c) => {
    const max = c.req.query("max_items");
    const offset = c.req.query("offset");
    return json(
      queue.history({
        ...(max !== undefined ? { maxItems: Number.parseInt(max, 10) } : {}),
        ...(offset !== undefined ? { offset: Number.parseInt(offset, 10) } : {}),
      }),
    );
  });

  app.get("/history/:prompt_id", (c) => json(queue.history({ promptId: c.req.param("prompt_id") })));

  app.post("/history", async (c) => {
    let data: Body;
    try {
      data = await body(c.req.raw);
    } catch (e) {
      return badJson(e);
    }
    if (data.clear) queue.wipeHistory();
    if (Array.isArray(data.delete)) for (const id of data.delete) queue.deleteHistory(String(id));
    return empty();
  });

  app.post("/interrupt", async (c) => {
    let data: Body = {};
    try {
      data = await body(c.req.raw);
    } catch {
      // ComfyUI interrupts whatever runs when the body is not JSON
    }
    const promptId = typeof data.prompt_id === "string" && data.prompt_id ? data.prompt_id : undefined;
    if (promptId) {
      if (queue.interrupt(promptId)) ctx.logger.info(`Interrupting prompt ${promptId}`);
      else ctx.logger.info(`Prompt ${promptId} is not currently running, skipping interrupt`);
    } else {
      ctx.logger.info("Global interrupt (no prompt_id specified)");
      queue.interrupt();
    }
    return empty();
  });

  app.post("/free", async (c) => {
    let data: Body;
    try {
      data = await body(c.req.raw);
    } catch (e) {
      return badJson(e);
    }
    queue.setFlags({ unloadModels: Boolean(data.unload_models), freeMemory: Boolean(data.free_memory) });
    return empty();
  });
}
