/**
 * `createHost`: the library's front door. It discovers the node packs of a `custom_nodes`
 * folder, builds (or reuses) each isolated pack's environment, registers every node — from
 * the metadata cache when it can, so that no process starts —, and runs ComfyUI API-format
 * prompts over the packs' processes.
 * @module
 */
import { resolve } from "node:path";
import { comfyuiArgsFromEnv, comfyuiFromEnv, CORE_PACK_NAME, corePack, resolveComfyUI, type ComfyCheckout } from "./env/comfyui.ts";
import { envStateStamp, metadataKey } from "./nodes/pack_keys.ts";
import { MetadataCache } from "./nodes/metadata_cache.ts";
import { EnvManager, type BuildProgress, type BuildResult } from "./env/env_manager.ts";
import { PyisolateError } from "./errors.ts";
import { PromptExecutor, type NodeRecord, type RunResult } from "./executor/executor.ts";
import type { ExecutionEvent, NodeInfo, Prompt } from "./executor/types.ts";
import { HostCore, type HostPack } from "./process/host_core.ts";
import { log as defaultLog, type Logger } from "./log.ts";
import { discoverPacks, type PackInfo } from "./manifest/manifest.ts";
import { installNodeApi, type NodeApi } from "./node_api/mod.ts";
import { NodeRegistry, type ImportFailure, type PackLoad } from "./nodes/registry.ts";
import { ServiceRegistry } from "./rpc/services.ts";
import { SegmentRegistry } from "./values/segments.ts";

/** Options of {@link createHost}. */
export interface HostOptions {
  /** The folder of node packs. @default "custom_nodes" */
  customNodes?: string;
  /** Environments, metadata cache and probes. One per `customNodes` folder. @default ".pyisolate" */
  cacheDir?: string;
  /** The host Python, whose environment holds torch. @default `$PYISOLATE_PYTHON`, the ComfyUI checkout's `.venv`/`venv` (with `comfyui`), `./.venv/bin/python`, else `python3` with torch */
  python?: string;
  /**
   * A ComfyUI checkout (core mode): every process imports ComfyUI's real modules from it, the
   * shared process also loads its built-in nodes (pack `"ComfyUI"`), and its environment is
   * the default host Python. Without one, pyisolate's shims provide the node API.
   * @default `$PYISOLATE_COMFYUI`, else none
   */
  comfyui?: string;
  /** ComfyUI's own command-line arguments, as `comfy.cli_args` parses them in every process (e.g. `["--cpu"]`). @default `$PYISOLATE_COMFYUI_ARGS` split on spaces */
  comfyuiArgs?: string[];
  /** ComfyUI's base directory for `folder_paths` (models/, input/, output/, temp/). @default the ComfyUI checkout with `comfyui`, else the current directory */
  baseDir?: string;
  /** Where output nodes save files. @default `<baseDir>/output` */
  outputDir?: string;
  /** Where `folder_paths.get_input_directory()` points. @default `<baseDir>/input` */
  inputDir?: string;
  /** Only these packs (by name). @default every pack found */
  packs?: string[];
  /** How many environments build at once. @default min(4, CPUs) */
  buildConcurrency?: number;
  /** Receives environment build progress (one event per uv step). */
  onBuildProgress?: (p: BuildProgress) => void;
  /** Folders every Python process puts on `sys.path`: where shared modules (ProxiedSingletons) live. @default [] */
  sharedModules?: string[];
  /** @default the shared `log` (stderr) */
  logger?: Logger;
}

/** What happened to one pack while the host started. */
export interface PackStatus {
  name: string;
  /** `core`: ComfyUI's built-in nodes (core mode), in the shared process. */
  kind: "isolated" | "shared" | "core" | "invalid";
  /** `cache`: nodes registered from the metadata cache; `process`: its process reported them. */
  source: "cache" | "process" | "failed";
  nodes: number;
  env?: BuildResult["status"];
  error?: PyisolateError;
  /** Set when the pack failed to import: the exception, file and line its process reported. */
  importError?: ImportFailure;
}

/** Options of {@link Host.run}. */
export interface HostRunOptions {
  /** Receives ComfyUI events: the executor's and those nodes send (`progress`, `send_sync`). */
  onEvent?: (event: ExecutionEvent) => void;
  /** @default a random UUID */
  promptId?: string;
  /** The client id `PromptServer.instance.client_id` reports. */
  clientId?: string;
  /** The `EXTRA_PNGINFO` hidden input. */
  extraPngInfo?: unknown;
  /** Called as each node finishes, with its pack, status and time. */
  onNode?: (record: NodeRecord) => void;
}

