/**
 * Node packs' HTTP routes, answered in the pack's own process. Two sources:
 *
 * - `route_manifest.json` in the pack folder (`{"routes": [{method, path, handler}]}`):
 *   `handler` names an async method of the pack's extension class; read here at start-up;
 * - the routes the pack registered at import (`@PromptServer.instance.routes.get(...)`,
 *   `app.router.add_get(...)`, `routes.static(...)`), which its process recorded and the
 *   metadata cache keeps, so a warm start registers them without starting the process.
 *
 * A request that matches is sent just in time to the pack's process (started on first use)
 * with its method, path, query, headers, `match_info` and body; the answer comes back with
 * its status and headers. A handler that raises is a 500 naming the pack and the route, and
 * the server goes on serving. Each pack's `WEB_DIRECTORY` is served under
 * `/extensions/<pack>/`, and folders packs register with `static` under their prefix.
 * Built-in routes win over pack routes, and the first pack (by name) over later ones.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Context, Hono, Next } from "hono";
import { PyisolateError } from "../errors.ts";
import { RemoteError } from "../protocol/remote_error.ts";
import type { PackRoute } from "../nodes/registry.ts";
import type { ServerContext } from "./context.ts";
import { fileResponse, json } from "./http.ts";
import { fileUnder } from "./routes_files.ts";

/** How long a pack's route handler may take before the request answers 504. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 300_000;

/** A route of a pack, compiled. */
export interface PackRouteEntry {
  pack: string;
  method: string;
  /** The pattern as the pack wrote it (aiohttp's syntax). */
  path: string;
  /** Whether it is also served under `/api`. */
  api: boolean;
  /** Where it came from. */
  source: "manifest" | "decorator";
  /** What the process needs to find the handler. */
  spec: { key: string } | { handler: string };
  regex: RegExp;
}

/**
 * aiohttp's path pattern as a regular expression: `{name}` matches one path segment,
 * `{name:regex}` its regex; the rest is literal.
 * @throws {PyisolateError} `VALIDATION` for a pattern with an unclosed `{`.
 */
export function compilePattern(path: string): RegExp {
  let out = "";
  let i = 0;
  while (i < path.length) {
    const ch = path[i]!;
    if (ch !== "{") {
      out += ch.replace(/[.*+?^$()|[\]\\/]/g, "\\$&");
      i++;
      continue;
    }
    // Find the matching brace (regexes may hold braces of their own).
    let depth = 0;
    let j = i;
    for (; j < path.length; j++) {
      if (path[j] === "{") depth++;
      else if (path[j] === "}" && --depth === 0) break;
    }
    if (j >= path.length) throw new PyisolateError("VALIDATION", `Route path ${JSON.stringify(path)} has an unclosed "{".`);
    const inner = path.slice(i + 1, j);
    const colon = inner.indexOf(":");
    const name = colon < 0 ? inner : inner.slice(0, colon);
    const re = colon < 0 ? "[^{}/]+" : inner.slice(colon + 1);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new PyisolateError("VALIDATION", `Route path ${JSON.stringify(path)} has a parameter named ${JSON.stringify(name)}; use a Python identifier.`);
    out += `(?<${name}>${re})`;
    i = j + 1;
  }
  return new RegExp(`^${out}$`);
}

interface ManifestRoute {
  method?: unknown;
  path?: unknown;
  handler?: unknown;
}

/** The routes of a pack's `route_manifest.json`; problems are logged and the route skipped. */
function manifestRoutes(ctx: ServerContext, pack: string, dir: string): PackRouteEntry[] {
  const file = join(dir, "route_manifest.json");
  if (!existsSync(file)) return [];
  let routes: ManifestRoute[];
  try {
    const data = JSON.parse(readFileSync(file, "utf8")) as { routes?: unknown };
    if (!Array.isArray(data?.routes)) throw new Error('it has no "routes" list');
    routes = data.routes as ManifestRoute[];
  } catch (e) {
    ctx.logger.pack(pack, `- route_manifest.json is not used: ${(e as Error).message}. Write {"routes": [{"method": "GET", "path": "/my_node/status", "handler": "get_status"}]}.`, "warn");
    return [];
  }
  const out: PackRouteEntry[] = [];
  for (const r of routes) {
    const method = typeof r.method === "string" ? r.method.toUpperCase() : "GET";
    if (typeof r.path !== "string" || !r.path.startsWith("/") || typeof r.handler !== "string" || !r.handler) {
      ctx.logger.pack(pack, `- route_manifest.json: skipped ${JSON.stringify(r)}; each route needs "path" (starting with "/") and "handler".`, "warn");
      continue;
    }
    try {
      out.push({ pack, method, path: r.path, api: true, source: "manifest", spec: { handler: r.handler }, regex: compilePattern(r.path) });
    } catch (e) {
      ctx.logger.pack(pack, `- route_manifest.json: skipped ${method} ${r.path}: ${(e as Error).message}`, "warn");
    }
  }
  return out;
}

