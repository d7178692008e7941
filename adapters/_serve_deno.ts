/**
 * The HTTP server on Deno: `Deno.serve`, with crossws's Deno adapter (`Deno.upgradeWebSocket`)
 * for requests that ask for a WebSocket. Loaded by `adapters/deno.ts` when a server is first
 * asked for. Private to `adapters/`.
 * @module
 */
import denoAdapter from "crossws/adapters/deno";
import type { HttpServeOptions, HttpServer } from "../src/runtime/contract.ts";

interface DenoServeInfo {
  remoteAddr?: { hostname: string; port: number; transport?: string };
}

interface DenoHttpServer {
  readonly addr: { hostname: string; port: number };
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

interface DenoServe {
  serve(
    options: { hostname: string; port: number; onListen?: (addr: { hostname: string; port: number }) => void },
    handler: (req: Request, info: DenoServeInfo) => Response | Promise<Response>,
  ): DenoHttpServer;
}

const Deno = (globalThis as unknown as { Deno: DenoServe }).Deno;

/** Starts the server; resolves once it listens. */
export async function serveHttp(opts: HttpServeOptions): Promise<HttpServer> {
  const ws = opts.websocket ? denoAdapter({ hooks: opts.websocket }) : undefined;
  let listening!: () => void;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const server = Deno.serve({ hostname: opts.hostname, port: opts.port, onListen: () => listening() }, (req, info) => {
    if (ws && req.headers.get("upgrade")?.toLowerCase() === "websocket") return ws.handleUpgrade(req, info);
    return opts.fetch(req);
  });
  await ready;
  let closing: Promise<void> | undefined;
  return {
    hostname: opts.hostname,
    port: server.addr.port,
    close() {
      closing ??= (async () => {
        await ws?.close(1001, "server shutting down");
        await server.shutdown();
      })();
      return closing;
    },
  };
}
