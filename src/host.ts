/**
 * `createHost`: the library's front door. It discovers the node packs of a `custom_nodes`
 * folder, builds (or reuses) each isolated pack's environment, registers every node — from
 * the metadata cache when it can, so that no process starts —, and runs ComfyUI API-format
 * prompts over the packs' processes.
 * @module
 */
import { RayCluster, rayOptionsFrom, type RayOptions } from "./process/ray.ts";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { comfyuiArgsFromEnv, comfyuiFromEnv, CORE_PACK_NAME, corePack, resolveComfyUI, type ComfyCheckout } from "./env/comfyui.ts";
import { envStateStamp, metadataKey } from "./nodes/pack_keys.ts";
import { MetadataCache } from "./nodes/metadata_cache.ts";
import { EnvManager, type BuildProgress, type BuildResult } from "./env/env_manager.ts";
import { comfyInstallOf, type HostPython } from "./env/host_python.ts";
import { asPyisolateError, PyisolateError } from "./errors.ts";
import { ClientView } from "./executor/client_view.ts";
import { PromptExecutor, type NodeRecord, type RunResult } from "./executor/executor.ts";
import { ProcessGate } from "./executor/process_gate.ts";
import { validatePrompt } from "./executor/validate.ts";
import { convertUiWorkflow, isUiWorkflow, type UiWorkflow } from "./workflow/ui_workflow.ts";
import type { ExecutionEvent, NodeInfo, Prompt, ValidationResult } from "./executor/types.ts";
import { HostCore, type HostPack } from "./process/host_core.ts";
import { asLogger, type Logger, type LoggerLike } from "./log.ts";
import type { HealthCheckOptions } from "./process/python_process.ts";
import { planSandbox, sandboxAvailability, type SandboxMode, type SandboxPlan } from "./process/sandbox.ts";
import { discoverPacks, type PackInfo } from "./manifest/manifest.ts";
import { unmetRequirements } from "./manifest/requirements.ts";
import { applyComfyStartupPaths, EXTRA_MODEL_PATHS_FILE, readExtraModelPaths, type ExtraModelPath } from "./node_api/extra_model_paths.ts";
import { installNodeApi, type NodeApi } from "./node_api/mod.ts";
import type { NodeApiEvent } from "./node_api/events.ts";
import { NodeRegistry, type ImportFailure, type PackLoad } from "./nodes/registry.ts";
import { ServiceRegistry } from "./rpc/services.ts";
import { SegmentRegistry, newHostId } from "./values/segments.ts";
import { ensurePackageFiles } from "./paths.ts";
import type { SpawnMode } from "./process/template.ts";

