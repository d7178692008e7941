/**
 * `serve(host)`: a ComfyUI-compatible HTTP + WebSocket server over a host — ComfyUI's API
 * (same paths, bodies, status codes, `/ws` messages in ComfyUI's order), one prompt queue
 * run one prompt at a time (or up to `maxConcurrentPrompts` at once), the packs' own
 * routes run in their processes, and what nodes
 * send through `PromptServer` reaching the `/ws` clients. One implementation for Node, Deno
 * and Bun (hono for the routes, crossws for the WebSocket); the runtime's own server
 * listens (`Runtime.serveHttp`).
 * @module
 */
import { log as defaultLog, type Logger } from "../log.ts";
import type { Host } from "../host.ts";
import { PyisolateError } from "../errors.ts";
import { getRuntime } from "../runtime/detect.ts";
import type { HttpServer } from "../runtime/contract.ts";
import { API_AREAS, createApp } from "./app.ts";
import type { RouteArea, ServerContext } from "./context.ts";
import { text } from "./http.ts";
import { LogBuffer } from "./logs.ts";
import { collectPackRoutes, DEFAULT_ROUTE_TIMEOUT_MS, type PackRouteEntry } from "./pack_routes.ts";
import { MAXIMUM_HISTORY_SIZE, PromptQueue } from "./queue.ts";
import { WsHub, type ServerFeatures } from "./ws.ts";
import { editorApiArea, editorStaticArea, findFrontendRoot, findTemplatesRoot } from "./frontend.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Address to listen on. @default "127.0.0.1" (loopback only) */
  listen?: string;
  /** TCP port; 0 picks a free one. @default 8188 */
  port?: number;
  /** Largest request body accepted (uploads, pack routes), in MB. @default 100 */
  maxUploadSizeMb?: number;
  /** How many finished prompts `/history` keeps. @default 10000 (ComfyUI's MAXIMUM_HISTORY_SIZE) */
  maxHistory?: number;
  /**
   * How many prompts run at once. With more than 1, queued prompts start in order as soon as
   * one of that many lanes is free; each lane has its own output cache, and a Python process
   * runs one node at a time, so prompts over different packs run side by side while prompts
   * that need the same pack take turns in its process, node by node. @default 1 (one at a
   * time, as ComfyUI)
   */
  maxConcurrentPrompts?: number;
  /** How long a pack's route handler may take, in ms (0: no limit). @default 300000 */
  routeTimeoutMs?: number;
  /** Where the server's own lines go, and what `/internal/logs` shows. @default the shared `log` */
  logger?: Logger;
  /** More route areas, served at `/…` and `/api/…` after the built-in ones. @default [] */
  areas?: readonly RouteArea[];
  /** Route areas after the pack routes (a static web root, which must come last). @default [] */
  after?: readonly RouteArea[];
  /**
   * The ComfyUI editor's static build to serve at `/`: a folder, `false` for none, or (the
   * default) the `comfyui-frontend-package` installed in the host Python's environment.
   */
  frontendRoot?: string | false;
}

/** A running server. */
export interface PromptServerHandle {
  /** `http://<listen>:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly hostname: string;
  /** The editor's static root served at `/`, or null when none is served. */
  readonly frontendRoot: string | null;
  /** The packs' routes it serves. */
  readonly packRoutes: readonly PackRouteEntry[];
  /** The queue (what `/queue` and `/history` show). */
  readonly queue: PromptQueue;
  /**
   * Shuts down: refuses new prompts, empties the queue, interrupts the running prompts and
   * waits for them to end (their clients still get `execution_interrupted`), closes the
   * WebSocket clients and stops listening. The host stays open (close it next).
   */
  close(): Promise<void>;
}

/**
 * Serves ComfyUI's HTTP API and `/ws` over a host.
 *
 * @throws {PyisolateError} `USAGE` when the address cannot be listened on (in use, not allowed).
 * @example
 * ```ts
 * import { createHost, serve } from "pyisolate";
 * const host = await createHost({ customNodes: "custom_nodes" });
 * const server = await serve(host, { port: 8188 });
 * console.log(`ComfyUI API on ${server.url}`);
 * // later
 * await server.close();
 * await host.close();
 * ```
 */
