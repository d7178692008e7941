/**
 * `FolderPaths`: the host's model, input, output and temp folders, which every Python
 * process reaches through ComfyUI's `folder_paths` module. One table for all processes:
 * ComfyUI's default folder types and extensions under a configurable base directory,
 * `add_model_folder_path`, listings cached per folder type and invalidated when a listed
 * directory's mtime changes, annotated names (`"img.png [output]"`), and file names that
 * cannot leave their folder.
 *
 * Method names are ComfyUI's (`get_filename_list`, …): they are what Python calls.
 * @module
 */
import { existsSync, mkdirSync } from "node:fs";
import { extname, join, resolve } from "node:path";
import { listTree, resolveInside, splitAnnotation, statOrNull, type Listing } from "./folder_files.ts";

export { resolveInside, splitAnnotation };
import { PyisolateError } from "../errors.ts";
import { currentCall, defaultRegistry } from "../rpc/services.ts";
import { log as defaultLog, type Logger } from "../log.ts";

/**
 * What packs may call of `FolderPaths` (Python's `folder_paths`). Redirecting the host's input,
 * output, temp and user directories is refused from a pack; registering model folders and
 * extensions is allowed, as ComfyUI packs do it, and logged with the pack's name.
 */
export const FOLDER_PATHS_EXPOSED: readonly string[] = [
  "base_path", "models_dir", "get_input_directory", "get_output_directory", "get_temp_directory", "get_user_directory",
  "set_input_directory", "set_output_directory", "set_temp_directory", "set_user_directory", "get_directory_by_type",
  "folder_names", "folder_info", "set_folder", "remove_folder", "add_model_folder_path", "get_folder_paths",
  "get_supported_pt_extensions", "get_filename_list", "get_full_path", "get_annotated_filepath", "exists_annotated_filepath",
];

/** Who called, when a pack did (the process name: the pack, or `shared`); undefined for the host. */
function packCaller(): string | undefined {
  const c = currentCall()?.caller;
  return c === undefined || c === "host" || c === "worker" ? undefined : c;
}

/** File extensions of PyTorch weights (ComfyUI's default set). */
export const SUPPORTED_PT_EXTENSIONS: readonly string[] = [".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"];

/** Old folder names ComfyUI still accepts, and their current names. */
export const LEGACY_FOLDER_NAMES: Readonly<Record<string, string>> = { unet: "diffusion_models", clip: "text_encoders" };

/** Options of {@link FolderPaths}. */
export interface FolderPathsOptions {
  /** The base directory (ComfyUI's install directory). @default the current directory */
  baseDir?: string;
  /** @default `<baseDir>/models` */
  modelsDir?: string;
  /** @default `<baseDir>/input` */
  inputDir?: string;
  /** @default `<baseDir>/output` */
  outputDir?: string;
  /** @default `<baseDir>/temp` */
  tempDir?: string;
  /** @default `<baseDir>/user` */
  userDir?: string;
  /** @default `<baseDir>/custom_nodes` */
  customNodesDir?: string;
}

/** One folder type: its directories and the extensions listed from them (empty: every file). */
export interface FolderInfo {
  paths: string[];
  extensions: string[];
}

/** ComfyUI's default folder types: `[name, subdirectories of the models dir, extensions]`. */
const DEFAULT_FOLDERS: ReadonlyArray<readonly [string, readonly string[], readonly string[] | "pt"]> = [
  ["checkpoints", ["checkpoints"], "pt"],
  ["configs", ["configs"], [".yaml"]],
  ["loras", ["loras"], "pt"],
  ["vae", ["vae"], "pt"],
  ["text_encoders", ["text_encoders", "clip"], "pt"],
  ["diffusion_models", ["unet", "diffusion_models"], "pt"],
  ["clip_vision", ["clip_vision"], "pt"],
  ["style_models", ["style_models"], "pt"],
  ["embeddings", ["embeddings"], "pt"],
  ["diffusers", ["diffusers"], ["folder"]],
  ["vae_approx", ["vae_approx"], "pt"],
  ["controlnet", ["controlnet", "t2i_adapter"], "pt"],
  ["gligen", ["gligen"], "pt"],
  ["upscale_models", ["upscale_models"], "pt"],
  ["latent_upscale_models", ["latent_upscale_models"], "pt"],
  ["hypernetworks", ["hypernetworks"], "pt"],
  ["photomaker", ["photomaker"], "pt"],
  ["classifiers", ["classifiers"], [""]],
  ["model_patches", ["model_patches"], "pt"],
  ["audio_encoders", ["audio_encoders"], "pt"],
];

function mapLegacy(name: string): string {
  return LEGACY_FOLDER_NAMES[name] ?? name;
}