/** Options of {@link createHost}. */
export interface HostOptions {
  /** The folder of node packs. @default "custom_nodes" */
  customNodes?: string;
  /** Environments, metadata cache and probes. One per `customNodes` folder. @default ".pyisolate" */
  cacheDir?: string;
  /**
   * The host Python, whose environment holds torch. @default `$PYISOLATE_PYTHON`, else the
   * ComfyUI checkout's `.venv`/`venv` (with `comfyui`), the Python of the ComfyUI install around
   * `customNodes`, `./.venv/bin/python`, the environment `pyisolate setup` made, or `python3`
   * on PATH when it has torch
   */
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
  /** `folder_paths.get_temp_directory()`. @default `<baseDir>/temp` */
  tempDir?: string;
  /** `folder_paths.get_user_directory()`. @default `<baseDir>/user` */
  userDir?: string;
  /**
   * ComfyUI `extra_model_paths.yaml` files, read (as ComfyUI reads them) after the default one:
   * `extra_model_paths.yaml` in the ComfyUI install around `customNodes`, else in `baseDir`,
   * when it exists. @default []
   */
  extraModelPaths?: string[];
  /** Only these packs (by name). @default every pack found */
  packs?: string[];
  /** How many environments build at once. @default min(4, CPUs) */
  buildConcurrency?: number;
  /** Receives environment build progress (one event per uv step). */
  onBuildProgress?: (p: BuildProgress) => void;
  /** Folders every Python process puts on `sys.path`: where shared modules (ProxiedSingletons) live. @default [] */
  sharedModules?: string[];
  /** Where log lines go: a {@link Logger}, or any `{ debug, info, warn, error }` object (`console`, pino). @default the shared `log` (stderr) */
  logger?: Logger | LoggerLike;
  /**
   * Bubblewrap sandboxes: `"off"` runs no pack sandboxed (a pack that requires one fails to
   * load), `"auto"` sandboxes the packs whose manifest asks for it, `"required"` every pack,
   * the shared process included (see the README's "Reliability and security").
   * @default `PYISOLATE_SANDBOX`, else "auto"
   */
  sandbox?: SandboxMode;
  /** Each node's time limit (ms) in packs whose manifest sets no `node_timeout`; `0` for none. @default 0 */
  nodeTimeoutMs?: number;
  /** How long a node has to stop after an interrupt or its time limit before its process is killed (and restarted on the next call). @default 10000 */
  interruptGraceMs?: number;
  /** Memory limit (MiB) of each isolated pack's process whose manifest sets no `memory_limit`. @default none */
  memoryLimitMb?: number;
  /** The health check of running processes (a ping the child's I/O thread answers), or `false`. @default every 5 s, failed after 30 s */
  healthCheck?: HealthCheckOptions | false;
  /** How packs' processes start: `fork` from a template with torch imported (plain spawn where unsafe), or `spawn`. @default `PYISOLATE_SPAWN`, else `"fork"` */
  spawn?: SpawnMode;
  /**
   * Where isolated packs run: `"local"` (processes of this machine) or `"ray"` (actors of a Ray
   * cluster, `ray.address`; each pack's manifest `ray:` says what its actor needs). The shared
   * process stays on this machine. @default `"ray"` when `PYISOLATE_RAY` is set, else `"local"`
   */
  backend?: "local" | "ray";
  /** The Ray backend's settings (`address` defaults to `PYISOLATE_RAY`, else `"auto"`: a local cluster). */
  ray?: Partial<RayOptions>;
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
  /**
   * Which of the host's executors runs the prompt. Each lane has its own output cache; runs
   * on one lane go one after another, runs on different lanes at the same time, over the
   * same processes — a process runs one node at a time, so two prompts that need the same
   * pack take turns there, node by node. @default 0
   */
  lane?: number;
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
  /** The host Python (its version, its torch). */
  readonly python: HostPython;
  /** The host's shared-memory segments (its folder `/dev/shm/pyisolate-<id>/`, removed by `close()`). */
  readonly segments: SegmentRegistry;
  /** Every node's `/object_info` entry. */
  nodes(): Record<string, NodeInfo>;
  /**
   * Validates and runs a prompt: API format, or a workflow in the UI format (converted first,
   * as {@link Host.toPrompt} does).
   */
  run(prompt: Prompt | UiWorkflow, opts?: HostRunOptions): Promise<RunResult>;
  /**
   * The API prompt of a workflow: a UI-format one converted from the node schemas, as the
   * ComfyUI editor's "Export (API)" does; an API prompt is returned as it is.
   * @throws {PyisolateError} `VALIDATION` naming a node no pack provides, and its id.
   */
  toPrompt(workflow: Prompt | UiWorkflow): Prompt;
  /** Whether a prompt is running. */
  readonly running: boolean;
  /** The ids of the prompts running now (one per busy lane), in the order they began. */
  readonly runningPrompts: string[];
  /**
   * The running prompt an event a node sent belongs to, whose run's `onEvent` receives it: the
   * prompt it names (its node's, which progress reports and `send_sync` carry), or the only
   * prompt running when it names none. Null when it belongs to no run (sent outside any
   * prompt, or naming none while several run): a listener of `api.events` forwards those.
   */
  promptOf(event: NodeApiEvent): string | null;
  /**
   * How many of the prompt's nodes lane `lane`'s output cache holds from the same node (same
   * id, class and inputs): a cheap guess of how much a run there would reuse.
   */
  cacheScore(prompt: Prompt, lane?: number): number;
  /** Validates a prompt against the node schemas without running it (ComfyUI's `/prompt` check). */
  validate(prompt: Prompt | UiWorkflow): Promise<ValidationResult>;
  /**
   * Stops a running prompt (ComfyUI's interrupt): prompt `promptId`, while the others go on;
   * without an id, every running prompt. Returns whether one was running.
   */
  interrupt(promptId?: string): boolean;
  /**
   * Frees memory as ComfyUI's `/free` does: `unloadModels` tells every live process to unload
   * its models; `freeMemory` also drops every cached output and empties the caches.
   */
  free(opts: { unloadModels?: boolean; freeMemory?: boolean }): void;
  /** Stops every process and removes every tensor segment. */
  close(): Promise<void>;
}

function sandboxModeFromEnv(): SandboxMode {
  const v = process.env.PYISOLATE_SANDBOX;
  if (v === undefined || v === "") return "auto";
  if (v === "off" || v === "auto" || v === "required") return v;
  throw new PyisolateError("USAGE", `PYISOLATE_SANDBOX is ${JSON.stringify(v)}; use "off", "auto" or "required".`);
}

