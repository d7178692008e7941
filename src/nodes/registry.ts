/**
 * `NodeRegistry`: every node class the host can run, and which process runs it.
 *
 * Each Python process reports its packs' nodes in its `ready` info (ComfyUI's
 * `/object_info` entries, plus flags); the registry stores them in the metadata cache, so a
 * later start with unchanged packs registers every node from the cache without starting any
 * process (`][ <Pack> loaded from cache`); the process then starts just in time, on the
 * first execution. Class names defined by two packs keep the first pack's (packs load in
 * name order), as in ComfyUI, and the clash is reported.
 *
 * `execute` runs a node by class name in whichever process owns it, with ComfyUI's input
 * representation (every input a list of values; see `nodes_exec.py`).
 * @module
 */
import { PyisolateError } from "../errors.ts";
import { plainNumbers } from "../protocol/py_types.ts";
import type { HiddenValues, NodeBackend, NodeInfo, NodeOwner, NodeRunResult } from "../executor/types.ts";
import { SHARED_PROCESS_NAME, type HostCore } from "../process/host_core.ts";
import { asLogger, type Logger, type LoggerLike } from "../log.ts";
import type { ReadyInfo, ReadyPack } from "../protocol/messages.ts";
import type { MetadataCache } from "./metadata_cache.ts";
import type { SegmentRegistry } from "../values/segments.ts";
import { ModelManagement } from "../node_api/model_management.ts";
import { RunGuard } from "./run_guard.ts";

/** The service every Python process serves its nodes under. */
export const NODES_SERVICE = "$nodes";

/** What the executor needs to know about a class beyond its `/object_info` entry. */
export interface NodeFlags {
  api: "v1" | "v3";
  /** Defines `IS_CHANGED` (V1) or `fingerprint_inputs` (V3). */
  is_changed: boolean;
  /** Defines `VALIDATE_INPUTS` (V1) or `validate_inputs` (V3). */
  validate_inputs: boolean;
  input_is_list: boolean;
  not_idempotent: boolean;
  is_async: boolean;
}

/** An HTTP route a pack registered at import (`@PromptServer.instance.routes.get(...)`, `app.router.add_get(...)`). */
export interface PackRoute {
  /** `GET`, `POST`, …, or `*` for every method. */
  method: string;
  /** aiohttp's pattern: `/x/{name}`, `/x/{name:\d+}`. */
  path: string;
  /** Also served under `/api` (routes of `PromptServer.instance.routes`, as in ComfyUI). */
  api: boolean;
}

/** A folder a pack serves under a URL prefix (`routes.static(prefix, path)`). */
export interface PackStaticRoute {
  prefix: string;
  /** Absolute path of the folder. */
  path: string;
}

/** A pack's node metadata: what its process reports, and what the metadata cache stores. */
export interface PackNodes {
  /** `/object_info` entries by class name. */
  nodes: Record<string, NodeInfo>;
  node_flags: Record<string, NodeFlags>;
  /** Absolute path of the pack's `WEB_DIRECTORY`, or null. */
  web_directory: string | null;
  /** Nodes the process could not describe, with why. */
  node_errors?: Record<string, string>;
  /** The routes it registered at import. */
  routes?: PackRoute[];
  /** The folders it serves. */
  static_routes?: PackStaticRoute[];
  /** `route_manifest.json` routes whose handler the process could not find, with why. */
  route_errors?: Record<string, string>;
}

/** A registered class. */
export interface RegisteredNode {
  classType: string;
  info: NodeInfo;
  flags: NodeFlags;
  owner: NodeOwner;
}

/** A class name two packs define; the first pack's class is kept. */
export interface DuplicateNode {
  classType: string;
  kept: string;
  ignored: string;
}

/** Why a pack failed to import, as its process reported it (the metadata cache keeps it too). */
export interface ImportFailure {
  /** The exception's qualified type (`SyntaxError`, `ModuleNotFoundError`). */
  type: string;
  message: string;
  /** The pack's file (absolute) where it happened, when known. */
  file: string | null;
  line: number | null;
  /** The Python traceback, without the import machinery's frames. */
  traceback: string;
  /** The Python version of the process that tried (`"3.11.7"`). */
  python: string | null;
  /** What to do about it, when the runtime knows (a newer Python, `--comfyui DIR`, …). */
  hint: string | null;
}

