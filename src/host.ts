/**
 * `createHost`: the library's front door. It discovers the node packs of a `custom_nodes`
 * folder, builds (or reuses) each isolated pack's environment, registers every node — from
 * the metadata cache when it can, so that no process starts —, and runs ComfyUI API-format
 * prompts over the packs' processes.
 * @module
 */
import { resolve } from "node:path";
import { MetadataCache } from "./nodes/metadata_cache.ts";
import { EnvManager, type BuildProgress, type BuildResult } from "./env/env_manager.ts";
import type { HostPython } from "./env/host_python.ts";
import { PyisolateError } from "./errors.ts";
import { ClientView } from "./executor/client_view.ts";
import { PromptExecutor, type NodeRecord, type RunResult } from "./executor/executor.ts";
import { validatePrompt } from "./executor/validate.ts";
import type { ExecutionEvent, NodeInfo, Prompt, ValidationResult } from "./executor/types.ts";
import { HostCore, type HostPack } from "./process/host_core.ts";
import { log as defaultLog, type Logger } from "./log.ts";
import { discoverPacks, type PackInfo } from "./manifest/manifest.ts";
import { installNodeApi, type NodeApi } from "./node_api/mod.ts";
import { NodeRegistry, type PackLoad } from "./nodes/registry.ts";
import { ServiceRegistry } from "./rpc/services.ts";
import { SegmentRegistry } from "./values/segments.ts";

/** Options of {@link createHost}. */
export interface HostOptions {
  /** The folder of node packs. @default "custom_nodes" */
  customNodes?: string;
  /** Environments, metadata cache and probes. One per `customNodes` folder. @default ".pyisolate" */
  cacheDir?: string;
  /** The host Python, whose environment holds torch. @default `$PYISOLATE_PYTHON`, `./.venv/bin/python`, else `python3` with torch */
  python?: string;
  /** ComfyUI's base directory for `folder_paths` (models/, input/, output/, temp/). @default the current directory */
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
  kind: "isolated" | "shared" | "invalid";
  /** `cache`: nodes registered from the metadata cache; `process`: its process reported them. */
  source: "cache" | "process" | "failed";
  nodes: number;
  env?: BuildResult["status"];
  error?: PyisolateError;
}

/** Options of {@link Host.run}. */
export interface HostRunOptions {
  /**
   * Receives ComfyUI's events in the order a ComfyUI client sees them: the executor's and
   * those nodes send (`progress`, `send_sync`, binary previews), one node at a time even
   * where branches run in parallel (see `ClientView`).
   */
  onEvent?: (event: ExecutionEvent) => void;
  /** @default a random UUID */
  promptId?: string;
  /** The client id `PromptServer.instance.client_id` reports. @default null */
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
  /** The node classes. */
  readonly registry: NodeRegistry;
  /** The host Python (its version, its torch). */
  readonly python: HostPython;
  /** Every node's `/object_info` entry. */
  nodes(): Record<string, NodeInfo>;
  /** Validates and runs an API-format prompt. */
  run(prompt: Prompt, opts?: HostRunOptions): Promise<RunResult>;
  /**
   * Whether a prompt is running. While it is, what nodes send reaches that run's `onEvent`;
   * a listener of `api.events` that forwards the rest checks it.
   */
  readonly running: boolean;
  /** Validates a prompt against the node schemas without running it (ComfyUI's `/prompt` check). */
  validate(prompt: Prompt): Promise<ValidationResult>;
  /** Stops the running prompt (ComfyUI's interrupt). */
  interrupt(): void;
  /**
   * Frees memory as ComfyUI's `/free` does: `unloadModels` tells every live process to unload
   * its models; `freeMemory` also drops every cached output and empties the caches.
   */
  free(opts: { unloadModels?: boolean; freeMemory?: boolean }): void;
  /** Stops every process and removes every tensor segment. */
  close(): Promise<void>;
}

/**
 * Starts a host over a folder of node packs.
 *
 * @throws {PyisolateError} `PYTHON_NOT_FOUND` when no host Python can be found. A pack whose
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
  const baseDir = resolve(opts.baseDir ?? ".");

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

  const envs = await EnvManager.create({ cacheDir, ...(opts.python ? { python: opts.python } : {}) });
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
  const core = new HostCore({
    hostPython: envs.host.python,
    packs: hostPacks,
    resolvePython: async (name) => envs.envPython(byName.get(name)!),
    services: new ServiceRegistry(),
    logger,
    cacheDir,
    sysPath: (opts.sharedModules ?? []).map((d) => resolve(d)),
  });
  const api = installNodeApi(core, {
    folders: {
      baseDir,
      customNodesDir: customNodes,
      ...(opts.outputDir ? { outputDir: resolve(opts.outputDir) } : {}),
      ...(opts.inputDir ? { inputDir: resolve(opts.inputDir) } : {}),
    },
  });
  const cache = new MetadataCache(cacheDir);
  const registry = new NodeRegistry({
    core,
    cache,
    cacheKey: (name) => {
      const p = byName.get(name);
      return p ? cache.key(p, envs.fingerprint(p)) : undefined;
    },
    segments,
    logger,
  });

  let loads: PackLoad[];
  try {
    loads = await registry.load();
  } catch (e) {
    await core.close();
    segments.releaseAll();
    throw e;
  }
  for (const l of loads) {
    const s = statuses.get(l.pack)!;
    s.source = l.source;
    s.nodes = l.nodes;
    if (l.error) s.error = l.error;
  }

  const executor = new PromptExecutor(registry);
  let closed = false;
  let running = false;
  return {
    packs: [...statuses.values()].sort((a, b) => a.name.localeCompare(b.name)),
    api,
    core,
    registry,
    python: envs.host,
    nodes: () => registry.objectInfo(),
    get running() {
      return running;
    },
    async run(prompt, runOpts = {}) {
      if (closed) throw new PyisolateError("USAGE", "This host is closed; create a new one with createHost().");
      api.promptServer.setClientId(runOpts.clientId ?? null);
      const view = runOpts.onEvent ? new ClientView(runOpts.onEvent) : undefined;
      const off = view ? api.events.on((e) => view.node(e)) : undefined;
      const wasRunning = running;
      running = true;
      try {
        return await executor.run(prompt, {
          ...(runOpts.promptId ? { promptId: runOpts.promptId } : {}),
          ...(runOpts.extraPngInfo !== undefined ? { extraPngInfo: runOpts.extraPngInfo } : {}),
          ...(view ? { onEvent: view.executor } : {}),
          onNode: (r) => {
            view?.finished(r.id, r.status === "executed");
            runOpts.onNode?.(r);
          },
        });
      } finally {
        off?.();
        running = wasRunning;
      }
    },
    validate: (prompt) => validatePrompt(structuredClone(prompt), registry),
    interrupt: () => executor.interrupt(),
    free({ unloadModels = false, freeMemory = false }) {
      if (unloadModels || freeMemory) api.modelManagement.unloadAllModels();
      if (freeMemory) {
        executor.clearCache();
        api.modelManagement.softEmptyCache(true);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      executor.clearCache();
      await core.close();
      segments.releaseAll();
    },
  };
}
