/**
 * Node packs and their manifests. A pack is a directory under `custom_nodes` with an
 * `__init__.py` (or a single top-level `*.py` file). It is isolated when it ships a
 * `pyisolate.yaml` (or `pyisolate.yml`), or a `pyproject.toml` with a `[tool.comfy.isolation]`
 * table, as current ComfyUI packs do; every other pack is a shared pack that runs in the
 * shared Python process on the host environment.
 *
 * An invalid manifest is reported as an error naming the file, the key and what was
 * expected; the other packs still load.
 * @module
 */
import type { RayResources } from "../process/ray.ts";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { parse as parseToml, TomlError } from "smol-toml";
import { z } from "zod";
import { PyisolateError } from "../errors.ts";
import { displayPath } from "../util/fs.ts";
import { isHostTorchRequirement } from "./requirements.ts";

/** Which file a manifest came from. */
export type ManifestSource = "pyisolate.yaml" | "pyisolate.yml" | "pyproject.toml";

/** A pack's manifest, validated and normalized. */
export interface PackManifest {
  /** The file name the manifest came from. */
  source: ManifestSource;
  /** Whether the pack runs in its own process and environment. */
  isolated: boolean;
  /** Whether the pack's environment reuses the host's torch (and tensors cross without copies). */
  shareTorch: boolean;
  /** PEP 508 requirements installed into the pack's environment (torch-family ones removed under share_torch). */
  dependencies: string[];
  /** The pack's own name for itself (`name`, or `[project].name`), when given. */
  name?: string;
  /** `share_cuda_ipc`, as written (false without share_torch): accepted for compatibility, not acted on; CUDA tensors of share_torch packs always cross as CUDA IPC handles. */
  shareCudaIpc?: boolean;
  /** `sandbox`: `true`, `false`, or settings `{network, writable_paths, readonly_paths}`; `true` or settings require the sandbox (see `process/sandbox.ts`). */
  sandbox?: boolean | Record<string, unknown>;
  /** `can_sandbox`: the pack works sandboxed; it runs so where the sandbox works. */
  canSandbox?: boolean;
  /** `sandbox_mode`: `required` (never run without a sandbox) or `disabled` (never run in one). */
  sandboxMode?: "required" | "disabled";
  /** `node_timeout` (seconds): each node's time limit. */
  nodeTimeoutMs?: number;
  /** `memory_limit` (`"4GiB"`, `"512MB"`, or a number of MiB): the pack's process is stopped beyond it. */
  memoryLimitBytes?: number;
  /** `env`: environment variables set in the pack's own process (isolated packs). */
  env?: Record<string, string>;
  /** `ray`: what the pack's actor asks of its node under the Ray backend (`num_cpus`, `num_gpus`, `memory`, `resources`). */
  ray?: RayResources;
  /** Every other key as written: known keys this runtime does not act on, and unknown ones. */
  extras: Record<string, unknown>;
}

/** One discovered node pack. */
export interface PackInfo {
  /** The directory (or file stem) name; the name in logs: `][ <name> …`. */
  name: string;
  /** Absolute path of the pack directory (or of the single `.py` file). */
  path: string;
  /** A package directory with `__init__.py`, or a single-module file. */
  layout: "package" | "module";
  /** Isolated packs get their own process and environment; shared packs run together on the host environment. */
  kind: "isolated" | "shared";
  /** The validated manifest, or null when the pack has none. */
  manifest: PackManifest | null;
  /** Absolute path of the manifest file, or null. */
  manifestFile: string | null;
  /** Things worth telling the user (unknown keys, ignored settings, dropped torch pins). */
  warnings: string[];
}

/** An invalid manifest: a {@link PyisolateError} with code `MANIFEST_INVALID`, `pack` and `file` set. */
export type ManifestError = PyisolateError;

/** The result of {@link discoverPacks}. */
export interface Discovery {
  /** Valid packs, sorted by name. */
  packs: PackInfo[];
  /** One error per pack whose manifest is invalid (that pack is left out of `packs`). */
  errors: ManifestError[];
}