/**
 * The host's folder table. Python reaches it as `folder_paths`; TypeScript uses it directly.
 *
 * @example
 * ```ts
 * const folders = new FolderPaths({ baseDir: "/srv/comfy" });
 * folders.add_model_folder_path("checkpoints", "/mnt/models/ckpt");
 * folders.get_filename_list("checkpoints"); // ["sd15.safetensors", ...]
 * ```
 */
export class FolderPaths {
  #base = "";
  #models = "";
  #dirs: Record<"input" | "output" | "temp" | "user", string> = { input: "", output: "", temp: "", user: "" };
  #table = new Map<string, FolderInfo>();
  #cache = new Map<string, Listing>();
  #log: Logger = defaultLog;

  constructor(opts: FolderPathsOptions = {}) {
    this.configure(opts);
  }

  /** Where changes packs make to the folder table are logged (host-side only). */
  readonly setLogger = (logger: Logger): void => {
    this.#log = logger;
  };

  #audit(what: string): void {
    const pack = packCaller();
    if (pack !== undefined) this.#log.pack(pack, `- folder_paths: ${what}`);
  }

  #refuse(kind: string): void {
    const pack = packCaller();
    if (pack === undefined) return;
    throw new PyisolateError(
      "DENIED",
      `Pack "${pack}" may not redirect the host's ${kind} directory (folder_paths.set_${kind}_directory): it is the host's setting, shared by every pack. Write into a subfolder of folder_paths.get_${kind}_directory() instead.`,
      { pack },
    );
  }

  /**
   * Resets the table to ComfyUI's defaults under new directories (drops added paths and
   * cached listings). Host-side only: an instance property, so Python cannot call it.
   */
  readonly configure = (opts: FolderPathsOptions = {}): void => {
    this.#base = resolve(opts.baseDir ?? ".");
    this.#models = resolve(opts.modelsDir ?? join(this.#base, "models"));
    this.#dirs = {
      input: resolve(opts.inputDir ?? join(this.#base, "input")),
      output: resolve(opts.outputDir ?? join(this.#base, "output")),
      temp: resolve(opts.tempDir ?? join(this.#base, "temp")),
      user: resolve(opts.userDir ?? join(this.#base, "user")),
    };
    this.#table.clear();
    this.#cache.clear();
    for (const [name, subdirs, exts] of DEFAULT_FOLDERS) {
      this.#table.set(name, {
        paths: subdirs.map((d) => join(this.#models, d)),
        extensions: exts === "pt" ? [...SUPPORTED_PT_EXTENSIONS] : [...exts],
      });
    }
    this.#table.set("custom_nodes", { paths: [resolve(opts.customNodesDir ?? join(this.#base, "custom_nodes"))], extensions: [] });
  };

  /** The output directory, without creating it. Host-side only (an instance property). */
  readonly outputDirectory = (): string => this.#dirs.output;

  // --- directories ---------------------------------------------------------------------------

  #dir(kind: "input" | "output" | "temp" | "user"): string {
    const dir = this.#dirs[kind];
    if (kind !== "user") mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** The base directory. */
  base_path(): string {
    return this.#base;
  }

  /** The models directory (`models_dir`). */
  models_dir(): string {
    return this.#models;
  }

  get_input_directory(): string {
    return this.#dir("input");
  }

  get_output_directory(): string {
    return this.#dir("output");
  }

  get_temp_directory(): string {
    return this.#dir("temp");
  }

  get_user_directory(): string {
    return this.#dir("user");
  }

  set_input_directory(dir: string): void {
    this.#refuse("input");
    this.#dirs.input = resolve(dir);
  }

  set_output_directory(dir: string): void {
    this.#refuse("output");
    this.#dirs.output = resolve(dir);
  }

  set_temp_directory(dir: string): void {
    this.#refuse("temp");
    this.#dirs.temp = resolve(dir);
  }

  set_user_directory(dir: string): void {
    this.#refuse("user");
    this.#dirs.user = resolve(dir);
  }

  /** The input, output or temp directory; `null` for any other name. */
  get_directory_by_type(type: string): string | null {
    return type === "input" || type === "output" || type === "temp" ? this.#dir(type) : null;
  }

  // --- the folder table ----------------------------------------------------------------------

  /** The folder type names. */
  folder_names(): string[] {
    return [...this.#table.keys()];
  }

  /** A folder type's directories and extensions; `null` when unknown (legacy names accepted). */
  folder_info(name: string): FolderInfo | null {
    const info = this.#table.get(mapLegacy(name));
    return info ? { paths: [...info.paths], extensions: [...info.extensions] } : null;
  }

  /** Replaces a folder type's directories and extensions (`folder_names_and_paths[name] = (...)`). */
  set_folder(name: string, paths: string[], extensions: string[] = []): void {
    const full = paths.map((p) => resolve(p));
    this.#audit(`set folder type "${name}" to ${JSON.stringify(full)}${extensions.length ? ` (extensions ${extensions.join(" ")})` : ""}`);
    this.#table.set(name, { paths: full, extensions: [...extensions] });
    this.#cache.delete(name);
  }

  /** Removes a folder type; whether it existed. */
  remove_folder(name: string): boolean {
    if (this.#table.has(name)) this.#audit(`removed folder type "${name}"`);
    this.#cache.delete(name);
    return this.#table.delete(name);
  }

  /**
   * Adds a directory to a folder type (first when `isDefault`), creating the type with no
   * extension filter when it is new. Adding a path again only moves it first when `isDefault`.
   */
  add_model_folder_path(name: string, path: string, isDefault = false): void {
    const key = mapLegacy(name);
    const full = resolve(path);
    const info = this.#table.get(key);
    this.#cache.delete(key);
    if (!info?.paths.includes(full)) this.#audit(`added ${full} to model folder "${key}"${isDefault ? " (first)" : ""}`);
    if (!info) {
      this.#table.set(key, { paths: [full], extensions: [] });
      return;
    }
    const at = info.paths.indexOf(full);
    if (at >= 0) {
      if (isDefault && at !== 0) {
        info.paths.splice(at, 1);
        info.paths.unshift(full);
      }
      return;
    }
    if (isDefault) info.paths.unshift(full);
    else info.paths.push(full);
  }

  /** A folder type's directories; `null` for an unknown type. */
  get_folder_paths(name: string): string[] | null {
    return this.folder_info(name)?.paths ?? null;
  }

  /** The extensions of PyTorch weight files. */
  get_supported_pt_extensions(): string[] {
    return [...SUPPORTED_PT_EXTENSIONS];
  }

  // --- files ---------------------------------------------------------------------------------

  /**
   * Every file of a folder type with one of its extensions (relative to its directory,
   * sorted, each name once); `null` for an unknown type. Cached until a listed directory's
   * mtime changes, a new directory of the type appears, or the type's paths change.
   */
  get_filename_list(name: string): string[] | null {
    const key = mapLegacy(name);
    const info = this.#table.get(key);
    if (!info) return null;
    const cached = this.#cache.get(key);
    if (cached && this.#fresh(cached, info)) return [...cached.files];
    const exts = new Set(info.extensions);
    const files = new Set<string>();
    const dirs = new Map<string, number>();
    for (const dir of info.paths) {
      const listing = listTree(dir);
      for (const f of listing.files) if (exts.size === 0 || exts.has(extname(f).toLowerCase())) files.add(f);
      for (const [d, m] of listing.dirs) dirs.set(d, m);
    }
    const sorted = [...files].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    this.#cache.set(key, { files: sorted, dirs });
    return [...sorted];
  }

  #fresh(cached: Listing, info: FolderInfo): boolean {
    for (const [dir, mtime] of cached.dirs) {
      if (statOrNull(dir)?.mtimeMs !== mtime) return false;
    }
    for (const dir of info.paths) {
      if (statOrNull(dir)?.isDirectory() && !cached.dirs.has(dir)) return false;
    }
    return true;
  }

  /**
   * The full path of a file of a folder type, searched in its directories in order; `null`
   * when none has it (or the type is unknown).
   * @throws {PyisolateError} `VALIDATION` for a name that is absolute or leaves the folder.
   */
  get_full_path(name: string, filename: string): string | null {
    const info = this.#table.get(mapLegacy(name));
    if (!info) return null;
    for (const dir of info.paths) {
      const full = resolveInside(dir, filename);
      if (statOrNull(full)?.isFile()) return full;
    }
    return null;
  }

  /**
   * The full path an annotated name points to: `"a.png [output]"` in the output directory,
   * an unannotated name in `defaultDir` (default: the input directory).
   * @throws {PyisolateError} `VALIDATION` for a name that is absolute or leaves the folder.
   */
  get_annotated_filepath(name: string, defaultDir?: string | null): string {
    const { name: bare, kind } = splitAnnotation(name);
    const base = kind ? this.#dir(kind) : defaultDir ? resolve(defaultDir) : this.#dir("input");
    return resolveInside(base, bare);
  }

  /** Whether the file an annotated name points to exists. */
  exists_annotated_filepath(name: string): boolean {
    return existsSync(this.get_annotated_filepath(name));
  }
}

// What `@service("FolderPaths")` does; decorator syntax is not used because the test toolchain does not compile it.
defaultRegistry.register("FolderPaths", FolderPaths, { expose: FOLDER_PATHS_EXPOSED });
