/**
 * Files in the input, output and temp folders: `GET /view`, `POST /upload/image`, `POST
 * /upload/mask`, with ComfyUI's checks: a name that is absolute or holds `..` is refused
 * (400), a subfolder that leaves its folder too (403); uploads never leave their folder,
 * and an upload with the name of an identical file is not saved twice.
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, extname, isAbsolute, join, normalize, relative, resolve } from "node:path";
import type { Hono } from "hono";
import { splitAnnotation } from "../node_api/folder_paths.ts";
import { parseExactJson } from "../util/exact_json.ts";
import type { ServerContext } from "./context.ts";
import { empty, fileResponse, json, mimeOf } from "./http.ts";
import { applyMaskAlpha, channelView, isPng } from "./images.ts";

/** Whether `path` is `dir` or inside it (Python's `commonpath((dir, path)) == dir`). */
export function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/** A file under `dir` named by a URL path's rest, or null when it is not a file there (or leaves `dir`). */
export function fileUnder(dir: string, rest: string, headers: Record<string, string> = {}): Response | null {
  let rel: string;
  try {
    rel = decodeURIComponent(rest);
  } catch {
    return null;
  }
  const file = join(dir, rel);
  return inside(dir, file) ? fileResponse(file, headers) : null;
}

/** Types a browser would run: sent as downloads, as ComfyUI does. */
const FORCED_DOWNLOAD = new Set(["text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript", "application/javascript", "text/css"]);

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function png(bytes: Uint8Array, filename: string): Response {
  return new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { "Content-Type": "image/png", "Content-Disposition": `filename="${filename}"` } });
}

/** Registers the file routes. */
export function fileRoutes(app: Hono, ctx: ServerContext): void {
  const folders = ctx.host.api.folderPaths;

  app.get("/view", (c) => {
    const query = c.req.query();
    if (!("filename" in query)) return empty(404);
    const annotated = splitAnnotation(query.filename!);
    let filename = annotated.name;
    if (!filename) return empty(400);
    // Absolute names and any `..` are refused, as in ComfyUI.
    if (filename.startsWith("/") || filename.includes("..")) return empty(400);
    let dir = annotated.kind ? folders.get_directory_by_type(annotated.kind) : folders.get_directory_by_type(query.type ?? "output");
    if (dir === null) return empty(400);
    if ("subfolder" in query) {
      const full = resolve(dir, query.subfolder!);
      if (!inside(dir, full)) return empty(403);
      dir = full;
    }
    filename = basename(filename);
    const file = join(dir, filename);
    if (!existsSync(file) || !statSync(file).isFile()) return empty(404);
    const channel = query.channel ?? "rgba";
    if ((channel === "rgb" || channel === "a") && !("preview" in query)) {
      const bytes = readFileSync(file);
      // PIL converts any image; here PNG files are converted and others are sent as they are.
      if (isPng(bytes)) return png(channelView(bytes, channel), filename);
    }
    let type = mimeOf(filename);
    if (FORCED_DOWNLOAD.has(type.split(";")[0]!.trim())) type = "application/octet-stream";
    return fileResponse(file, { "Content-Disposition": `filename="${filename}"`, "Content-Type": type }) ?? empty(404);
  });

  /** ComfyUI's `image_upload`: where the file goes, under which name, and whether to write it. */
  const upload = async (req: Request, save?: (bytes: Uint8Array, form: FormData, path: string) => Response | null): Promise<Response> => {
    const length = Number(req.headers.get("content-length") ?? 0);
    if (length > ctx.maxUploadSize) return json({ error: `The upload is ${length} bytes; the limit is ${ctx.maxUploadSize}.` }, 413);
    let form: FormData;
    try {
      form = await req.formData();
    } catch {
      return empty(400);
    }
    const image = form.get("image");
    const typeField = form.get("type");
    const type = typeof typeField === "string" && typeField ? typeField : "input";
    const dir = folders.get_directory_by_type(type);
    if (dir === null) return json({ error: `Unknown upload type "${type}"; use input, output or temp.` }, 400);
    if (!image || typeof image === "string") return empty(400);
    let filename = image.name;
    if (!filename) return empty(400);
    const subfolderField = form.get("subfolder");
    const subfolder = typeof subfolderField === "string" ? subfolderField : "";
    const folder = join(dir, normalize(subfolder || "."));
    let path = resolve(folder, filename);
    if (!inside(dir, path)) return empty(400);
    mkdirSync(folder, { recursive: true });
    const bytes = new Uint8Array(await image.arrayBuffer());
    const overwrite = form.get("overwrite");
    let duplicate = false;
    if (overwrite !== "true" && overwrite !== "1") {
      const ext = extname(filename);
      const stem = filename.slice(0, filename.length - ext.length);
      const hash = sha256(bytes);
      for (let i = 1; existsSync(path); i++) {
        // The same bytes under the same name: not saved again.
        if (sha256(readFileSync(path)) === hash) {
          duplicate = true;
          break;
        }
        filename = `${stem} (${i})${ext}`;
        path = join(folder, filename);
      }
    }
    if (!duplicate) {
      const refused = save ? save(bytes, form, path) : (writeFileSync(path, bytes), null);
      if (refused) return refused;
    }
    return json({ name: filename, subfolder, type });
  };

  app.post("/upload/image", (c) => upload(c.req.raw));

  app.post("/upload/mask", (c) =>
    upload(c.req.raw, (mask, form, path) => {
      let ref: { filename?: unknown; subfolder?: unknown; type?: unknown };
      try {
        ref = parseExactJson(String(form.get("original_ref") ?? "")) as typeof ref;
      } catch {
        return json({ error: "original_ref is not JSON: send {\"filename\", \"subfolder\", \"type\"} of the masked image." }, 400);
      }
      const annotated = splitAnnotation(String(ref?.filename ?? ""));
      const name = annotated.name;
      if (!name || name.startsWith("/") || name.includes("..")) return empty(400);
      let dir = folders.get_directory_by_type(annotated.kind ?? (typeof ref.type === "string" ? ref.type : "output"));
      if (dir === null) return empty(400);
      if (typeof ref.subfolder === "string" && ref.subfolder !== "") {
        const full = resolve(dir, ref.subfolder);
        if (!inside(dir, full)) return empty(403);
        dir = full;
      }
      const file = join(dir, name);
      if (!existsSync(file)) return json({ error: `The masked image ${JSON.stringify(name)} is not in ${dir}.` }, 404);
      const original = readFileSync(file);
      if (!isPng(original) || !isPng(mask)) return json({ error: "Masks are applied to PNG images here; the image or the mask is not a PNG file." }, 415);
      try {
        writeFileSync(path, applyMaskAlpha(original, mask));
      } catch (e) {
        return json({ error: `The mask cannot be applied: ${(e as Error).message}.` }, 400);
      }
      return null;
    }),
  );
}