const REQ_EXAMPLE = 'a PEP 508 requirement like "numpy==2.0.0"';
const bool = () => z.boolean({ error: "true or false" });
const stringList = () => z.array(z.string({ error: "a string" }), { error: "a list of strings" });
const requirement = z
  .string({ error: `a string (${REQ_EXAMPLE})` })
  .trim()
  .refine((s) => s.length > 0, { error: `a non-empty string (${REQ_EXAMPLE})` })
  .refine((s) => !s.startsWith("-"), { error: `a requirement, not a pip option (${REQ_EXAMPLE})` });
const envValue = z
  .union([z.string(), z.number(), z.boolean()], { error: "a string" })
  .transform((v) => String(v));

const SIZE_ERROR = 'a size such as "4GiB" or "512MB", or a number of MiB';

/** Every manifest key this runtime knows except `dependencies`, whose place differs between the two forms. Shared by both. */
const commonShape = {
  isolated: bool().optional(),
  can_isolate: bool().optional(),
  share_torch: bool().optional(),
  share_cuda_ipc: bool().optional(),
  name: z.string({ error: "a string" }).optional(),
  sandbox: z
    .union(
      [
        z.boolean(),
        z.object({ network: bool().optional(), writable_paths: stringList().optional(), readonly_paths: stringList().optional() }).catchall(z.unknown()),
      ],
      { error: "true, false or a mapping of sandbox settings (network, writable_paths, readonly_paths)" },
    )
    .optional(),
  can_sandbox: bool().optional(),
  node_timeout: z.number({ error: "a number of seconds" }).positive({ error: "a positive number of seconds" }).optional(),
  memory_limit: z
    .union([z.number().positive(), z.string().regex(/^\s*\d+(\.\d+)?\s*([KMGT]i?B?|[KMGT]|B)?\s*$/i)], { error: SIZE_ERROR })
    .refine((v) => typeof v === "number" || /^\s*\d+(\.\d+)?\s*([KMGT]i?B?|[KMGT]|B)?\s*$/i.test(v), { error: SIZE_ERROR })
    .optional(),
  sandbox_mode: z.enum(["required", "disabled"], { error: '"required" or "disabled"' }).optional(),
  env: z.record(z.string(), envValue, { error: "a mapping of variable names to strings" }).optional(),
  ray: z
    .object(
      {
        num_cpus: z.number({ error: "a number of CPUs" }).nonnegative({ error: "a number of CPUs, 0 or more" }).optional(),
        num_gpus: z.number({ error: "a number of GPUs" }).nonnegative({ error: "a number of GPUs, 0 or more" }).optional(),
        memory: z
          .union([z.number().positive(), z.string().regex(/^\s*\d+(\.\d+)?\s*([KMGT]i?B?|[KMGT]|B)?\s*$/i)], { error: SIZE_ERROR })
          .optional(),
        resources: z.record(z.string(), z.number({ error: "a number" }).positive({ error: "a positive number" }), { error: 'a mapping of resource names to amounts ({"pool_a": 1})' }).optional(),
      },
      { error: "a mapping (num_cpus, num_gpus, memory, resources)" },
    )
    .strict()
    .optional(),
  package_manager: z.enum(["uv", "conda"], { error: '"uv" or "conda"' }).optional(),
  execution_model: z.enum(["host-coupled", "sealed_worker"], { error: '"host-coupled" or "sealed_worker"' }).optional(),
  standalone: bool().optional(),
  cuda_wheels: z.record(z.string(), z.unknown(), { error: "a mapping (index_url, packages, package_map)" }).optional(),
  conda_channels: stringList().optional(),
  conda_dependencies: stringList().optional(),
  conda_platforms: stringList().optional(),
  sealed_host_ro_paths: stringList().optional(),
};

const yamlSchema = z.object({
  ...commonShape,
  dependencies: z.array(requirement, { error: `a list of requirements (each ${REQ_EXAMPLE})` }).nullable().optional(),
});