/** Every pack route, manifest routes first, packs in name order. */
export function collectPackRoutes(ctx: ServerContext): PackRouteEntry[] {
  const recorded = ctx.host.registry.packRoutes();
  const out: PackRouteEntry[] = [];
  const loaded = new Set(ctx.host.packs.filter((p) => p.source !== "failed").map((p) => p.name));
  for (const p of [...ctx.host.core.packs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (!loaded.has(p.name)) continue;
    out.push(...manifestRoutes(ctx, p.name, p.path));
    for (const r of (recorded[p.name]?.routes ?? []) as PackRoute[]) {
      try {
        out.push({ pack: p.name, method: r.method.toUpperCase(), path: r.path, api: r.api, source: "decorator", spec: { key: `${r.method.toUpperCase()} ${r.path}` }, regex: compilePattern(r.path) });
      } catch (e) {
        ctx.logger.pack(p.name, `- route ${r.method} ${r.path} is not served: ${(e as Error).message}`, "warn");
      }
    }
  }
  return out;
}

function methodMatches(route: string, method: string): boolean {
  return route === "*" || route === method || (method === "HEAD" && route === "GET");
}

/** The pack's answer as a `Response`. */
function answer(a: { status?: unknown; reason?: unknown; headers?: unknown; body?: unknown; file?: unknown }): Response {
  const status = typeof a.status === "number" ? a.status : 200;
  const headers = new Headers();
  if (Array.isArray(a.headers)) for (const [k, v] of a.headers as Array<[string, string]>) headers.append(String(k), String(v));
  if (typeof a.file === "string") {
    const h: Record<string, string> = {};
    headers.forEach((v, k) => (h[k] = v));
    return fileResponse(a.file, h, status) ?? json({ error: `The file ${JSON.stringify(a.file)} a route handler sent does not exist.` }, 404);
  }
  const noBody = status === 204 || status === 304 || (status >= 100 && status < 200);
  const body = !noBody && a.body instanceof Uint8Array ? (a.body as Uint8Array<ArrayBuffer>) : null;
  return new Response(body, { status, headers, ...(typeof a.reason === "string" ? { statusText: a.reason } : {}) });
}

/** Registers the pack routes, the packs' web directories and their static folders (after the built-in routes). */
export function packRoutes(app: Hono, ctx: ServerContext, routes: PackRouteEntry[], timeoutMs: number = DEFAULT_ROUTE_TIMEOUT_MS): void {
  // Which route answers: the first that matches (built-in routes were registered before).
  const seen = new Map<string, PackRouteEntry>();
  for (const r of routes) {
    const key = `${r.method} ${r.path}`;
    const first = seen.get(key);
    if (first && first.pack !== r.pack) ctx.logger.pack(r.pack, `- route ${key} is also registered by ${first.pack}; ${first.pack}'s answers`, "warn");
    else if (!first) seen.set(key, r);
  }

  const dispatch = async (c: Context, r: PackRouteEntry, params: Record<string, string>): Promise<Response> => {
    const req = c.req.raw;
    const url = new URL(req.url);
    const length = Number(req.headers.get("content-length") ?? 0);
    if (length > ctx.maxUploadSize) return json({ error: `The request body is ${length} bytes; the limit is ${ctx.maxUploadSize}.` }, 413);
    const body = req.method === "GET" || req.method === "HEAD" ? new Uint8Array(0) : new Uint8Array(await req.arrayBuffer());
    const headers: Array<[string, string]> = [];
    req.headers.forEach((v, k) => headers.push([k, v]));
    const request = { method: req.method, path: url.pathname, url: req.url, query: [...url.searchParams.entries()], headers, match_info: params, body };
    const where = `${r.method} ${r.path}`;
    try {
      const a = await ctx.host.core.processFor(r.pack).call("$routes", "handle", [r.pack, r.spec, request], { timeoutMs });
      return answer((a ?? {}) as Record<string, unknown>);
    } catch (e) {
      if (e instanceof RemoteError) {
        ctx.logger.pack(r.pack, `- route ${where} failed: ${e.pythonType}: ${e.pythonMessage}\n${e.traceback.trimEnd()}`, "error");
        return json(
          { error: `Route ${where} of pack "${r.pack}" failed: ${e.pythonType}: ${e.pythonMessage}`, pack: r.pack, route: where, exception_type: e.pythonType, exception_message: e.pythonMessage },
          500,
        );
      }
      const message = e instanceof Error ? e.message : String(e);
      ctx.logger.pack(r.pack, `- route ${where} failed: ${message}`, "error");
      const status = e instanceof PyisolateError && e.code === "TIMEOUT" ? 504 : 500;
      return json({ error: `Route ${where} of pack "${r.pack}" failed: ${message}`, pack: r.pack, route: where }, status);
    }
  };

  const statics = Object.entries(ctx.host.registry.packRoutes()).flatMap(([pack, r]) => r.static_routes.map((s) => ({ pack, ...s })));
  const webDirs = ctx.host.registry.webDirectories();

  app.use("*", async (c: Context, next: Next) => {
    const path = c.req.path;
    const method = c.req.method;
    for (const [route, plain] of [[path, true] as const, ...(path.startsWith("/api/") ? [[path.slice(4), false] as const] : [])]) {
      for (const r of routes) {
        if (!plain && !r.api) continue;
        if (!methodMatches(r.method, method)) continue;
        const m = r.regex.exec(route);
        if (!m) continue;
        const params: Record<string, string> = {};
        for (const [k, v] of Object.entries(m.groups ?? {})) params[k] = decodeURIComponent(v);
        return dispatch(c, r, params);
      }
    }
    if (method === "GET" || method === "HEAD") {
      const ext = /^\/extensions\/([^/]+)\/(.+)$/.exec(path);
      if (ext) {
        const dir = webDirs[decodeURIComponent(ext[1]!)];
        if (dir) return fileUnder(dir, ext[2]!) ?? next();
      }
      for (const s of statics) {
        if (path.startsWith(`${s.prefix}/`)) return fileUnder(s.path, path.slice(s.prefix.length + 1)) ?? next();
      }
    }
    return next();
  });
}
