/**
 * The HTTP server on Bun: `Bun.serve`, with crossws's Bun adapter (Bun's own `websocket`
 * handlers) for requests that ask for a WebSocket. Loaded by `adapters/bun.ts` when a server
 * is first asked for. Private to `adapters/`.
 * @module
 */
import bunAdapter from "crossws/adapters/bun";
import type { HttpServeOptions, HttpServer } from "../src/runtime/contract.ts";

interface BunHttpServer {
  readonly port: number;
  stop(closeActiveConnections?: boolean): Promise<void>;
}

interface BunServe {
  serve(options: {
    hostname: string;
    port: number;
    fetch(req: Request, server: BunHttpServer): Response | Promise<Response | undefined> | undefined;
    websocket?: unknown;
  }): BunHttpServer;
}

const Bun = (globalThis as unknown as { Bun: BunServe }).Bun;

/** Starts the server; it listens once `Bun.serve` returns. */
export async function serveHttp(opts: HttpServeOptions): Promise<HttpServer> {
  const ws = opts.websocket ? bunAdapter({ hooks: opts.websocket }) : undefined;
  const server = Bun.serve({
    hostname: opts.hostname,
    port: opts.port,
    async fetch(req, srv) {
      if (ws && req.headers.get("upgrade")?.toLowerCase() === "websocket") {
        // undefined: Bun took the connection over as a WebSocket.
        return (await ws.handleUpgrade(req, srv as never)) ?? undefined;
      }
      return opts.fetch(req);
    },
    ...(ws ? { websocket: ws.websocket } : {}),
  });
  let closing: Promise<void> | undefined;
  return {
    hostname: opts.hostname,
    port: server.port,
    close() {
      closing ??= (async () => {
        await ws?.close(1001, "server shutting down");
        await server.stop(false);
        // Connections that stay open after a moment are cut: the host is going away.
        const cut = setTimeout(() => void server.stop(true), 2000);
        (cut as { unref?: () => void }).unref?.();
      })();
      return closing;
    },
  };
}
