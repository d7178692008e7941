/**
 * ComfyUI core mode: a ComfyUI checkout whose real modules every Python process imports
 * (`comfy.*`, `comfy_extras`, `comfy_api`, `nodes`, …), whose environment is the default host
 * Python, and whose built-in nodes the shared process loads as the pack {@link CORE_PACK_NAME}.
 *
 * Here: finding and checking the checkout (a missing file is an error naming it), its
 * version, the Python environments a ComfyUI install keeps inside it, and the metadata-cache
 * key of its built-in nodes. The Python side is `pyisolate_runtime/comfyui/`.
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { PyisolateError } from "../errors.ts";
import type { PackInfo } from "../manifest/manifest.ts";
import { packPythonFiles } from "../nodes/metadata_cache.ts";
import { displayPath, isExecutable } from "../util/fs.ts";

/** The name ComfyUI's built-in nodes are registered under (a pack of the shared process). */
export const CORE_PACK_NAME = "ComfyUI";

/**
 * What core mode imports from a checkout, relative to its root: a checkout without one of
 * these is too old (or damaged) for core mode.
 */
export const COMFYUI_REQUIRED_FILES: readonly string[] = [
  "nodes.py",
  "execution.py",
  "folder_paths.py",
  "node_helpers.py",
  "latent_preview.py",
  "protocol.py",
  "comfy/options.py",
  "comfy/cli_args.py",
  "comfy/model_management.py",
  "comfy/utils.py",
  "comfy_api/internal/__init__.py",
  "comfy_api/latest/__init__.py",
  "comfy_api/latest/_io.py",
  "comfy_execution/progress.py",
  "comfy_execution/utils.py",
  "comfy_extras/nodes_latent.py",
];

/** Folders whose `.py` files decide which built-in nodes a checkout has. */
const CORE_NODE_SOURCES = ["comfy_extras", "comfy_api_nodes", "comfy_api", "comfy_execution"];
const CORE_NODE_FILES = ["nodes.py", "comfyui_version.py", "execution.py"];

/** A checked ComfyUI checkout. */
export interface ComfyCheckout {
  /** Absolute path of the checkout's root (where `main.py` and `nodes.py` are). */
  dir: string;
  /** `comfyui_version.py`'s `__version__`, or null when the file has none. */
  version: string | null;
  /** The command-line arguments `comfy.cli_args` parses in every process (ComfyUI's own, e.g. `--cpu`). */
  args: string[];
}

/** The checkout named by `PYISOLATE_COMFYUI`, or undefined. */
export function comfyuiFromEnv(env: Record<string, string | undefined> = process.env): string | undefined {
  const v = env.PYISOLATE_COMFYUI;
  return v && v.trim() !== "" ? v : undefined;
}

/** ComfyUI arguments from `PYISOLATE_COMFYUI_ARGS` (split on white space). */
export function comfyuiArgsFromEnv(env: Record<string, string | undefined> = process.env): string[] {
  return splitArgs(env.PYISOLATE_COMFYUI_ARGS ?? "");
}

/** `"--cpu --lowvram"` → `["--cpu", "--lowvram"]`. */
export function splitArgs(text: string): string[] {
  return text.split(/\s+/).filter((a) => a !== "");
}

/**
 * Checks that `dir` is a ComfyUI checkout core mode can use.
 * @throws {PyisolateError} `NOT_FOUND` when it is not a folder; `VALIDATION` naming the first
 *   missing file when it is not a (recent enough) ComfyUI checkout.
 * @example
 * const checkout = resolveComfyUI("/srv/ComfyUI", ["--cpu"]);
 * checkout.version; // "0.8.0"
 */
export function resolveComfyUI(dir: string, args: readonly string[] = []): ComfyCheckout {
  const root = resolve(dir);
  let isDir = false;
  try {
    isDir = statSync(root).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) {
    throw new PyisolateError(
      "NOT_FOUND",
      `The ComfyUI checkout ${displayPath(root)} ${existsSync(root) ? "is not a folder" : "does not exist"}. Pass --comfyui DIR (or set PYISOLATE_COMFYUI) to the folder that holds ComfyUI's main.py and nodes.py.`,
      { file: root },
    );
  }
  const missing = COMFYUI_REQUIRED_FILES.filter((f) => !existsSync(join(root, f)));
  if (missing.length > 0) {
    const first = join(root, missing[0]!);
    const what = existsSync(join(root, "nodes.py")) && existsSync(join(root, "comfy"))
      ? "This ComfyUI checkout is too old or incomplete for core mode (pyisolate is tested with ComfyUI 0.8.0): update it (git pull) or point --comfyui at a newer one."
      : "This is not a ComfyUI checkout: point --comfyui at the folder that holds ComfyUI's main.py, nodes.py and comfy/.";
    throw new PyisolateError(
      "VALIDATION",
      `${displayPath(first)} is missing${missing.length > 1 ? ` (and ${missing.length - 1} more: ${missing.slice(1).join(", ")})` : ""}. ${what}`,
      { file: first },
    );
  }
  return { dir: root, version: readVersion(root), args: [...args] };
}

function readVersion(root: string): string | null {
  try {
    const text = readFileSync(join(root, "comfyui_version.py"), "utf8");
    return /__version__\s*=\s*["']([^"']+)["']/.exec(text)?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * The Python environments a ComfyUI install keeps inside its checkout, in the order tried:
 * `.venv/bin/python`, then `venv/bin/python` (ComfyUI's README makes one of these).
 */
export function checkoutPythons(dir: string): string[] {
  return [join(dir, ".venv", "bin", "python"), join(dir, "venv", "bin", "python")];
}

/** The first of {@link checkoutPythons} that exists, or null. */
export function checkoutPython(dir: string): string | null {
  return checkoutPythons(dir).find((p) => isExecutable(p)) ?? null;
}

/** The pack that stands for ComfyUI's built-in nodes (in the shared process). */
export function corePack(checkout: ComfyCheckout): PackInfo {
  return { name: CORE_PACK_NAME, path: checkout.dir, layout: "package", kind: "shared", manifest: null, manifestFile: null, warnings: [] };
}

/** What, besides a pack's own files and environment, decides what it registers in core mode. */
export function checkoutTag(checkout: ComfyCheckout | null): string {
  return checkout ? `comfyui\0${checkout.dir}\0${checkout.version ?? "?"}\0${checkout.args.join(" ")}` : "";
}

/**
 * The metadata-cache key of ComfyUI's built-in nodes: sha256 over the checkout's node
 * sources (`nodes.py`, `comfy_extras/`, `comfy_api_nodes/`, `comfy_api/`, … — relative path,
 * size, mtime), its version and arguments, and the host environment's fingerprint.
 */
export function coreCacheKey(checkout: ComfyCheckout, envFingerprint: string): string {
  const h = createHash("sha256");
  h.update(`pyisolate-core-v1\0${checkoutTag(checkout)}\0${envFingerprint}\0`);
  for (const f of CORE_NODE_FILES) {
    try {
      const st = statSync(join(checkout.dir, f));
      h.update(`${f}\0${st.size}\0${Math.floor(st.mtimeMs)}\n`);
    } catch {
      h.update(`${f}\0missing\n`);
    }
  }
  for (const d of CORE_NODE_SOURCES) {
    const dir = join(checkout.dir, d);
    if (!existsSync(dir)) continue;
    for (const [rel, size, mtime] of packPythonFiles(dir)) h.update(`${d}/${rel}\0${size}\0${mtime}\n`);
  }
  return h.digest("hex");
}