const tomlIsolationSchema = z.object(commonShape);
const tomlProjectSchema = z.object({
  name: z.string({ error: "a string" }).optional(),
  dependencies: z.array(requirement, { error: `a list of requirements (each ${REQ_EXAMPLE})` }).optional(),
});

const KNOWN_KEYS = new Set([...Object.keys(commonShape), "dependencies"]);
/** Keys stored as typed fields of {@link PackManifest} rather than in `extras`. */
const TYPED_KEYS = new Set(["ray", "isolated", "can_isolate", "share_torch", "dependencies", "name", "share_cuda_ipc", "sandbox", "can_sandbox", "sandbox_mode", "node_timeout", "memory_limit", "env"]);

/** Bytes in a `memory_limit` value: a number is MiB; `K`/`M`/`G`/`T` (with or without `i`/`B`) are powers of 1024. */
export function parseSize(v: number | string): number {
  if (typeof v === "number") return Math.round(v * 2 ** 20);
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)/i.exec(v)!;
  const unit = { "": 2 ** 20, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2]!.toUpperCase() as "" | "K" | "M" | "G" | "T"];
  return Math.round(Number(m[1]) * (/^\s*\d+(\.\d+)?\s*B\s*$/i.test(v) ? 1 : unit));
}


function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return String(v);
}

function keyPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur = root;
  for (const part of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[part as string];
  }
  return cur;
}

function invalid(pack: string, file: string, detail: string): ManifestError {
  return new PyisolateError("MANIFEST_INVALID", `${displayPath(file)}: ${detail}`, { pack, file });
}

function zodError(pack: string, file: string, raw: unknown, error: z.ZodError, prefix: readonly PropertyKey[] = []): ManifestError {
  const parts = error.issues.map((issue) => {
    const path = [...prefix, ...issue.path];
    return `"${keyPath(path)}" must be ${issue.message}, got ${describeValue(valueAt(raw, issue.path))}`;
  });
  return invalid(pack, file, `${parts.join("; ")}. Fix the manifest (see docs/manifest.md).`);
}

interface Normalized {
  manifest: PackManifest;
  warnings: string[];
}

/** Builds the manifest from validated keys, applying defaults and share_torch filtering. */
function normalize(
  source: ManifestSource,
  data: z.infer<typeof tomlIsolationSchema>,
  rawKeys: Record<string, unknown>,
  dependencies: string[],
  defaults: { isolated: boolean; shareTorch: boolean },
  unknownWhere: string,
): Normalized {
  const warnings: string[] = [];
  for (const key of Object.keys(rawKeys)) {
    if (!KNOWN_KEYS.has(key)) warnings.push(`${source}: unknown key "${unknownWhere}${key}" is ignored.`);
  }
  const isolated = data.isolated ?? data.can_isolate ?? defaults.isolated;
  const shareTorch = data.share_torch ?? defaults.shareTorch;
  let deps = dependencies.map((d) => d.trim());
  if (shareTorch) {
    const dropped = deps.filter(isHostTorchRequirement);
    if (dropped.length > 0) {
      deps = deps.filter((d) => !isHostTorchRequirement(d));
      warnings.push(`${source}: ${dropped.map((d) => JSON.stringify(d)).join(", ")} not installed: share_torch uses the host environment's torch.`);
    }
  }
  if (data.share_cuda_ipc && !shareTorch) warnings.push(`${source}: share_cuda_ipc needs share_torch; it is ignored.`);
  if (data.package_manager === "conda") warnings.push(`${source}: package_manager "conda" is not supported; the environment is built with uv.`);
  if (data.execution_model === "sealed_worker") warnings.push(`${source}: execution_model "sealed_worker" is not supported; the pack runs host-coupled.`);
  if (typeof data.sandbox === "object" && data.sandbox !== null) {
    for (const key of Object.keys(data.sandbox)) {
      if (!["network", "writable_paths", "readonly_paths"].includes(key)) warnings.push(`${source}: unknown sandbox setting "${unknownWhere}sandbox.${key}" is ignored.`);
    }
  }
  const extras: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rawKeys)) if (!TYPED_KEYS.has(key)) extras[key] = value;
  const manifest: PackManifest = { source, isolated, shareTorch, dependencies: deps, extras };
  if (data.name !== undefined) manifest.name = data.name;
  if (data.share_cuda_ipc !== undefined) manifest.shareCudaIpc = data.share_cuda_ipc && shareTorch;
  if (data.sandbox !== undefined) manifest.sandbox = data.sandbox;
  if (data.can_sandbox !== undefined) manifest.canSandbox = data.can_sandbox;
  if (data.sandbox_mode !== undefined) manifest.sandboxMode = data.sandbox_mode;
  if (data.node_timeout !== undefined) manifest.nodeTimeoutMs = Math.round(data.node_timeout * 1000);
  if (data.memory_limit !== undefined) manifest.memoryLimitBytes = parseSize(data.memory_limit);
  if (data.env !== undefined) manifest.env = data.env;
  if (data.ray !== undefined) {
    const r: RayResources = {};
    if (data.ray.num_cpus !== undefined) r.numCpus = data.ray.num_cpus;
    if (data.ray.num_gpus !== undefined) r.numGpus = data.ray.num_gpus;
    if (data.ray.memory !== undefined) r.memoryBytes = parseSize(data.ray.memory);
    if (data.ray.resources !== undefined) r.resources = data.ray.resources;
    manifest.ray = r;
  }
  return { manifest, warnings };
}