/** What {@link NodeRegistry.load} did for one pack. */
export interface PackLoad {
  pack: string;
  source: "cache" | "process" | "failed";
  nodes: number;
  /** Why the pack's nodes could not be registered. */
  error?: PyisolateError;
  /** Set when the pack itself failed to import (its process ran, the import raised). */
  importError?: ImportFailure;
  /** The import failure came from the metadata cache: no process was started for it. */
  cachedFailure?: boolean;
}

/** What the metadata cache keeps for a pack that failed to import. */
interface CachedFailure {
  import_failed: ImportFailure;
  /** The pack's environment state when it failed; another state retries the import. */
  retry: string;
}

function isCachedFailure(x: unknown): x is CachedFailure {
  const o = x as CachedFailure | null;
  return !!o && typeof o === "object" && !!o.import_failed && typeof o.import_failed === "object";
}

/** The import failure a metadata-cache entry remembers, or null (a pack's nodes, or nothing). */
export function cachedImportFailure(data: unknown): ImportFailure | null {
  return isCachedFailure(data) ? data.import_failed : null;
}

/** The import failure in a process's entry for a pack. */
export function importFailureOf(entry: ReadyPack, python: string | null): ImportFailure {
  const e = (entry.error ?? {}) as unknown as Record<string, unknown>;
  const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);
  return {
    type: str(e.type) ?? "Exception",
    message: typeof e.message === "string" ? e.message : "",
    file: str(e.file),
    line: typeof e.line === "number" ? e.line : null,
    traceback: typeof e.traceback === "string" ? e.traceback : "",
    python,
    hint: str(e.hint),
  };
}

/** `Pack "X" failed to import: SyntaxError: … (nodes_dataset.py, line 57; Python 3.11.7). <hint>` */
export function importFailureMessage(pack: string, f: ImportFailure, cached = false): string {
  const where = [f.file ? `${f.file}${f.line !== null ? `, line ${f.line}` : ""}` : null, f.python ? `Python ${f.python}` : null].filter(Boolean).join("; ");
  const first = f.message.split("\n")[0] ?? "";
  return (
    `Pack "${pack}" failed to import: ${f.type}${first ? `: ${first}` : ""}${where ? ` (${where})` : ""}.` +
    (f.hint ? ` ${f.hint}` : "") +
    ` Its nodes are not registered; fix the error and run again` +
    (cached ? " (remembered from an earlier start: it is not retried until the pack's files or its environment change)." : ".")
  );
}

/** Options of {@link NodeRegistry}. */
export interface NodeRegistryOptions {
  /** The host's processes. */
  core: HostCore;
  /** The metadata cache; without it every load starts every process. */
  cache?: MetadataCache;
  /** A pack's cache key (`cache.key(pack, envs.fingerprint(pack))`); `undefined` skips the cache for it. */
  cacheKey?: (pack: string) => string | undefined;
  /**
   * The state of a pack's environment (e.g. its site-packages' mtimes): a failed import is
   * remembered with it, and retried when it differs. @default "" (retried only when the key changes)
   */
  retryStamp?: (pack: string) => string;
  /** The host's tensor segments: {@link NodeRegistry.retain} / `release` count references in it. */
  segments?: SegmentRegistry;
  /** Interrupts go through it. @default the core's `ModelManagement` service (one bound to `core` when it has none) */
  modelManagement?: ModelManagement;
  /** @default the shared `log` */
  logger?: Logger | LoggerLike;
  /** How long a node has to stop after an interrupt or its time limit before its process is killed. @default DEFAULT_INTERRUPT_GRACE_MS */
  interruptGraceMs?: number;
}

function isPackNodes(x: unknown): x is PackNodes {
  const o = x as PackNodes | null;
  return !!o && typeof o === "object" && !!o.nodes && typeof o.nodes === "object" && !!o.node_flags && typeof o.node_flags === "object";
}

/** The node metadata part of a process's ready entry for one pack. */
export function packNodesOf(entry: ReadyPack): PackNodes {
  // Schemas are JSON data (they go into the metadata cache): no float marks in them.
  entry = plainNumbers(entry);
  return {
    nodes: (entry.nodes as Record<string, NodeInfo> | undefined) ?? {},
    node_flags: (entry.node_flags as Record<string, NodeFlags> | undefined) ?? {},
    web_directory: typeof entry.web_directory === "string" ? entry.web_directory : null,
    node_errors: (entry.node_errors as Record<string, string> | undefined) ?? {},
    routes: Array.isArray(entry.routes) ? (entry.routes as PackRoute[]) : [],
    static_routes: Array.isArray(entry.static_routes) ? (entry.static_routes as PackStaticRoute[]) : [],
    route_errors: (entry.route_errors as Record<string, string> | undefined) ?? {},
  };
}

