/**
 * Answers as ComfyUI's aiohttp server writes them: JSON with every integer exact
 * (`application/json; charset=utf-8`), plain text, empty answers, files (with a MIME type
 * from the name) — and request bodies read with the same exact JSON.
 * @module
 */
import { createReadStream, statSync } from "node:fs";
import { basename, extname } from "node:path";
import { Readable } from "node:stream";
import { getMimeType } from "hono/utils/mime";
import { parseExactJson, stringifyExactJson } from "../util/exact_json.ts";

/** A JSON answer (`web.json_response`), integers beyond 2^53 included. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(stringifyExactJson(body), { status, headers: { "Content-Type": "application/json; charset=utf-8", ...headers } });
}

/** A plain-text answer (`web.Response(text=...)`). */
export function text(body: string, status = 200): Response {
  return new Response(body, { status, headers: { "Content-Type": "text/plain; charset=utf-8" } });
}

/** An answer without a body (`web.Response(status=...)`). */
export function empty(status = 200): Response {
  return new Response(null, { status });
}

/** A request body that is not JSON, as an error the route answers with. */
export class BadJson extends Error {}

/** The request's body as exact JSON. @throws {BadJson} when it is not JSON. */
export async function readJson(req: Request): Promise<unknown> {
  const body = await req.text();
  try {
    return parseExactJson(body);
  } catch (e) {
    throw new BadJson(`The request body is not valid JSON: ${(e as Error).message}.`);
  }
}

/** The MIME type of a file name, `application/octet-stream` when unknown. */
export function mimeOf(name: string): string {
  const ext = extname(name).toLowerCase();
  if (ext === ".js" || ext === ".mjs") return "application/javascript; charset=utf-8";
  return getMimeType(basename(name)) ?? "application/octet-stream";
}

/**
 * A file streamed from disk (`web.FileResponse`), or null when `path` is not a file. The
 * `Content-Type` comes from the name unless `headers` gives one.
 */
export function fileResponse(path: string, headers: Record<string, string> = {}, status = 200): Response | null {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) return null;
    size = st.size;
  } catch {
    return null;
  }
  const has = (name: string) => Object.keys(headers).some((k) => k.toLowerCase() === name);
  const out: Record<string, string> = { ...headers };
  if (!has("content-type")) out["Content-Type"] = mimeOf(path);
  out["Content-Length"] = String(size);
  const body = Readable.toWeb(createReadStream(path)) as unknown as ReadableStream<Uint8Array>;
  return new Response(body, { status, headers: out });
}
