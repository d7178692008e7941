/**
 * The server's HTTP app (hono): ComfyUI's routes, each served at `/…` and at `/api/…` as
 * ComfyUI serves them, then ComfyUI's `/internal/…` routes, then the packs' routes and web
 * directories. A route that throws answers 500 with the reason, and the server goes on.
 *
 * More areas (a static frontend at `/`, the frontend's extra routes) are added by listing
 * them: `areas` are served at `/…` and `/api/…`, `after` after the pack routes (where a
 * catch-all static root belongs, as ComfyUI registers its web root last).
 * @module
 */
import { Hono } from "hono";
import type { RouteArea, ServerContext } from "./context.ts";
import { BadJson, json } from "./http.ts";
import { packRoutes, type PackRouteEntry } from "./pack_routes.ts";
import { fileRoutes } from "./routes_files.ts";
import { promptRoutes } from "./routes_prompt.ts";
import { internalRoutes, systemRoutes } from "./routes_system.ts";
import { userRoutes } from "./routes_user.ts";

/** The route areas every server has, served at `/…` and `/api/…`. */
export const API_AREAS: readonly RouteArea[] = [promptRoutes, systemRoutes, fileRoutes, userRoutes];

/** What {@link createApp} assembles. */
export interface AppParts {
  /** Areas served at `/…` and `/api/…`. @default {@link API_AREAS} */
  areas?: readonly RouteArea[];
  /** The packs' routes (from `collectPackRoutes`). */
  packRoutes: PackRouteEntry[];
  /** How long a pack's handler may take. */
  routeTimeoutMs?: number;
  /** Areas registered after the pack routes (a static web root). @default [] */
  after?: readonly RouteArea[];
}

/** Builds the app: the API areas (twice: at `/` and `/api`), `/internal`, the pack routes, then `after`. */
export function createApp(ctx: ServerContext, parts: AppParts): Hono {
  const api = new Hono();
  for (const area of parts.areas ?? API_AREAS) area(api, ctx);
  const app = new Hono();
  app.onError((e) => {
    if (e instanceof BadJson) return json({ error: e.message }, 400);
    ctx.logger.error(`A request failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return json({ error: e instanceof Error ? e.message : String(e) }, 500);
  });
  app.route("/api", api);
  app.route("/", api);
  internalRoutes(app, ctx);
  packRoutes(app, ctx, parts.packRoutes, parts.routeTimeoutMs);
  for (const area of parts.after ?? []) area(app, ctx);
  return app;
}