/** A running host. */
export interface Host {
  /** Every pack found, with how it loaded. */
  readonly packs: PackStatus[];
  /** The node API services (folder paths, model management, prompt server, progress, events). */
  readonly api: NodeApi;
  /** The host's processes. */
  readonly core: HostCore;
  /** The ComfyUI checkout of core mode, or null (shims). */
  readonly comfyui: ComfyCheckout | null;
  /** The node classes. */
  readonly registry: NodeRegistry;
  /** Every node's `/object_info` entry. */
  nodes(): Record<string, NodeInfo>;
  /** Validates and runs an API-format prompt. */
  run(prompt: Prompt, opts?: HostRunOptions): Promise<RunResult>;
  /** Stops the running prompt (ComfyUI's interrupt). */
  interrupt(): void;
  /** Stops every process and removes every tensor segment. */
  close(): Promise<void>;
}

/**
 * Starts a host over a folder of node packs.
 *
 * @throws {PyisolateError} `PYTHON_NOT_FOUND` when no host Python can be found; `NOT_FOUND` or
 *   `VALIDATION` (naming the file) for a `comfyui` folder that is not a usable checkout. A pack whose
 *   manifest is invalid or whose environment cannot be built is reported in `host.packs` and
 *   skipped; the other packs still load.
 * @example
 * ```ts
 * import { createHost } from "pyisolate";
 * const host = await createHost({ customNodes: "custom_nodes" });
 * const result = await host.run(prompt, { onEvent: (e) => console.log(e.type) });
 * await host.close();
 * ```
 */
