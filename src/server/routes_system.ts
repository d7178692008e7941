/**
 * What the server and its nodes are: `GET /object_info`, `/object_info/{node_class}`,
 * `/system_stats`, `/features`, `/embeddings`, `/models`, `/models/{folder}`,
 * `/view_metadata/{folder_name}`, `/extensions`; and ComfyUI's `/internal/…` routes (logs,
 * folder paths, file lists), which ComfyUI serves without the `/api` prefix.
 * @module
 */
import { editorExtensionScripts } from "./frontend.ts";
import { closeSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { freemem, totalmem } from "node:os";
import { extname, join, relative, sep } from "node:path";
import process from "node:process";
import type { Hono } from "hono";
import { RUNTIME_VERSION } from "../version.ts";
import { parseExactJson } from "../util/exact_json.ts";
import { empty, json, readJson } from "./http.ts";
import type { ServerContext } from "./context.ts";

/** The ComfyUI version whose API this server implements. */
export const COMFYUI_API_VERSION = "0.8.0";

/** Every `.js` file under `dir`, as paths relative to it with `/` separators. */
export function scriptsUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const full = join(d, n);
      let st;
      try {
        st = statSync(full);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(full);
      else if (n.endsWith(".js")) out.push(relative(dir, full).split(sep).join("/"));
    }
  };
  walk(dir);
  return out;
}

/** A `.safetensors` file's header (the JSON after its 8-byte length), or null. */
function safetensorsHeader(path: string, maxSize = 1024 * 1024): unknown {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const len = new Uint8Array(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) return null;
    const size = Number(new DataView(len.buffer).getBigUint64(0, true));
    if (size <= 0 || size > maxSize) return null;
    const buf = new Uint8Array(size);
    if (readSync(fd, buf, 0, size, 8) !== size) return null;
    return parseExactJson(new TextDecoder().decode(buf));
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Registers the routes served at `/…` and `/api/…`. */
export function systemRoutes(app: Hono, ctx: ServerContext): void {
  const { host } = ctx;
  const folders = host.api.folderPaths;

  app.get("/object_info", () => json(host.nodes()));

  app.get("/object_info/:node_class", (c) => {
    const name = c.req.param("node_class");
    const info = host.nodes()[name];
    return json(info ? { [name]: info } : {});
  });

  app.get("/system_stats", () => {
    const ram = totalmem();
    const free = freemem();
    return json({
      system: {
        os: process.platform,
        ram_total: ram,
        ram_free: free,
        comfyui_version: COMFYUI_API_VERSION,
        pyisolate_version: RUNTIME_VERSION,
        required_frontend_version: "",
        installed_templates_version: null,
        required_templates_version: null,
        python_version: host.python.version,
        pytorch_version: host.python.torchVersion ?? "",
        embedded_python: false,
        argv: process.argv.slice(1),
      },
      // The host does not start a process to ask torch about its devices: the CPU, with the machine's memory.
      devices: [{ name: "cpu", type: "cpu", index: null, vram_total: ram, vram_free: free, torch_vram_total: ram, torch_vram_free: free }],
    });
  });

  app.get("/features", () => json(ctx.features));

  app.get("/embeddings", () => json((folders.get_filename_list("embeddings") ?? []).map((f) => f.slice(0, f.length - extname(f).length))));

  app.get("/models", () => json(folders.folder_names()));

  app.get("/models/:folder", (c) => {
    const folder = c.req.param("folder");
    if (!folders.folder_info(folder) || !folders.folder_names().includes(folder)) return empty(404);
    return json(folders.get_filename_list(folder) ?? []);
  });

  app.get("/view_metadata/:folder_name", (c) => {
    const filename = c.req.query("filename");
    if (filename === undefined || !filename.endsWith(".safetensors")) return empty(404);
    let path: string | null;
    try {
      path = folders.get_full_path(c.req.param("folder_name"), filename);
    } catch {
      return empty(404);
    }
    if (path === null) return empty(404);
    const header = safetensorsHeader(path) as Record<string, unknown> | null;
    if (!header || typeof header !== "object" || !("__metadata__" in header)) return empty(404);
    return json(header.__metadata__);
  });

  app.get("/extensions", () => {
    const out: string[] = ctx.frontendRoot ? editorExtensionScripts(ctx.frontendRoot) : [];
    for (const [pack, dir] of Object.entries(host.registry.webDirectories())) {
      for (const rel of scriptsUnder(dir)) out.push(`/extensions/${encodeURIComponent(pack)}/${rel}`);
    }
    return json(out);
  });
}

/** Registers ComfyUI's `/internal/…` routes (served without the `/api` prefix, as ComfyUI does). */
export function internalRoutes(app: Hono, ctx: ServerContext): void {
  const folders = ctx.host.api.folderPaths;
  const subscribers = new Set<string>();
  ctx.logs.onEntry((entry) => {
    for (const sid of subscribers) ctx.hub.sendJson(sid, "logs", { entries: [entry], size: { cols: 80, rows: 24 } });
  });

  app.get("/internal/logs", () => json(ctx.logs.entries().map((e) => `${e.t} - ${e.m}`).join("")));

  app.get("/internal/logs/raw", () => json({ entries: ctx.logs.entries(), size: { cols: 80, rows: 24 } }));

  app.patch("/internal/logs/subscribe", async (c) => {
    const data = (await readJson(c.req.raw)) as { clientId?: unknown; enabled?: unknown } | null;
    const sid = String(data?.clientId ?? "");
    if (data?.enabled) subscribers.add(sid);
    else subscribers.delete(sid);
    return empty();
  });

  app.get("/internal/folder_paths", () => {
    const out: Record<string, string[]> = {};
    for (const name of folders.folder_names()) out[name] = folders.folder_info(name)?.paths ?? [];
    return json(out);
  });

  app.get("/internal/files/:directory_type", (c) => {
    const type = c.req.param("directory_type");
    if (type !== "output" && type !== "input" && type !== "temp") return json({ error: "Invalid directory type" }, 400);
    const dir = folders.get_directory_by_type(type)!;
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      // a folder that does not exist yet lists nothing
    }
    const files = names
      .filter((n) => !n.startsWith("."))
      .map((n) => {
        try {
          const st = statSync(join(dir, n));
          return st.isFile() ? { n, t: st.mtimeMs } : null;
        } catch {
          return null;
        }
      })
      .filter((x): x is { n: string; t: number } => x !== null)
      .sort((a, b) => b.t - a.t)
      .map((x) => x.n);
    return json(files);
  });
}
