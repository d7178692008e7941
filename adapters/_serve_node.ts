/**
 * The HTTP server on Node: `node:http` with `@hono/node-server`'s request listener (Node's
 * request ↔ web `Request`/`Response`), and crossws's Node adapter on the `upgrade` event for
 * WebSockets. Loaded by `adapters/node.ts` when a server is first asked for. Private to
 * `adapters/`.
 * @module
 */
import { createServer, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import nodeAdapter from "crossws/adapters/node";
import type { HttpServeOptions, HttpServer } from "../src/runtime/contract.ts";

/** Starts the server; resolves once it listens. */
export async function serveHttp(opts: HttpServeOptions): Promise<HttpServer> {
  const server = createServer(getRequestListener((req) => opts.fetch(req)));
  const ws = opts.websocket ? nodeAdapter({ hooks: opts.websocket }) : undefined;
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!ws) return void socket.destroy();
    ws.handleUpgrade(req, socket, head).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    hostname: opts.hostname,
    port: addr.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        void ws?.close(1001, "server shutting down");
        server.close(() => resolve());
        server.closeIdleConnections();
        // Connections still busy after a moment are cut: the host is going away.
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
      return closing;
    },
  };
}