/**
 * Parses and validates a `pyisolate.yaml` (or `.yml`) manifest.
 * Defaults: `isolated: true` (a pack ships the file to be isolated; `can_isolate` is read
 * when `isolated` is absent), `share_torch: true`, `dependencies: []`.
 * @throws ManifestError when the file is not valid YAML or a key has the wrong type.
 */
export function parseYamlManifest(pack: string, file: string, text: string): Normalized {
  const source = basename(file) === "pyisolate.yml" ? "pyisolate.yml" : "pyisolate.yaml";
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos?.[0] ? ` (line ${err.linePos[0].line}, column ${err.linePos[0].col})` : "";
    const msg = (err as Error).message.split("\n")[0] ?? "";
    throw invalid(pack, file, `is not valid YAML${where}: ${msg}`);
  }
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw invalid(pack, file, `must be a mapping of keys (isolated, share_torch, dependencies), got ${describeValue(raw)}`);
  }
  const parsed = yamlSchema.safeParse(raw);
  if (!parsed.success) throw zodError(pack, file, raw, parsed.error);
  return normalize(source, parsed.data, raw as Record<string, unknown>, parsed.data.dependencies ?? [], { isolated: true, shareTorch: true }, "");
}

/**
 * Reads the isolation settings of a `pyproject.toml`: `[tool.comfy.isolation]`
 * (`can_isolate` → isolated, default false; `share_torch`, default false) and
 * `[project].dependencies`.
 * @returns null when the file has no `[tool.comfy.isolation]` table (an ordinary pyproject).
 * @throws ManifestError when the table exists but is invalid, or the file is not valid TOML
 * and mentions `tool.comfy.isolation`.
 */
export function parsePyprojectManifest(pack: string, file: string, text: string): Normalized | null {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (!/tool\.comfy\.isolation|\[tool\.comfy\]/.test(text)) return null;
    const where = err instanceof TomlError ? ` (line ${err.line}, column ${err.column})` : "";
    const msg = (err as Error).message.split("\n")[0] ?? "";
    throw invalid(pack, file, `is not valid TOML${where}: ${msg}`);
  }
  const tool = doc.tool as Record<string, unknown> | undefined;
  const comfy = tool?.comfy as Record<string, unknown> | undefined;
  const isolation = comfy?.isolation;
  if (isolation === undefined) return null;
  if (isolation === null || typeof isolation !== "object" || Array.isArray(isolation)) {
    throw invalid(pack, file, `"tool.comfy.isolation" must be a table, got ${describeValue(isolation)}`);
  }
  const iso = tomlIsolationSchema.safeParse(isolation);
  if (!iso.success) throw zodError(pack, file, isolation, iso.error, ["tool", "comfy", "isolation"]);
  const isoRaw = { ...(isolation as Record<string, unknown>) };
  const project = (doc.project ?? {}) as unknown;
  const proj = tomlProjectSchema.safeParse(project);
  if (!proj.success) throw zodError(pack, file, project, proj.error, ["project"]);
  const ignoredDeps = "dependencies" in isoRaw;
  delete isoRaw.dependencies;
  const out = normalize("pyproject.toml", iso.data, isoRaw, proj.data.dependencies ?? [], { isolated: false, shareTorch: false }, "tool.comfy.isolation.");
  if (ignoredDeps) out.warnings.push('pyproject.toml: "tool.comfy.isolation.dependencies" is ignored; dependencies come from [project].dependencies.');
  if (iso.data.name === undefined && proj.data.name !== undefined) out.manifest.name = proj.data.name;
  return out;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Reads one pack directory's manifest. `pyisolate.yaml` (then `pyisolate.yml`) wins over
 * `pyproject.toml`.
 * @throws ManifestError when the manifest is invalid.
 */