const DEFAULT_FLAGS: NodeFlags = { api: "v1", is_changed: false, validate_inputs: false, input_is_list: false, not_idempotent: false, is_async: false };

/**
 * The host's node classes.
 *
 * @example
 * ```ts
 * const registry = new NodeRegistry({ core, cache, cacheKey: (p) => cache.key(packs[p], envs.fingerprint(packs[p])) });
 * await registry.load();                       // cache hits start nothing
 * const out = await registry.execute("MyNode", { text: ["hi"] }, { prompt: {}, unique_id: "1", prompt_id: "p" }, "1");
 * out.outputs[0]; // the first output's list of values
 * ```
 */
export class NodeRegistry implements NodeBackend {
  readonly core: HostCore;
  readonly modelManagement: ModelManagement;
  #opts: NodeRegistryOptions;
  #log: Logger;
  #nodes = new Map<string, RegisteredNode>();
  #packs = new Map<string, PackNodes>();
  #duplicates: DuplicateNode[] = [];
  #promptId: string | undefined;
  #interruptedPrompt: string | undefined;
  readonly #guard: RunGuard;
  // Pairs of processes an object crossed between in this prompt (the hint is said once).
  #crossings = new Set<string>();
  /** The prompts an executor runs now ({@link NodeRegistry.beginPrompt}), each with its crossings. */
  #active = new Map<string, Set<string>>();

