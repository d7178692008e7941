/**
 * Users, settings and user data, as ComfyUI's `UserManager` and `AppSettings` keep them:
 * files under the user directory (`<user>/default/…`; one user, ComfyUI's default without
 * `--multi-user`): `GET/POST /users`, `GET/POST /settings`, `GET/POST /settings/{id}`,
 * `GET /userdata?dir=…`, `GET /v2/userdata?path=…`, `GET/POST/DELETE /userdata/{file}`,
 * `POST /userdata/{file}/move/{dest}`. Paths that leave the user's folder are refused (403).
 * @module
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import type { Hono } from "hono";
import { parseExactJson, stringifyExactJson } from "../util/exact_json.ts";
import type { ServerContext } from "./context.ts";
import { empty, fileResponse, json, readJson, text } from "./http.ts";
import { inside } from "./routes_files.ts";

/** The one user of a server without multi-user profiles. */
const DEFAULT_USER = "default";
/** User ids with this prefix are the system's, never reachable over HTTP. */
const SYSTEM_USER_PREFIX = "__";

interface FileInfo {
  path: string;
  size: number;
  modified: number;
  created: number;
}

function fileInfo(path: string, root: string): FileInfo {
  const st = statSync(path);
  return { path: relative(root, path).split(sep).join("/"), size: st.size, modified: st.mtimeMs / 1000, created: st.ctimeMs / 1000 };
}