/** The folders sandboxed packs may write (created, so that they can be bound). */
function hostDirs(baseDir: string, opts: HostOptions): { output: string; temp: string; user: string; input: string } {
  const output = resolve(opts.outputDir ?? join(baseDir, "output"));
  const temp = join(baseDir, "temp");
  const input = resolve(opts.inputDir ?? join(baseDir, "input"));
  // ComfyUI's folder_paths makes its default input folder when imported; packs list it at import time.
  for (const d of [output, temp, ...(opts.inputDir ? [] : [input])]) mkdirSync(d, { recursive: true });
  return { output, temp, user: join(baseDir, "user"), input };
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
  try {
    return await startHost(opts);
  } catch (e) {
    throw asPyisolateError(e, "starting the host");
  }
}

async function startHost(opts: HostOptions): Promise<Host> {
  await ensurePackageFiles();
  const logger = asLogger(opts.logger);
  const customNodes = resolve(opts.customNodes ?? "custom_nodes");
  const cacheDir = resolve(opts.cacheDir ?? ".pyisolate");
  const comfyDir = opts.comfyui ?? comfyuiFromEnv();
  const checkout = comfyDir !== undefined ? resolveComfyUI(comfyDir, opts.comfyuiArgs ?? comfyuiArgsFromEnv()) : null;
  const baseDir = resolve(opts.baseDir ?? checkout?.dir ?? ".");
  // ComfyUI's extra_model_paths.yaml files, read first: a broken one fails before anything starts.
  const defaultConfig = join(comfyInstallOf(customNodes) ?? baseDir, EXTRA_MODEL_PATHS_FILE);
  const extraPaths: ExtraModelPath[] = [defaultConfig, ...(opts.extraModelPaths ?? [])]
    .filter((f, i) => i > 0 || existsSync(f))
    .flatMap((f) => readExtraModelPaths(f));

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

  const envs = await EnvManager.create({ cacheDir, customNodes, ...(opts.python ? { python: opts.python } : {}), ...(checkout ? { comfyui: checkout.dir } : {}) });
  if (checkout) logger.info(`][ ${CORE_PACK_NAME} core mode: ComfyUI ${checkout.version ?? "(unknown version)"} at ${checkout.dir}, host Python ${envs.host.python}${checkout.args.length ? `, arguments ${checkout.args.join(" ")}` : ""}`);
  // A pack without a manifest runs on the host environment, where nothing installs its requirements.
  for (const p of packs) {
    const missing = p.kind === "shared" && p.layout === "package" ? unmetRequirements(p.path, envs.host.distributions) : [];
    if (missing.length > 0) {
      logger.pack(
        p.name,
        `warning: its requirements.txt lists ${missing.join(", ")}, which the host environment (${envs.host.python}) lacks. A pack without a manifest runs there and pyisolate installs nothing for it: run \`pyisolate init ${p.path}\` to give it a manifest (and its own environment), or install them into the host environment.`,
        "warn",
      );
    }
  }
  const builds = await envs.build(packs, {
    use: true,
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

  const segments = new SegmentRegistry({ hostId: newHostId() });
  await segments.claim();
  await segments.sweepDeadHosts();

  // Sandboxes: decided per pack before anything starts; a pack that cannot have the sandbox it
  // needs is skipped with the reason, never run without it.
  const sandboxMode = opts.sandbox ?? sandboxModeFromEnv();
  const dirs = hostDirs(baseDir, opts);
  const writable = [dirs.output, dirs.temp, dirs.user];
  const readable = [customNodes, cacheDir, dirs.input, ...(checkout ? [checkout.dir] : []), ...(opts.sharedModules ?? []).map((d) => resolve(d))];
  const backend = opts.backend ?? (process.env.PYISOLATE_RAY ? "ray" : "local");
  const hostPacks: HostPack[] = [];
  for (const p of [...usable]) {
    const m = p.manifest;
    const hp: HostPack = { name: p.name, path: p.path, kind: p.kind };
    if (p.kind === "isolated") {
      if (m?.env) hp.env = m.env;
      const memory = m?.memoryLimitBytes ?? (opts.memoryLimitMb ? opts.memoryLimitMb * 2 ** 20 : undefined);
      if (memory) hp.memoryLimitBytes = memory;
      const d = planSandbox(p.name, p.path, m ?? {}, sandboxMode, writable, readable);
      if (d.plan && backend === "ray") {
        d.error = new PyisolateError("SANDBOX", `Pack "${p.name}" cannot run: it runs sandboxed, and the Ray backend runs packs as Ray actors, without bubblewrap.`, { pack: p.name });
      }
      if (d.error) {
        usable.splice(usable.indexOf(p), 1);
        statuses.set(p.name, { ...statuses.get(p.name)!, error: d.error });
        logger.pack(p.name, `skipped: ${d.error.message}`, "error");
        continue;
      }
      if (d.warning) logger.pack(p.name, `warning: ${d.warning}`, "warn");
      if (d.plan) {
        hp.sandbox = d.plan;
        logger.pack(p.name, `- runs sandboxed (bubblewrap; network ${d.plan.network ? "allowed" : "off"})`, "debug");
      }
    }
    if (m?.ray) hp.ray = m.ray;
    const timeout = m?.nodeTimeoutMs ?? opts.nodeTimeoutMs;
    if (timeout) hp.nodeTimeoutMs = timeout;
    hostPacks.push(hp);
  }
  // ComfyUI's built-in nodes (core mode): a shared pack whose path is the checkout, loaded first.
  const builtIn = checkout ? corePack(checkout) : null;
  if (builtIn) {
    hostPacks.unshift({ name: builtIn.name, path: builtIn.path, kind: "shared", core: true });
    statuses.set(builtIn.name, { name: builtIn.name, kind: "core", source: "failed", nodes: 0, env: "shared" });
  }
  let sharedSandbox: SandboxPlan | undefined;
  if (sandboxMode === "required" && hostPacks.some((p) => p.kind === "shared")) {
    const shared = hostPacks.filter((p) => p.kind === "shared");
    const avail = sandboxAvailability();
    if (!avail.ok) {
      for (const p of shared) {
        const error = new PyisolateError("SANDBOX", `Pack "${p.name}" cannot run: this host requires a sandbox for every pack (sandbox: "required"), and ${avail.reason}.`, { pack: p.name });
        statuses.set(p.name, { ...statuses.get(p.name)!, error });
        logger.pack(p.name, `skipped: ${error.message}`, "error");
        hostPacks.splice(hostPacks.indexOf(p), 1);
        const u = usable.findIndex((x) => x.name === p.name);
        if (u >= 0) usable.splice(u, 1);
      }
    } else {
      sharedSandbox = { network: false, writable: [...shared.map((p) => p.path), ...writable], readable };
    }
  }
  const byName = new Map(usable.map((p) => [p.name, p]));
  if (builtIn) byName.set(builtIn.name, builtIn);
  let ray: RayCluster | undefined;
  if (backend === "ray") {
    const rayOpts = rayOptionsFrom({ address: "auto", ...(process.env.PYISOLATE_RAY ? { address: process.env.PYISOLATE_RAY } : {}), ...opts.ray }, envs.host.python)!;
    try {
      ray = await RayCluster.connect({ ...rayOpts, hostId: segments.hostId }, logger);
      const cluster = ray;
      // Segments on other Ray nodes are unlinked there, by the actors that wrote them.
      segments.unlinkRemote = (name, ref) => cluster.unlinkRemote(name, ref);
    } catch (e) {
      await segments.close();
      envs.releaseUse();
      throw e;
    }
  }
  const hostCore = new HostCore({
    ...(ray ? { ray } : {}),
    hostPython: envs.host.python,
    packs: hostPacks,
    resolvePython: async (name) => envs.envPython(byName.get(name)!),
    services: new ServiceRegistry(),
    logger,
    cacheDir,
    sysPath: (opts.sharedModules ?? []).map((d) => resolve(d)),
    ...(opts.spawn ? { spawn: opts.spawn } : {}),
    ...(checkout ? { options: { comfyui: { dir: checkout.dir, args: checkout.args, version: checkout.version } } } : {}),
    hostId: segments.hostId,
    segmentDir: segments.hostDir,
    onExitSync: () => segments.removeNow(),
    ...(sharedSandbox ? { sharedSandbox } : {}),
    ...(opts.healthCheck !== undefined ? { healthCheck: opts.healthCheck } : {}),
  });
  const api = installNodeApi(hostCore, {
    logger,
    folders: {
      baseDir,
      customNodesDir: customNodes,
      ...(opts.outputDir ? { outputDir: resolve(opts.outputDir) } : {}),
      ...(opts.inputDir ? { inputDir: resolve(opts.inputDir) } : {}),
      ...(opts.tempDir ? { tempDir: resolve(opts.tempDir) } : {}),
      ...(opts.userDir ? { userDir: resolve(opts.userDir) } : {}),
    },
  });
  applyComfyStartupPaths(api.folderPaths, extraPaths, (line) => logger.info(line));
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
    ...(opts.interruptGraceMs !== undefined ? { interruptGraceMs: opts.interruptGraceMs } : {}),
  });

  let loads: PackLoad[];
  try {
    loads = await registry.load();
  } catch (e) {
    await hostCore.close();
    await segments.close();
    envs.releaseUse();
    throw e;
  }
  for (const l of loads) {
    const s = statuses.get(l.pack)!;
    s.source = l.source;
    s.nodes = l.nodes;
    if (l.error) s.error = l.error;
    if (l.importError) s.importError = l.importError;
  }

  // Lanes: executors with their own output cache, made as runs ask for them, sharing the
  // processes' turns (one node at a time in each process).
  const gate = new ProcessGate();
  const lanes: PromptExecutor[] = [new PromptExecutor(registry, { gate })];
  const laneOf = (lane: number): PromptExecutor => {
    if (!Number.isInteger(lane) || lane < 0) throw new PyisolateError("USAGE", `The run's lane must be a whole number from 0, got ${String(lane)}.`);
    while (lanes.length <= lane) lanes.push(new PromptExecutor(registry, { gate }));
    return lanes[lane]!;
  };
  /** The runs in progress, by prompt id, with the view that takes what their nodes send. */
  const runs = new Map<string, { view: ClientView | undefined; executor: PromptExecutor }>();
  const promptOf = (e: NodeApiEvent): string | null => {
    if (e.promptId != null) return runs.has(e.promptId) ? e.promptId : null;
    return runs.size === 1 ? runs.keys().next().value! : null;
  };
  api.events.on((e) => {
    const id = promptOf(e);
    if (id !== null) runs.get(id)?.view?.node(e);
  });
  let closed = false;
  const toPrompt = (workflow: Prompt | UiWorkflow): Prompt =>
    isUiWorkflow(workflow) ? convertUiWorkflow(workflow, registry.objectInfo()) : (workflow as Prompt);

  return {
    packs: [...statuses.values()].sort((a, b) => a.name.localeCompare(b.name)),
    api,
    core: hostCore,
    comfyui: checkout,
    registry,
    python: envs.host,
    segments,
    nodes: () => registry.objectInfo(),
    toPrompt,
    get running() {
      return runs.size > 0;
    },
    get runningPrompts() {
      return [...runs.keys()];
    },
    promptOf,
    cacheScore: (prompt, lane = 0) => (lane < lanes.length ? laneOf(lane).cacheScore(toPrompt(prompt)) : 0),
    async run(prompt, runOpts = {}) {
      if (closed) throw new PyisolateError("USAGE", "This host is closed; create a new one with createHost().");
      const executor = laneOf(runOpts.lane ?? 0);
      const promptId = runOpts.promptId || crypto.randomUUID();
      const clientId = runOpts.clientId ?? null;
      const view = runOpts.onEvent ? new ClientView(runOpts.onEvent) : undefined;
      try {
        return await executor.run(toPrompt(prompt), {
          promptId,
          ...(runOpts.extraPngInfo !== undefined ? { extraPngInfo: runOpts.extraPngInfo } : {}),
          ...(view ? { onEvent: view.executor } : {}),
          // After the runs queued before it on its lane: from here on what its nodes send is its own.
          onBegin: () => {
            api.promptServer.beginPrompt(promptId, clientId);
            runs.set(promptId, { view, executor });
          },
          onNode: (r) => {
            view?.finished(r.id, r.status === "executed");
            runOpts.onNode?.(r);
          },
        });
      } catch (e) {
        throw asPyisolateError(e, "running the prompt");
      } finally {
        if (runs.get(promptId)?.executor === executor) {
          runs.delete(promptId);
          api.promptServer.endPrompt(promptId);
        }
      }
    },
    validate: async (prompt) => validatePrompt(structuredClone(toPrompt(prompt)), registry),
    interrupt(promptId) {
      if (promptId === undefined) {
        let any = false;
        for (const ex of lanes) {
          if (ex.runningPrompt === null) continue;
          ex.interrupt();
          any = true;
        }
        return any;
      }
      const ex = runs.get(promptId)?.executor;
      if (!ex || ex.runningPrompt !== promptId) return false;
      ex.interrupt();
      return true;
    },
    free({ unloadModels = false, freeMemory = false }) {
      if (unloadModels || freeMemory) api.modelManagement.unloadAllModels();
      if (freeMemory) {
        // A lane that runs a prompt drops its cache when that run ends.
        for (const ex of lanes) ex.clearCache();
        api.modelManagement.softEmptyCache(true);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const ex of lanes) ex.clearCache();
      await hostCore.close();
      await segments.close();
      envs.releaseUse();
    },
  };
}