export function loadPack(dir: string): PackInfo {
  const path = resolve(dir);
  const name = basename(path);
  const warnings: string[] = [];
  let manifest: PackManifest | null = null;
  let manifestFile: string | null = null;
  for (const fileName of ["pyisolate.yaml", "pyisolate.yml"]) {
    const file = join(path, fileName);
    if (!isFile(file)) continue;
    const got = parseYamlManifest(name, file, readFileSync(file, "utf8"));
    manifest = got.manifest;
    manifestFile = file;
    warnings.push(...got.warnings);
    break;
  }
  const pyproject = join(path, "pyproject.toml");
  if (manifest === null && isFile(pyproject)) {
    const got = parsePyprojectManifest(name, pyproject, readFileSync(pyproject, "utf8"));
    if (got) {
      manifest = got.manifest;
      manifestFile = pyproject;
      warnings.push(...got.warnings);
    }
  }
  return {
    name,
    path,
    layout: "package",
    kind: manifest?.isolated ? "isolated" : "shared",
    manifest,
    manifestFile,
    warnings,
  };
}

/** Whether ComfyUI would skip this entry of `custom_nodes`. */
function skipped(name: string): boolean {
  return name.startsWith(".") || name.startsWith("__") || name.endsWith(".disabled");
}

/**
 * Finds the node packs under a `custom_nodes` directory, as ComfyUI does: every
 * subdirectory with an `__init__.py` and every top-level `*.py` file (a shared single-module
 * pack), skipping names that start with `.` or `__` or end in `.disabled`.
 * @throws PyisolateError `NOT_FOUND` when the directory does not exist.
 * @example
 * const { packs, errors } = discoverPacks("custom_nodes");
 * for (const e of errors) console.error(e.message);
 */
export function discoverPacks(customNodesDir: string): Discovery {
  const root = resolve(customNodesDir);
  if (!isDir(root)) {
    throw new PyisolateError(
      "NOT_FOUND",
      `The custom nodes directory ${displayPath(root)} ${existsSync(root) ? "is not a folder" : "does not exist"}. Pass --custom-nodes DIR (the folder that holds your node packs).`,
      { file: root },
    );
  }
  const packs: PackInfo[] = [];
  const errors: ManifestError[] = [];
  for (const entry of readdirSync(root).sort()) {
    if (skipped(entry)) continue;
    const full = join(root, entry);
    if (isDir(full)) {
      if (!isFile(join(full, "__init__.py"))) continue;
      try {
        packs.push(loadPack(full));
      } catch (err) {
        if (err instanceof PyisolateError) errors.push(err);
        else errors.push(new PyisolateError("MANIFEST_INVALID", `${displayPath(full)}: could not be read: ${(err as Error).message}`, { pack: entry, file: full, cause: err }));
      }
    } else if (entry.endsWith(".py") && isFile(full)) {
      packs.push({ name: entry.slice(0, -3), path: full, layout: "module", kind: "shared", manifest: null, manifestFile: null, warnings: [] });
    }
  }
  packs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { packs, errors };
}
