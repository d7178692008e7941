/**
 * ComfyUI's `extra_model_paths.yaml`, read as ComfyUI reads it (`utils/extra_config.py`), and
 * the folders ComfyUI adds at start-up (`main.py`'s `apply_custom_paths`):
 *
 * - each top-level section (`comfyui:`, `a111:`, …; an empty one is skipped) may have
 *   `base_path` (`~` and `$VARS` expanded; relative to the YAML file's folder) and `is_default`
 *   (its paths go first); every other key is a folder type (`checkpoints`, legacy `clip`…)
 *   whose value holds one path per line (`|` blocks), each under `base_path` — or, without
 *   one, relative to the YAML file's folder — and added with `add_model_folder_path`;
 * - then the output directory's `checkpoints`, `clip`, `vae`, `diffusion_models` and `loras`
 *   subfolders are added to those types (where ComfyUI's save nodes write).
 *
 * Where ComfyUI would crash (a value that is not text), this says which file and key.
 * @module
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, normalize, resolve } from "node:path";
import process from "node:process";
import { parse as parseYaml } from "yaml";
import { PyisolateError } from "../errors.ts";
import type { FolderPaths } from "./folder_paths.ts";

/** One path an `extra_model_paths.yaml` adds. */
export interface ExtraModelPath {
  /** The folder type, as written (`clip` stays `clip`; `add_model_folder_path` maps it). */
  folder: string;
  path: string;
  isDefault: boolean;
  /** The YAML file and its section. */
  file: string;
  section: string;
}

/** The file name ComfyUI reads next to its `main.py`. */
export const EXTRA_MODEL_PATHS_FILE = "extra_model_paths.yaml";

/** `os.path.expanduser(os.path.expandvars(p))`: `$NAME` and `${NAME}` of set variables, a leading `~`. */
function expand(p: string, env: Record<string, string | undefined>): string {
  const vars = p.replace(/\$(\w+)|\$\{([^}]*)\}/g, (whole, a: string | undefined, b: string | undefined) => env[a ?? b ?? ""] ?? whole);
  return vars === "~" || vars.startsWith("~/") ? join(env.HOME || homedir(), vars.slice(1)) : vars;
}

function invalid(file: string, message: string): PyisolateError {
  return new PyisolateError("VALIDATION", `${file}: ${message}`, { file });
}

/**
 * The paths an `extra_model_paths.yaml` adds, in ComfyUI's order.
 * @throws {PyisolateError} `NOT_FOUND` for a missing file; `VALIDATION` for YAML that is not
 *   ComfyUI's shape, naming the section and key.
 */
export function readExtraModelPaths(file: string, env: Record<string, string | undefined> = process.env): ExtraModelPath[] {
  const full = resolve(file);
  let text: string;
  try {
    text = readFileSync(full, "utf8");
  } catch (err) {
    throw new PyisolateError("NOT_FOUND", `Cannot read the extra model paths config ${full}: ${(err as Error).message}.`, { file: full, cause: err });
  }
  let doc: unknown;
  try {
    // PyYAML's safe_load: YAML 1.1 (yes/no booleans), a repeated key keeps its last value.
    doc = parseYaml(text, { version: "1.1", uniqueKeys: false });
  } catch (err) {
    throw invalid(full, `not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return [];
  if (typeof doc !== "object" || Array.isArray(doc)) throw invalid(full, "must be a mapping of sections (comfyui:, a111:, …), each a mapping of folder types to paths.");
  const yamlDir = dirname(full);
  const out: ExtraModelPath[] = [];
  for (const [section, conf] of Object.entries(doc as Record<string, unknown>)) {
    if (conf === null || conf === undefined) continue;
    if (typeof conf !== "object" || Array.isArray(conf)) throw invalid(full, `section "${section}" must be a mapping of folder types to paths, got ${JSON.stringify(conf)}.`);
    const entries = { ...(conf as Record<string, unknown>) };
    let base: string | null = null;
    if ("base_path" in entries) {
      const raw = entries.base_path;
      delete entries.base_path;
      if (typeof raw !== "string") throw invalid(full, `"${section}.base_path" must be a path, got ${JSON.stringify(raw)}.`);
      base = expand(raw, env);
      if (!isAbsolute(base)) base = resolve(yamlDir, base);
    }
    let isDefault = false;
    if ("is_default" in entries) {
      isDefault = Boolean(entries.is_default);
      delete entries.is_default;
    }
    for (const [folder, value] of Object.entries(entries)) {
      if (typeof value !== "string") {
        throw invalid(full, `"${section}.${folder}" must be a path, or several on separate lines (a | block), got ${JSON.stringify(value)}.`);
      }
      for (const line of value.split("\n")) {
        if (line.length === 0) continue;
        const path = base !== null ? resolve(base, line) : isAbsolute(line) ? line : resolve(yamlDir, line);
        out.push({ folder, path: normalize(path).replace(/(.)\/$/, "$1"), isDefault, file: full, section });
      }
    }
  }
  return out;
}

/**
 * Adds what ComfyUI adds at start-up to a folder table: the paths its `extra_model_paths.yaml`
 * files name (read with {@link readExtraModelPaths}), in order, then the output directory's
 * model subfolders.
 * @param log receives ComfyUI's line for each path (`Adding extra search path checkpoints /m/ckpt`)
 */
export function applyComfyStartupPaths(folders: FolderPaths, paths: readonly ExtraModelPath[], log?: (line: string) => void): void {
  for (const p of paths) {
    log?.(`Adding extra search path ${p.folder} ${p.path}`);
    folders.add_model_folder_path(p.folder, p.path, p.isDefault);
  }
  const output = folders.outputDirectory();
  for (const type of ["checkpoints", "clip", "vae", "diffusion_models", "loras"]) folders.add_model_folder_path(type, join(output, type));
}