  constructor(opts: NodeRegistryOptions) {
    this.core = opts.core;
    this.#opts = opts;
    this.#log = asLogger(opts.logger);
    this.modelManagement =
      opts.modelManagement ??
      (opts.core.services.has("ModelManagement") ? (opts.core.services.instance("ModelManagement") as ModelManagement) : new ModelManagement(opts.core));
    this.#guard = new RunGuard({
      ...(opts.interruptGraceMs !== undefined ? { graceMs: opts.interruptGraceMs } : {}),
      interrupting: () => this.modelManagement.processingInterrupted(),
    });
  }

  // --- registering -------------------------------------------------------------------------------

  /**
   * Registers every pack's nodes, in pack-name order: from the metadata cache when it has an
   * entry under the pack's key (no process starts), otherwise by starting the pack's process
   * (the shared process once for every shared pack) and caching what it reports. A pack that
   * fails to load is reported and skipped; the others still register.
   */
  async load(): Promise<PackLoad[]> {
    // ComfyUI's built-in nodes first (their classes win, as in ComfyUI), then packs by name.
    const packs = [...this.core.packs].sort((a, b) => (a.core !== b.core ? (a.core ? -1 : 1) : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const data = new Map<string, { nodes: PackNodes; source: "cache" | "process" }>();
    const failed = new Map<string, PyisolateError>();
    const importErrors = new Map<string, { failure: ImportFailure; cached: boolean }>();
    const stamp = (name: string) => this.#opts.retryStamp?.(name) ?? "";
    const keys = new Map<string, string | undefined>();
    const misses: string[] = [];
    for (const pack of packs) {
      const key = this.#opts.cacheKey?.(pack.name);
      keys.set(pack.name, key);
      const cached = key !== undefined ? this.#opts.cache?.get<unknown>(pack.name, key) : null;
      if (isPackNodes(cached)) {
        data.set(pack.name, { nodes: cached, source: "cache" });
        this.#log.pack(pack.name, "loaded from cache");
      } else if (isCachedFailure(cached) && cached.retry === stamp(pack.name)) {
        importErrors.set(pack.name, { failure: cached.import_failed, cached: true });
        failed.set(pack.name, new PyisolateError("PROCESS_FAILED", importFailureMessage(pack.name, cached.import_failed, true), { pack: pack.name, ...(cached.import_failed.file ? { file: cached.import_failed.file } : {}) }));
      } else {
        misses.push(pack.name);
      }
    }
    const sharedMisses = misses.filter((name) => this.core.packs.find((p) => p.name === name)?.kind === "shared");
    const starts: Array<Promise<void>> = [];
    const collect = async (names: string[], start: () => Promise<ReadyInfo>, processName: string): Promise<void> => {
      let info: ReadyInfo;
      try {
        info = await start();
      } catch (e) {
        const err = e instanceof PyisolateError ? e : new PyisolateError("PROCESS_FAILED", `The ${processName} process could not start: ${String(e)}`);
        for (const n of names) failed.set(n, err);
        return;
      }
      for (const name of names) {
        const entry = info.packs.find((p) => p.name === name);
        if (!entry) {
          failed.set(name, new PyisolateError("PROCESS_FAILED", `Process "${processName}" did not report pack "${name}"; its nodes are not registered.`, { pack: name }));
        } else if (!entry.ok) {
          const failure = importFailureOf(entry, typeof info.python === "string" ? info.python : null);
          importErrors.set(name, { failure, cached: false });
          failed.set(name, new PyisolateError("PROCESS_FAILED", importFailureMessage(name, failure), { pack: name, ...(failure.file ? { file: failure.file } : {}) }));
          const key = keys.get(name);
          if (key !== undefined && this.#opts.cache) await this.#opts.cache.put(name, key, { import_failed: failure, retry: stamp(name) } satisfies CachedFailure);
        } else {
          const nodes = packNodesOf(entry);
          data.set(name, { nodes, source: "process" });
          const key = keys.get(name);
          if (key !== undefined && this.#opts.cache) await this.#opts.cache.put(name, key, nodes);
        }
      }
    };
    for (const name of misses) {
      if (sharedMisses.includes(name)) continue;
      starts.push(collect([name], () => this.core.processFor(name).start("metadata"), name));
    }
    if (sharedMisses.length > 0) starts.push(collect(sharedMisses, () => this.core.shared.start("metadata"), SHARED_PROCESS_NAME));
    await Promise.all(starts);

    const report: PackLoad[] = [];
    for (const pack of packs) {
      const got = data.get(pack.name);
      if (got) {
        report.push({ pack: pack.name, source: got.source, nodes: this.registerPack(pack.name, got.nodes) });
      } else {
        const error = failed.get(pack.name) ?? new PyisolateError("PROCESS_FAILED", `Pack "${pack.name}" reported no nodes.`, { pack: pack.name });
        this.#log.pack(pack.name, `- ${error.message}`, "error");
        const imp = importErrors.get(pack.name);
        report.push({ pack: pack.name, source: "failed", nodes: 0, error, ...(imp ? { importError: imp.failure, cachedFailure: imp.cached } : {}) });
      }
    }
    return report;
  }

  /**
   * Registers one pack's nodes (from a ready entry or the cache); returns how many were new.
   * A class another pack already registered is skipped and reported.
   * @throws {PyisolateError} `NOT_FOUND` for a pack the host core does not know.
   */
  registerPack(pack: string, data: PackNodes): number {
    const hostPack = this.core.packs.find((p) => p.name === pack);
    if (!hostPack) throw new PyisolateError("NOT_FOUND", `No pack is named "${pack}"; known packs: ${this.core.packs.map((p) => p.name).join(", ") || "(none)"}.`, { pack });
    this.#packs.set(pack, data);
    const isolated = hostPack.kind === "isolated";
    const owner: NodeOwner = { pack, process: isolated ? pack : SHARED_PROCESS_NAME, isolated };
    let added = 0;
    for (const [classType, info] of Object.entries(data.nodes)) {
      const existing = this.#nodes.get(classType);
      if (existing) {
        if (existing.owner.pack !== pack) {
          this.#duplicates.push({ classType, kept: existing.owner.pack, ignored: pack });
          this.#log.pack(pack, `- node class ${classType} is already defined by ${existing.owner.pack}; keeping that one`, "warn");
        }
        continue;
      }
      this.#nodes.set(classType, { classType, info, flags: data.node_flags[classType] ?? DEFAULT_FLAGS, owner });
      added++;
    }
    for (const [classType, why] of Object.entries(data.node_errors ?? {})) {
      if (!this.#nodes.has(classType)) this.#log.pack(pack, `- node ${classType} was not registered: ${why.split("\n")[0]}`, "warn");
    }
    for (const [route, why] of Object.entries(data.route_errors ?? {})) this.#log.pack(pack, `- route ${route}: ${why}`, "warn");
    return added;
  }

  /** Registers the nodes of every pack a process reports in its ready info. */
  registerReady(info: ReadyInfo): number {
    let added = 0;
    for (const entry of info.packs) if (entry.ok) added += this.registerPack(entry.name, packNodesOf(entry));
    return added;
  }

  // --- queries -------------------------------------------------------------------------------

  /** Every registered class's `/object_info` entry, by class name. */
  objectInfo(): Record<string, NodeInfo> {
    const out: Record<string, NodeInfo> = {};
    for (const [name, node] of this.#nodes) out[name] = node.info;
    return out;
  }

  /** Every registered class. */
  nodes(): RegisteredNode[] {
    return [...this.#nodes.values()];
  }

  /** Class names two packs define (the first pack's class is kept). */
  get duplicates(): readonly DuplicateNode[] {
    return this.#duplicates;
  }

  /** The routes and served folders each pack registered at import, for packs that have any. */
  packRoutes(): Record<string, { routes: PackRoute[]; static_routes: PackStaticRoute[] }> {
    const out: Record<string, { routes: PackRoute[]; static_routes: PackStaticRoute[] }> = {};
    for (const [pack, data] of this.#packs) {
      const routes = data.routes ?? [];
      const statics = data.static_routes ?? [];
      if (routes.length > 0 || statics.length > 0) out[pack] = { routes, static_routes: statics };
    }
    return out;
  }

  /** Each pack's web directory (absolute), for packs that have one. */
  webDirectories(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [pack, data] of this.#packs) if (data.web_directory) out[pack] = data.web_directory;
    return out;
  }

  info(classType: string): NodeInfo | undefined {
    return this.#nodes.get(classType)?.info;
  }

  owner(classType: string): NodeOwner | undefined {
    return this.#nodes.get(classType)?.owner;
  }

  /** The class's flags (API style, hooks), if registered. */
  flags(classType: string): NodeFlags | undefined {
    return this.#nodes.get(classType)?.flags;
  }

  hasIsChanged(classType: string): boolean {
    return this.#nodes.get(classType)?.flags.is_changed ?? false;
  }

  hasValidateInputs(classType: string): boolean {
    return this.#nodes.get(classType)?.flags.validate_inputs ?? false;
  }

  // --- running -------------------------------------------------------------------------------

  #node(classType: string): RegisteredNode {
    const node = this.#nodes.get(classType);
    if (!node) {
      throw new PyisolateError("NOT_FOUND", `No loaded pack defines node class "${classType}"; check the workflow's class_type or install the pack that provides it.`, { node: classType });
    }
    return node;
  }

  /** A node's call to its process, watched: its pack's time limit, and the interrupt's escalation. */
  #call(node: RegisteredNode, method: string, args: unknown[], nodeId: string | null | undefined, promptId?: string): Promise<unknown> {
    const proc = this.core.processFor(node.owner.pack);
    const timeoutMs = this.core.packs.find((p) => p.name === node.owner.pack)?.nodeTimeoutMs ?? 0;
    const guarded = { proc, pack: node.owner.pack, classType: node.classType, nodeId: nodeId ?? "?", timeoutMs, ...(promptId !== undefined ? { promptId } : {}) };
    return this.#guard.run(guarded, () => proc.call(NODES_SERVICE, method, args, { timeoutMs: 0 }));
  }

  /**
   * An executor begins running prompt `promptId` (prompts may run at the same time, each in
   * its own executor). When no other prompt runs, a pending interrupt of an earlier one is
   * cleared first, as in ComfyUI.
   */
  beginPrompt(promptId: string): void {
    if (this.#active.size === 0) this.#beforeRun(promptId);
    this.#active.set(promptId, new Set());
  }

  /** The executor's run of `promptId` ended. */
  endPrompt(promptId: string): void {
    this.#active.delete(promptId);
  }

  /** The prompts executors run now (begun, not ended), in the order they began. */
  get activePrompts(): string[] {
    return [...this.#active.keys()];
  }

  #beforeRun(promptId: string | undefined): void {
    // A run an executor announced was set up by beginPrompt.
    if (promptId !== undefined && this.#active.has(promptId)) return;
    // A new prompt starts without the previous prompt's pending interrupt, as in ComfyUI.
    if (promptId !== undefined && promptId !== this.#promptId) {
      this.#promptId = promptId;
      this.#guard.clearInterrupt();
      this.#crossings.clear();
      if (this.modelManagement.processingInterrupted() && this.#interruptedPrompt !== promptId) this.modelManagement.interrupt(false);
    }
  }

  /**
   * Runs a node in the process that owns its class (starting it when needed). `inputs` maps
   * each input name to its list of values; each output comes back as a list too.
   * @throws {PyisolateError} `NOT_FOUND` for an unknown class; `RemoteError` when the node raised
   * (`pythonType` ends in `InterruptProcessingException` when it was interrupted).
   */
  async execute(classType: string, inputs: Record<string, unknown[]>, hidden: Partial<HiddenValues> = {}, nodeId?: string): Promise<NodeRunResult> {
    const node = this.#node(classType);
    this.#beforeRun(hidden.prompt_id);
    const id = nodeId ?? hidden.unique_id ?? null;
    this.core.handles.assertUsable(inputs);
    // Said once per prompt, per pair of processes.
    const crossings = (hidden.prompt_id !== undefined ? this.#active.get(hidden.prompt_id) : undefined) ?? this.#crossings;
    for (const note of this.core.handles.crossingNotes(inputs, node.owner.process, String(id ?? "?"), classType, crossings)) this.#log.pack(node.owner.pack, note);
    const r = (await this.#call(node, "execute", [classType, inputs, hidden, id], id, hidden.prompt_id)) as { result?: unknown[][]; ui?: Record<string, unknown> | null };
    const outputs = Array.isArray(r?.result) ? r.result : [];
    this.core.handles.annotate(outputs, { nodeId: String(id ?? "?"), classType, pack: node.owner.pack });
    return { outputs, ui: r?.ui ?? null };
  }

  /** Runs a node once with plain values (each wrapped as a one-item list); returns each output's first value. */
  async run(classType: string, values: Record<string, unknown> = {}, hidden: Partial<HiddenValues> = {}, nodeId?: string): Promise<{ outputs: unknown[]; ui: Record<string, unknown> | null }> {
    const inputs: Record<string, unknown[]> = {};
    for (const [k, v] of Object.entries(values)) inputs[k] = [v];
    const r = await this.execute(classType, inputs, hidden, nodeId);
    return { outputs: r.outputs.map((list) => list[0]), ui: r.ui };
  }

  /** The node's `IS_CHANGED` / `fingerprint_inputs` values (one per list index), or null when it has none. */
  async isChanged(classType: string, inputs: Record<string, unknown[]>, hidden: Partial<HiddenValues> = {}, nodeId?: string): Promise<unknown> {
    const node = this.#node(classType);
    if (!node.flags.is_changed) return null;
    const id = nodeId ?? hidden.unique_id ?? null;
    return this.#call(node, "is_changed", [classType, inputs, hidden, id], id, hidden.prompt_id);
  }

  /** The node's own input validation: `true`, or the reason it refuses. */
  async validateInputs(classType: string, inputs: Record<string, unknown[]>, nodeId?: string, inputTypes?: Record<string, unknown>): Promise<true | string> {
    const node = this.#node(classType);
    if (!node.flags.validate_inputs) return true;
    const r = await this.#call(node, "validate_inputs", [classType, inputs, nodeId ?? null, inputTypes ?? null], nodeId);
    return r === true ? true : String(r);
  }

  /** Keeps the tensor segments and remote objects a value refers to alive (the executor's output cache holds it). */
  retain(value: unknown): void {
    this.#opts.segments?.retain(value);
    this.core.handles.retain(value);
  }

  /** Lets go of what {@link NodeRegistry.retain} kept; segments nobody holds are unlinked, objects nobody holds dropped. */
  release(value: unknown): void {
    this.#opts.segments?.release(value);
    this.core.handles.release(value);
  }

  /** Whether a cached value can still be used: false when an object it holds is gone (its process exited), or a tensor of another Ray node whose actor is gone. */
  usable(value: unknown): boolean {
    return !this.core.handles.stale(value) && !this.core.ray?.holdsLostTensor(value);
  }

  /**
   * Interrupts a prompt: its running nodes stop at their next check; a node still running
   * after the grace period has its process killed (it starts again on the next call).
   *
   * With the id of a prompt an executor runs ({@link NodeRegistry.beginPrompt}), only that
   * prompt's nodes are told — the processes that run one of them get the interrupt flag,
   * and lose it when that node ends —, so that prompts running beside it go on. Without
   * one (or for a prompt no executor announced), every live process gets the flag, as in
   * ComfyUI, until the next prompt starts.
   */
  interrupt(promptId?: string): void {
    if (promptId !== undefined && this.#active.has(promptId)) {
      this.#guard.interruptPrompt(promptId);
      return;
    }
    this.#interruptedPrompt = this.#promptId;
    this.modelManagement.interrupt(true);
    this.#guard.interrupt();
  }

  /** Clears a pending interrupt everywhere (a new prompt starts clean). */
  resetInterrupt(): void {
    this.#interruptedPrompt = undefined;
    this.modelManagement.interrupt(false);
  }
}