/** Registers the user routes. */
export function userRoutes(app: Hono, ctx: ServerContext): void {
  const folders = ctx.host.api.folderPaths;
  const userDir = () => folders.get_user_directory();
  const users: Record<string, string> = { [DEFAULT_USER]: DEFAULT_USER };

  /** ComfyUI's `get_request_user_filepath`: the user's folder, or a file in it; null when it leaves the folder. */
  const userPath = (file: string | null, create = false): string | null => {
    const root = userDir();
    const userRoot = join(root, DEFAULT_USER);
    if (DEFAULT_USER.startsWith(SYSTEM_USER_PREFIX) || !inside(root, userRoot)) return null;
    let path = userRoot;
    if (file !== null) {
      let name = file;
      if (name.includes("%")) {
        try {
          name = decodeURIComponent(name);
        } catch {
          return null;
        }
      }
      path = resolve(userRoot, name);
      if (!inside(userRoot, path)) return null;
    }
    if (create) mkdirSync(dirname(path), { recursive: true });
    return path;
  };

  const settingsFile = () => userPath("comfy.settings.json", true)!;
  const readSettings = (): Record<string, unknown> => {
    try {
      const data = parseExactJson(readFileSync(settingsFile(), "utf8"));
      return data && typeof data === "object" && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") ctx.logger.error(`The user settings file is corrupted: ${settingsFile()}`);
      return {};
    }
  };
  const saveSettings = (settings: Record<string, unknown>) => writeFileSync(settingsFile(), stringifyExactJson(settings, 4));

  app.get("/users", () => json({ storage: "server", migrated: existsSync(userPath(null)!) }));

  app.post("/users", async (c) => {
    const body = (await readJson(c.req.raw)) as { username?: unknown } | null;
    const username = typeof body?.username === "string" ? body.username.trim() : "";
    if (Object.values(users).includes(username)) return json({ error: "Duplicate username." }, 400);
    if (!username) return json({ error: "username not provided" }, 400);
    if (username.startsWith(SYSTEM_USER_PREFIX)) return json({ error: "System User prefix not allowed" }, 400);
    const id = `${username.replace(/[^a-zA-Z0-9-_]+/g, "-")}_${randomUUID()}`;
    if (id.startsWith(SYSTEM_USER_PREFIX)) return json({ error: "System User prefix not allowed" }, 400);
    users[id] = username;
    mkdirSync(userDir(), { recursive: true });
    writeFileSync(join(userDir(), "users.json"), JSON.stringify(users));
    return json(id);
  });

  app.get("/settings", () => json(readSettings()));

  app.get("/settings/:id", (c) => {
    const settings = readSettings();
    const id = c.req.param("id");
    return json(id in settings ? settings[id] : null);
  });

  app.post("/settings", async (c) => {
    const update = (await readJson(c.req.raw)) as Record<string, unknown>;
    saveSettings({ ...readSettings(), ...(update && typeof update === "object" ? update : {}) });
    return empty();
  });

  app.post("/settings/:id", async (c) => {
    const settings = readSettings();
    settings[c.req.param("id")] = await readJson(c.req.raw);
    saveSettings(settings);
    return empty();
  });

  app.get("/userdata", (c) => {
    const dir = c.req.query("dir") ?? "";
    if (!dir) return text("Directory not provided", 400);
    const path = userPath(dir, true);
    if (!path) return text("Invalid directory", 403);
    if (!existsSync(path)) return text("Directory not found", 404);
    const recurse = c.req.query("recurse")?.toLowerCase() === "true";
    const fullInfo = c.req.query("full_info")?.toLowerCase() === "true";
    const split = c.req.query("split")?.toLowerCase() === "true";
    const out: unknown[] = [];
    // Like Python's glob: names starting with "." are skipped.
    const walk = (d: string) => {
      let names: string[];
      try {
        names = readdirSync(d).sort();
      } catch {
        return;
      }
      for (const n of names) {
        if (n.startsWith(".")) continue;
        const full = join(d, n);
        let st;
        try {
          st = statSync(full);
        } catch {
          continue;
        }
        if (st.isDirectory()) {
          if (recurse) walk(full);
          continue;
        }
        const rel = relative(path, full).split(sep).join("/");
        out.push(fullInfo ? fileInfo(full, path) : split ? [rel, ...rel.split("/")] : rel);
      }
    };
    walk(path);
    return json(out);
  });

  app.get("/v2/userdata", (c) => {
    let rel = c.req.query("path") ?? "";
    try {
      rel = decodeURIComponent(rel);
    } catch {
      return text("Invalid characters in path parameter", 400);
    }
    const base = userPath(null)!;
    const target = rel ? userPath(rel) : base;
    if (!target) return text("Invalid path requested", 400);
    if (!existsSync(target)) return target === base ? json([]) : text("Requested path not found", 404);
    if (!statSync(target).isDirectory()) return text("Requested path is not a directory", 400);
    const out: Array<{ name: string; path: string; type: "file" | "directory"; size?: number; modified?: number }> = [];
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const full = join(d, n);
        const st = statSync(full);
        const path = relative(base, full).split(sep).join("/");
        if (st.isDirectory()) {
          out.push({ name: n, path, type: "directory" });
          walk(full);
        } else out.push({ name: n, path, type: "file", size: st.size, modified: st.mtimeMs / 1000 });
      }
    };
    walk(target);
    out.sort((a, b) => (a.type === b.type ? (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : a.name.toLowerCase() > b.name.toLowerCase() ? 1 : 0) : a.type === "directory" ? -1 : 1));
    return json(out);
  });

  /** ComfyUI's `get_user_data_path`: the file a route parameter names, or the answer that refuses it. */
  const dataPath = (param: string | undefined, mustExist: boolean, create = false): string | Response => {
    if (!param) return empty(400);
    const path = userPath(param, create);
    if (!path) return empty(403);
    if (mustExist && !existsSync(path)) return empty(404);
    return path;
  };

  app.get("/userdata/:file", (c) => {
    const path = dataPath(c.req.param("file"), true);
    if (typeof path !== "string") return path;
    return fileResponse(path) ?? empty(404);
  });

  app.post("/userdata/:file", async (c) => {
    const path = dataPath(c.req.param("file"), false, true);
    if (typeof path !== "string") return path;
    const overwrite = c.req.query("overwrite") !== "false";
    const full = (c.req.query("full_info") ?? "false").toLowerCase() === "true";
    if (!overwrite && existsSync(path)) return text("File already exists", 409);
    try {
      writeFileSync(path, new Uint8Array(await c.req.arrayBuffer()));
    } catch (e) {
      ctx.logger.warn(`Error saving file '${path}': ${(e as Error).message}`);
      return new Response(null, { status: 400, statusText: 'Invalid filename. Please avoid special characters like :\\/*?"<>|' });
    }
    const root = userPath(null)!;
    return json(full ? fileInfo(path, root) : relative(root, path).split(sep).join("/"));
  });

  app.delete("/userdata/:file", (c) => {
    const path = dataPath(c.req.param("file"), true);
    if (typeof path !== "string") return path;
    rmSync(path);
    return empty(204);
  });

  app.post("/userdata/:file/move/:dest", (c) => {
    const source = dataPath(c.req.param("file"), true);
    if (typeof source !== "string") return source;
    const dest = dataPath(c.req.param("dest"), false, true);
    if (typeof dest !== "string") return dest;
    const overwrite = c.req.query("overwrite") !== "false";
    const full = (c.req.query("full_info") ?? "false").toLowerCase() === "true";
    if (!overwrite && existsSync(dest)) return text("File already exists", 409);
    ctx.logger.info(`moving '${source}' -> '${dest}'`);
    renameSync(source, dest);
    const root = userPath(null)!;
    return json(full ? fileInfo(dest, root) : relative(root, dest).split(sep).join("/"));
  });
}
