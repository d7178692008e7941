/**
 * The stock ComfyUI editor: its static build (the `comfyui-frontend-package` Python package,
 * found where ComfyUI finds it — in the host Python's site-packages — or given as a folder),
 * served at `/`, and the few API routes only the editor asks for: `/i18n`,
 * `/global_subgraphs`, `/experiment/models`, `/workflow_templates`, and `/templates/…` (the
 * `comfyui-workflow-templates` package where installed, else an empty index).
 * @module
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Hono } from "hono";
import type { RouteArea } from "./context.ts";
import { empty, fileResponse, json } from "./http.ts";
import { fileUnder } from "./routes_files.ts";

/** The editor's static root in one of `sitePackages` (`comfyui_frontend_package/static`), or null. */
export function findFrontendRoot(sitePackages: readonly string[]): string | null {
  for (const sp of sitePackages) {
    const dir = join(sp, "comfyui_frontend_package", "static");
    if (existsSync(join(dir, "index.html"))) return dir;
  }
  return null;
}

/** The workflow templates folder of an installed `comfyui-workflow-templates` (any of its packages), or null. */
export function findTemplatesRoot(sitePackages: readonly string[]): string | null {
  for (const sp of sitePackages) {
    let names: string[];
    try {
      names = readdirSync(sp);
    } catch {
      continue;
    }
    for (const name of names.filter((n) => n.startsWith("comfyui_workflow_templates")).sort()) {
      const dir = join(sp, name, "templates");
      if (existsSync(join(dir, "index.json"))) return dir;
    }
  }
  return null;
}

/** The editor-only API routes, served at `/…` and `/api/…`. */
export const editorApiArea: RouteArea = (app: Hono, ctx) => {
  const folders = ctx.host.api.folderPaths;
  // Translations from packs' locales folders: none of the packs here ship any.
  app.get("/i18n", () => json({}));
  // Subgraph blueprints packs ship: none.
  app.get("/global_subgraphs", () => json({}));
  app.get("/global_subgraphs/:id", () => json(null));
  // Packs' example workflows (`example_workflows/*.json`), by pack: none listed.
  app.get("/workflow_templates", () => json({}));
  app.get("/experiment/models", () =>
    json(
      folders
        .folder_names()
        .filter((n) => n !== "configs" && n !== "custom_nodes")
        .map((name) => ({ name, folders: folders.get_folder_paths(name) ?? [] })),
    ),
  );
  app.get("/experiment/models/:folder", (c) => {
    const folder = c.req.param("folder");
    if (!folders.folder_names().includes(folder)) return empty(404);
    const paths = folders.get_folder_paths(folder) ?? [];
    return json((folders.get_filename_list(folder) ?? []).map((name) => ({ name, pathIndex: Math.max(0, paths.findIndex((p) => existsSync(join(p, name)))) })));
  });
};

/**
 * The editor's static files: `/` is its `index.html` (never cached, as ComfyUI sends it),
 * `/templates/…` the workflow templates, every other path a file of the build. Comes last,
 * after the API and the packs' routes.
 */
export function editorStaticArea(root: string, templates: string | null): RouteArea {
  return (app: Hono) => {
    app.get("/", () => fileResponse(join(root, "index.html"), { "Cache-Control": "no-cache", Pragma: "no-cache", Expires: "0" }) ?? empty(404));
    app.get("/templates/*", (c) => {
      const rest = c.req.path.slice("/templates/".length);
      if (templates) return fileUnder(templates, rest) ?? empty(404);
      // Without the templates package: an empty index, so the editor shows no templates.
      return /^index(\.[\w-]+)?\.json$/.test(rest) ? json([]) : empty(404);
    });
    app.get("/*", (c, next) => fileUnder(root, c.req.path.slice(1)) ?? next());
  };
}

/** The editor's own scripts under `extensions/` (ComfyUI lists them in `/extensions`), as URL paths. */
export function editorExtensionScripts(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.isDirectory()) walk(join(dir, e.name), `${rel}/${e.name}`);
      else if (e.name.endsWith(".js")) out.push(`${rel}/${e.name}`);
    }
  };
  walk(join(root, "extensions"), "/extensions");
  return out;
}
