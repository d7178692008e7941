/**
 * What every route area of the server shares: the host, the queue, the WebSocket clients,
 * the log buffer and the server's options.
 * @module
 */
import type { Hono } from "hono";
import type { Host } from "../host.ts";
import type { Logger } from "../log.ts";
import type { LogBuffer } from "./logs.ts";
import type { PromptQueue } from "./queue.ts";
import type { ServerFeatures, WsHub } from "./ws.ts";

/** The server's shared state. */
export interface ServerContext {
  host: Host;
  queue: PromptQueue;
  hub: WsHub;
  logs: LogBuffer;
  logger: Logger;
  features: ServerFeatures;
  /** Largest upload accepted, in bytes. */
  maxUploadSize: number;
  /** The editor's static root when the server serves it (its scripts join `/extensions`). */
  frontendRoot?: string | null;
}

/**
 * A route area: registers its routes on `app`. Areas registered on the `api` app are served
 * at `/…` and at `/api/…`, as ComfyUI serves its routes.
 */
export type RouteArea = (app: Hono, ctx: ServerContext) => void;