export async function createHost(opts: HostOptions = {}): Promise<Host> {
  const logger = opts.logger ?? defaultLog;
  const customNodes = resolve(opts.customNodes ?? "custom_nodes");
  const cacheDir = resolve(opts.cacheDir ?? ".pyisolate");
  const comfyDir = opts.comfyui ?? comfyuiFromEnv();
  const checkout = comfyDir !== undefined ? resolveComfyUI(comfyDir, opts.comfyuiArgs ?? comfyuiArgsFromEnv()) : null;
  const baseDir = resolve(opts.baseDir ?? checkout?.dir ?? ".");

  const found = await discoverPacks(customNodes);
  const statuses = new Map<string, PackStatus>();
  for (const e of found.errors) {
    const name = e.pack ?? e.file ?? "?";
    if (opts.packs && !opts.packs.includes(name)) continue;
    statuses.set(name, { name, kind: "invalid", source: "failed", nodes: 0, error: e });
    logger.pack(name, `skipped: ${e.message}`, "error");
  }
  let packs = found.packs;
  if (opts.packs) {
    const known = new Set(packs.map((p) => p.name));
    const missing = opts.packs.filter((p) => !known.has(p) && !statuses.has(p));
    if (missing.length > 0) {
      throw new PyisolateError("NOT_FOUND", `No pack named ${missing.map((m) => `"${m}"`).join(", ")} in ${customNodes}; found: ${[...known].join(", ") || "none"}.`);
    }
    packs = packs.filter((p) => opts.packs!.includes(p.name));
  }
  for (const p of packs) for (const w of p.warnings) logger.pack(p.name, `warning: ${w}`, "warn");
  if (checkout && packs.some((p) => p.name === CORE_PACK_NAME)) {
    throw new PyisolateError("USAGE", `A pack in ${customNodes} is named "${CORE_PACK_NAME}", the name ComfyUI's built-in nodes take in core mode; rename that pack's folder.`, { pack: CORE_PACK_NAME });
  }

  const envs = await EnvManager.create({ cacheDir, ...(opts.python ? { python: opts.python } : {}), ...(checkout ? { comfyui: checkout.dir } : {}) });
  if (checkout) logger.info(`][ ${CORE_PACK_NAME} core mode: ComfyUI ${checkout.version ?? "(unknown version)"} at ${checkout.dir}, host Python ${envs.host.python}${checkout.args.length ? `, arguments ${checkout.args.join(" ")}` : ""}`);
  const builds = await envs.build(packs, {
    ...(opts.buildConcurrency ? { concurrency: opts.buildConcurrency } : {}),
    ...(opts.onBuildProgress ? { onProgress: opts.onBuildProgress } : {}),
  });
  const usable: PackInfo[] = [];
  for (const b of builds) {
    const pack = packs.find((p) => p.name === b.pack)!;
    if (b.status === "failed") {
      statuses.set(pack.name, { name: pack.name, kind: pack.kind, source: "failed", nodes: 0, env: b.status, ...(b.error ? { error: b.error } : {}) });
      logger.pack(pack.name, `skipped: ${b.error?.message ?? "its environment could not be built"}`, "error");
      continue;
    }
    usable.push(pack);
    statuses.set(pack.name, { name: pack.name, kind: pack.kind, source: "failed", nodes: 0, env: b.status });
  }

  const byName = new Map(usable.map((p) => [p.name, p]));
  const segments = new SegmentRegistry();
  segments.sweepDeadHosts();
  const hostPacks: HostPack[] = usable.map((p) => ({ name: p.name, path: p.path, kind: p.kind, ...(p.kind === "isolated" && p.manifest?.env ? { env: p.manifest.env } : {}) }));
  if (checkout) {
    const builtIn = corePack(checkout);
    hostPacks.unshift({ name: builtIn.name, path: builtIn.path, kind: "shared", core: true });
    byName.set(builtIn.name, builtIn);
    statuses.set(builtIn.name, { name: builtIn.name, kind: "core", source: "failed", nodes: 0, env: "shared" });
  }
  const hostCore = new HostCore({
    hostPython: envs.host.python,
    packs: hostPacks,
    resolvePython: async (name) => envs.envPython(byName.get(name)!),
    services: new ServiceRegistry(),
    logger,
    cacheDir,
    sysPath: (opts.sharedModules ?? []).map((d) => resolve(d)),
    ...(checkout ? { options: { comfyui: { dir: checkout.dir, args: checkout.args, version: checkout.version } } } : {}),
  });
  const api = installNodeApi(hostCore, {
    folders: {
      baseDir,
      customNodesDir: customNodes,
      ...(opts.outputDir ? { outputDir: resolve(opts.outputDir) } : {}),
      ...(opts.inputDir ? { inputDir: resolve(opts.inputDir) } : {}),
    },
  });
  const cache = new MetadataCache(cacheDir);
  const registry = new NodeRegistry({
    core: hostCore,
    cache,
    cacheKey: (name) => {
      const p = byName.get(name);
      return p ? metadataKey(cache, envs, p, checkout) : undefined;
    },
    retryStamp: (name) => {
      const p = byName.get(name);
      return p ? envStateStamp(envs, p) : "";
    },
    segments,
    logger,
  });

  let loads: PackLoad[];
  try {
    loads = await registry.load();
  } catch (e) {
    await hostCore.close();
    segments.releaseAll();
    throw e;
  }
  for (const l of loads) {
    const s = statuses.get(l.pack)!;
    s.source = l.source;
    s.nodes = l.nodes;
    if (l.error) s.error = l.error;
    if (l.importError) s.importError = l.importError;
  }

  const executor = new PromptExecutor(registry);
  let closed = false;
  return {
    packs: [...statuses.values()].sort((a, b) => a.name.localeCompare(b.name)),
    api,
    core: hostCore,
    comfyui: checkout,
    registry,
    nodes: () => registry.objectInfo(),
    async run(prompt, runOpts = {}) {
      if (closed) throw new PyisolateError("USAGE", "This host is closed; create a new one with createHost().");
      if (runOpts.clientId !== undefined) api.promptServer.setClientId(runOpts.clientId);
      const off = runOpts.onEvent ? api.events.on((e) => runOpts.onEvent!({ type: String(e.type), data: (e.data ?? {}) as Record<string, unknown> })) : undefined;
      try {
        return await executor.run(prompt, {
          ...(runOpts.promptId ? { promptId: runOpts.promptId } : {}),
          ...(runOpts.extraPngInfo !== undefined ? { extraPngInfo: runOpts.extraPngInfo } : {}),
          ...(runOpts.onEvent ? { onEvent: runOpts.onEvent } : {}),
          ...(runOpts.onNode ? { onNode: runOpts.onNode } : {}),
        });
      } finally {
        off?.();
      }
    },
    interrupt: () => executor.interrupt(),
    async close() {
      if (closed) return;
      closed = true;
      executor.clearCache();
      await hostCore.close();
      segments.releaseAll();
    },
  };
}