export async function serve(host: Host, opts: ServeOptions = {}): Promise<PromptServerHandle> {
  const logger = opts.logger ?? defaultLog;
  const listen = opts.listen ?? "127.0.0.1";
  const port = opts.port ?? 8188;
  const maxUploadSize = Math.round((opts.maxUploadSizeMb ?? 100) * 1024 * 1024);
  const features: ServerFeatures = { supports_preview_metadata: true, max_upload_size: maxUploadSize };
  const logs = new LogBuffer();
  const detach = logs.attach(logger);

  let queue: PromptQueue | undefined;
  const hub = new WsHub(
    () => features,
    (sid) => {
      // A client that reconnects while its prompt runs learns which node runs, as in ComfyUI.
      for (const r of queue?.running ?? []) if (r.clientId === sid && r.node !== null) hub.sendJson(sid, "executing", { node: r.node });
    },
  );
  queue = new PromptQueue(host, hub, logger, { maxHistory: opts.maxHistory ?? MAXIMUM_HISTORY_SIZE, maxConcurrent: opts.maxConcurrentPrompts ?? 1 });
  const q = queue;
  // What nodes send outside a prompt (from a route handler, say) reaches the clients directly;
  // during a prompt it comes through that run's events, in its client's order.
  const offBus = host.api.events.on((e) => {
    if (host.promptOf(e) !== null) return;
    const data = e.data instanceof Uint8Array ? { bytes: e.data } : ((e.data ?? {}) as Record<string, unknown>);
    hub.sendEvent({ type: e.type, data, sid: e.sid }, null);
  });

  const sitePackages = host.python.sitePackages ?? [];
  const frontendRoot = opts.frontendRoot === false ? null : opts.frontendRoot ?? findFrontendRoot(sitePackages);
  if (frontendRoot !== null && !existsSync(join(frontendRoot, "index.html"))) {
    throw new PyisolateError("NOT_FOUND", `The editor's folder ${frontendRoot} has no index.html; give the "static" folder of comfyui-frontend-package (or a ComfyUI frontend build).`);
  }
  const ctx: ServerContext = { host, queue: q, hub, logs, logger, features, maxUploadSize, frontendRoot };
  const routes = collectPackRoutes(ctx);
  const app = createApp(ctx, {
    areas: [...API_AREAS, ...(frontendRoot !== null ? [editorApiArea] : []), ...(opts.areas ?? [])],
    packRoutes: routes,
    routeTimeoutMs: opts.routeTimeoutMs ?? DEFAULT_ROUTE_TIMEOUT_MS,
    after: [...(opts.after ?? []), ...(frontendRoot !== null ? [editorStaticArea(frontendRoot, findTemplatesRoot(sitePackages))] : [])],
  });
  app.notFound(() => text("404: Not Found", 404));

  const runtime = await getRuntime();
  let server: HttpServer;
  try {
    server = await runtime.serveHttp({ hostname: listen, port, fetch: (req) => app.fetch(req), websocket: hub.hooks(() => q.info()) });
  } catch (e) {
    offBus();
    detach();
    await q.close();
    const why = (e as NodeJS.ErrnoException).code === "EADDRINUSE" || /in use/i.test(String(e)) ? `port ${port} is in use; pass another --port (0 picks a free one)` : String((e as Error).message ?? e);
    throw new PyisolateError("USAGE", `Cannot listen on ${listen}:${port}: ${why}.`, { cause: e });
  }
  const shown = listen.includes(":") ? `[${listen}]` : listen;
  const url = `http://${shown}:${server.port}`;
  for (const r of routes) logger.pack(r.pack, `route ${r.method} ${r.path} (${r.source === "manifest" ? "route_manifest.json" : "registered at import"})`, "debug");
  let closing: Promise<void> | undefined;
  return {
    url,
    port: server.port,
    hostname: listen,
    packRoutes: routes,
    frontendRoot,
    queue: q,
    close() {
      closing ??= (async () => {
        // The running prompt ends first (interrupted), so that its client sees how it ended.
        await q.close();
        hub.close();
        await server.close();
        offBus();
        detach();
      })();
      return closing;
    },
  };
}
