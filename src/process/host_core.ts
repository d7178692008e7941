/**
 * `HostCore`: the host's set of Python processes and the router between them. Each isolated
 * pack gets its own {@link PythonProcess}; the shared packs load together into one shared
 * process on the host's Python (also started, when first needed, for ProxiedSingletons).
 * Every call a child makes to the host is routed by service name: registered host services
 * answer on this thread, `$singleton` goes to the shared process, `$obj` (what a proxy does
 * with a remote object handle) to the process that owns the handle, whose holders
 * {@link HostCore.handles} counts. On host exit the children are killed synchronously (and
 * each child also exits by itself when its socket closes).
 * @module
 */
import process from "node:process";
import { PyisolateError } from "../errors.ts";
import { asLogger, type Logger, type LoggerLike } from "../log.ts";
import { dirname, join, resolve } from "node:path";
import { pythonRoot } from "../paths.ts";
import { PythonProcess, type HealthCheckOptions } from "./python_process.ts";
import { bwrapArgs, type SandboxPlan } from "./sandbox.ts";
import { defaultShmDir } from "../values/segments.ts";
import type { BrokerMode } from "./broker_link.ts";
import { defaultRegistry, type ServiceRegistry } from "../rpc/services.ts";
import { exposeServices } from "../rpc/thread_services.ts";
import type { MessageEndpoint } from "../runtime/contract.ts";
import type { CallOptions, IncomingCall } from "../rpc/endpoint.ts";
import type { BrokerExit } from "../../workers/broker_core.ts";
import { HANDLE_SERVICE, RemoteHandle } from "../values/handles.ts";
import { HandleTable } from "../values/handle_table.ts";
import { TemplatePool, type SpawnMode } from "./template.ts";
import type { RayCluster, RayResources } from "./ray.ts";

/** Service that reaches Python ProxiedSingletons, which live in the shared process. */
export const SINGLETON_SERVICE = "$singleton";

/** Name of the shared process in logs and errors. */
export const SHARED_PROCESS_NAME = "shared";

/** Hosts whose children the exit hooks kill; one set of process listeners serves them all. */
const liveCores = new Set<HostCore>();

const hooks = {
  onExit(): void {
    for (const core of liveCores) {
      core.killAllNow();
      core.cleanupNow();
    }
  },
  onSignal(signal: NodeJS.Signals): void {
    // Someone else handles the signal (a CLI that interrupts the prompt first): it decides, and
    // the exit hook still kills the children when the program exits.
    if (process.listenerCount(signal) > 1) return;
    // Otherwise keep the default behaviour: the children die, then the host.
    hooks.onExit();
    hooks.remove();
    process.kill(process.pid, signal);
  },
  install(): void {
    process.on("exit", hooks.onExit);
    process.on("SIGINT", hooks.onSignal);
    process.on("SIGTERM", hooks.onSignal);
  },
  remove(): void {
    process.off("exit", hooks.onExit);
    process.off("SIGINT", hooks.onSignal);
    process.off("SIGTERM", hooks.onSignal);
  },
};

/** A pack the host runs. */
export interface HostPack {
  name: string;
  /** Absolute path of the pack directory. */
  path: string;
  /** `isolated`: its own process and environment; `shared`: the shared process on the host's Python. */
  kind: "isolated" | "shared";
  /** Environment variables for an isolated pack's own process (its manifest's `env`). */
  env?: Record<string, string>;
  /** ComfyUI's built-in nodes (core mode, a shared pack whose `path` is the checkout): loaded first. */
  core?: boolean;
  /** A time limit for each of its nodes (ms; `0` or absent: none). */
  nodeTimeoutMs?: number;
  /** Kill its process when it uses more memory than this (bytes; isolated packs). */
  memoryLimitBytes?: number;
  /** Run its process under this sandbox (isolated packs; the shared process has `sharedSandbox`). */
  sandbox?: SandboxPlan;
  /** What its Ray actor asks of its node (with the Ray backend). */
  ray?: RayResources;
}

/** Options of {@link HostCore}. */
export interface HostCoreOptions {
  /** The Python of an isolated pack's environment (built on demand). @default `hostPython` */
  resolvePython?: (packName: string) => Promise<string>;
  /** The host environment's Python: runs the shared process. */
  hostPython: string;
  packs: HostPack[];
  /** Host services children may call. @default the default registry of `@service` */
  services?: ServiceRegistry;
  /** @default the shared `log` */
  logger?: Logger | LoggerLike;
  /** Passed to every process as `config.options.cache_dir`. */
  cacheDir?: string;
  /** Extra `config.options` for every process. */
  options?: Record<string, unknown>;
  /** Entries every process prepends to `sys.path` (e.g. where shared ProxiedSingleton modules live). @default [] */
  sysPath?: string[];
  /** Extra environment variables for every process. */
  env?: Record<string, string>;
  /** Default call timeout (ms, `0` for none). @default DEFAULT_CALL_TIMEOUT_MS */
  defaultTimeoutMs?: number;
  /** @default DEFAULT_START_TIMEOUT_MS */
  startTimeoutMs?: number;
  /** @default `"inline"` (or `PYISOLATE_BROKER`) */
  broker?: BrokerMode;
  /** The Ray backend: isolated packs run as actors of this cluster (the shared process stays on this machine). */
  ray?: RayCluster;
  /** Kill the children when the host exits, or gets SIGINT/SIGTERM that nothing else handles. @default true */
  exitHooks?: boolean;
  /**
   * How processes start: `fork` from a template process per environment class (torch already
   * imported; plain spawn where that is not safe, with the reason logged), or `spawn`.
   * @default `PYISOLATE_SPAWN` from the environment, else `"fork"`
   */
  spawn?: SpawnMode;
  /** The id the children's segment names carry (see `SegmentRegistry`). @default this process's pid */
  hostId?: string;
  /** Runs synchronously when the host exits or gets SIGINT/SIGTERM, after the children are killed (the segment folder's removal). */
  onExitSync?: () => void;
  /** The host's segment folder, which sandboxed processes may write. @default `/dev/shm/pyisolate-<hostId>` */
  segmentDir?: string;
  /** Run the shared process sandboxed (the host's sandbox mode `required`). */
  sharedSandbox?: SandboxPlan;
  /** The health check of every running process. @default on (see `PythonProcess`) */
  healthCheck?: HealthCheckOptions | false;
}

/**
 * The host's processes and call router.
 *
 * @example
 * ```ts
 * const core = new HostCore({ hostPython: ".venv/bin/python", packs, resolvePython: (p) => envs.python(p) });
 * const info = await core.processFor("MyPack").start();
 * await core.close();
 * ```
 */
export class HostCore {
  readonly services: ServiceRegistry;
  /** Who holds each remote object handle (objects of one process used from others). */
  readonly handles: HandleTable;
  /** The template processes processes fork from (`undefined` with `spawn: "spawn"`). */
  readonly templates: TemplatePool | undefined;
  #opts: HostCoreOptions;
  #log: Logger;
  #packs = new Map<string, HostPack>();
  #isolated = new Map<string, PythonProcess>();
  #shared: PythonProcess | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #unhook: (() => void) | undefined;

  constructor(opts: HostCoreOptions) {
    this.#opts = opts;
    this.#log = asLogger(opts.logger);
    this.services = opts.services ?? defaultRegistry;
    this.handles = new HandleTable({ release: (owner, pairs) => void this.#processNamed(owner)?.event(HANDLE_SERVICE, "release", [pairs]) });
    const mode = opts.spawn ?? (process.env?.PYISOLATE_SPAWN === "spawn" ? "spawn" : "fork");
    this.templates = mode === "fork" ? new TemplatePool({ hostPython: opts.hostPython, ...(opts.env ? { env: opts.env } : {}), logger: this.#log }) : undefined;
    for (const p of opts.packs) {
      if (this.#packs.has(p.name)) throw new PyisolateError("USAGE", `Two packs are named "${p.name}"; pack names must be unique.`, { pack: p.name });
      this.#packs.set(p.name, p);
    }
    if (opts.exitHooks !== false) this.#unhook = this.#installExitHooks();
  }

  /** The packs, by name. */
  get packs(): HostPack[] {
    return [...this.#packs.values()];
  }

  /**
   * The process that runs `pack` (created, not started: it starts on its first call).
   * @throws {PyisolateError} `NOT_FOUND` for an unknown pack.
   */
  processFor(pack: string): PythonProcess {
    const p = this.#packs.get(pack);
    if (!p) {
      throw new PyisolateError("NOT_FOUND", `No pack is named "${pack}"; known packs: ${[...this.#packs.keys()].join(", ") || "(none)"}.`, { pack });
    }
    if (p.kind === "shared") return this.shared;
    let proc = this.#isolated.get(pack);
    if (!proc) {
      this.#assertOpen();
      const resolve = this.#opts.resolvePython;
      proc = this.#makeProcess(pack, "isolated", resolve ? () => resolve(pack) : this.#opts.hostPython, [{ name: p.name, path: p.path }], p.env, p, true);
      this.#isolated.set(pack, proc);
    }
    return proc;
  }

  /** The shared process (all shared packs, and the ProxiedSingletons), created on first use. */
  get shared(): PythonProcess {
    if (!this.#shared) {
      this.#assertOpen();
      // ComfyUI's built-in nodes load before any shared pack, as in ComfyUI's start-up.
      const shared = [...this.#packs.values()].filter((p) => p.kind === "shared");
      const packs = [...shared.filter((p) => p.core), ...shared.filter((p) => !p.core)].map((p) => ({ name: p.name, path: p.path, ...(p.core ? { core: true } : {}) }));
      this.#shared = this.#makeProcess(SHARED_PROCESS_NAME, "shared", this.#opts.hostPython, packs, undefined, this.#opts.sharedSandbox ? { sandbox: this.#opts.sharedSandbox } : {});
    }
    return this.#shared;
  }

  /** The Ray backend's cluster, when isolated packs run as Ray actors. */
  get ray(): RayCluster | undefined {
    return this.#opts.ray;
  }

  /** Every process created so far (started or not). */
  processes(): PythonProcess[] {
    const all = [...this.#isolated.values()];
    if (this.#shared) all.push(this.#shared);
    return all;
  }

  /** The processes that are running now. */
  live(): PythonProcess[] {
    return this.processes().filter((p) => p.state === "ready");
  }

  /** Sends an event to every running process (e.g. an interrupt); starts none. */
  broadcast(service: string, method: string, args: readonly unknown[] = [], kwargs?: Record<string, unknown>): void {
    for (const p of this.live()) {
      try {
        p.event(service, method, args, kwargs);
      } catch {
        // a process that is going away misses the event
      }
    }
  }

  /**
   * Calls a method of a Python ProxiedSingleton (`module.qualname`) in the shared process.
   * @throws {RemoteError} when Python raised.
   */
  callSingleton(module: string, qualname: string, method: string, args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<unknown> {
    return this.shared.call(SINGLETON_SERVICE, "call", [module, qualname, method, args, kwargs], opts);
  }

  /** Closes every process (bye, then SIGTERM, then SIGKILL) and removes the exit hooks. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await Promise.all(this.processes().map((p) => p.close().catch(() => {})));
      this.handles.clear();
      await this.templates?.close();
      await this.#opts.ray?.close().catch(() => {});
      this.#unhook?.();
      this.#unhook = undefined;
    })();
    return this.#closing;
  }

  /**
   * Serves this host's services to TypeScript code in a worker (see `connectServices` in
   * `services.ts` for the worker side). Returns a function that stops serving.
   */
  exposeServicesTo(endpoint: MessageEndpoint): () => void {
    return exposeServices(endpoint, this.services);
  }

  /** Kills every child at once, synchronously (what the exit hooks do). */
  killAllNow(): void {
    for (const p of this.processes()) p.killNow();
    this.#opts.ray?.killNow();
    this.templates?.killNow();
  }

  /** Runs the `onExitSync` cleanup once (what the exit hooks do after killing the children). */
  cleanupNow(): void {
    const fn = this.#opts.onExitSync;
    if (!fn) return;
    this.#opts = { ...this.#opts, onExitSync: undefined };
    try {
      fn();
    } catch {
      // the host is going away; nothing more can be done
    }
  }

  // --- internals ----------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new PyisolateError("USAGE", "This host is closed; create a new one to run packs again.");
  }

  #makeProcess(
    name: string,
    kind: "isolated" | "shared",
    python: string | (() => Promise<string>),
    packs: { name: string; path: string }[],
    packEnv: Record<string, string> | undefined,
    limits: { sandbox?: SandboxPlan; memoryLimitBytes?: number; ray?: RayResources },
    isolated = false,
  ): PythonProcess {
    const ray = isolated ? this.#opts.ray : undefined;
    const o = this.#opts;
    const plan = limits.sandbox;
    const segmentDir = o.segmentDir ?? join(defaultShmDir(), `pyisolate-${o.hostId ?? process.pid}`);
    // A process of this machine under the Ray backend: its Ray node and relay (tensors of other nodes).
    const rayLocal = !ray && o.ray ? o.ray.localEnv() : undefined;
    const env = o.env || packEnv || rayLocal ? { ...(o.env ?? {}), ...(rayLocal ?? {}), ...(packEnv ?? {}) } : undefined;
    const options: Record<string, unknown> = { ...(o.options ?? {}) };
    if (o.cacheDir !== undefined) options.cache_dir = o.cacheDir;
    const templates = this.templates;
    const proc: PythonProcess = new PythonProcess({
      name,
      kind,
      python,
      packs,
      ...(templates ? { template: (py: string) => templates.choose(py, packEnv ?? {}) } : {}),
      handler: (call) => this.#route(proc, call),
      services: () => [...this.services.names(), SINGLETON_SERVICE, HANDLE_SERVICE],
      handles: this.handles,
      onExit: (info) => this.handles.processExited(name, exitText(info)),
      options,
      sysPath: o.sysPath ?? [],
      logger: this.#log,
      ...(env ? { env } : {}),
      ...(o.defaultTimeoutMs !== undefined ? { defaultTimeoutMs: o.defaultTimeoutMs } : {}),
      ...(o.startTimeoutMs !== undefined ? { startTimeoutMs: o.startTimeoutMs } : {}),
      ...(o.broker ? { broker: o.broker } : {}),
      ...(o.hostId !== undefined ? { hostId: o.hostId } : {}),
      ...(o.healthCheck !== undefined ? { healthCheck: o.healthCheck } : {}),
      ...(limits.memoryLimitBytes && !ray ? { memoryLimitBytes: limits.memoryLimitBytes } : {}),
      ...(ray ? { launcher: () => ray.launcher(name, limits.ray ?? {}) } : {}),
      ...(plan && !ray ? { sandbox: (py: string) => ({ cmd: "bwrap", args: bwrapArgs(plan, segmentDir, [dirname(dirname(py)), resolve(dirname(dirname(this.#opts.hostPython))), pythonRoot(), ...(o.sysPath ?? []), ...(o.cacheDir ? [o.cacheDir] : [])]) }) } : {}),
    });
    return proc;
  }

  /** The running (or once-run) process named `name`: an isolated pack's, or the shared one. */
  #processNamed(name: string): PythonProcess | undefined {
    return this.#isolated.get(name) ?? (name === SHARED_PROCESS_NAME ? this.#shared : undefined);
  }

  /**
   * `$obj` from a proxy: `call(handle, op, args, kwargs)` goes to the handle's owner (no
   * timeout of its own; a `cancel` cancels it there too), `release(pairs)` to the table.
   */
  #routeHandle(from: PythonProcess, call: IncomingCall): unknown {
    if (call.method === "release") {
      this.handles.releasedBy(from.name, call.args[0]);
      return null;
    }
    if (call.method !== "call") {
      throw new PyisolateError("NOT_CALLABLE", `${HANDLE_SERVICE} has no method "${call.method}"; proxies use ${HANDLE_SERVICE}.call and ${HANDLE_SERVICE}.release.`, { pack: from.name });
    }
    const target = call.args[0];
    if (!(target instanceof RemoteHandle)) {
      throw new PyisolateError("TYPE", `${HANDLE_SERVICE}.call from "${from.name}" needs a remote object handle as its first argument.`, { pack: from.name });
    }
    this.handles.assertUsable(target);
    this.handles.assertHeldBy(target, from.name);
    const owner = this.#processNamed(target.owner);
    if (!owner || owner.state !== "ready") throw this.handles.goneError(target, `process "${target.owner}" is not running`);
    const opts: CallOptions = { signal: call.signal, timeoutMs: 0 };
    if (call.kwargs) opts.kwargs = call.kwargs;
    const what = call.args[1] === "method" && Array.isArray(call.args[2]) ? `${String(call.args[2][0])}()` : String(call.args[1]);
    const p = owner.call(HANDLE_SERVICE, "call", call.args, opts).catch((e: unknown) => {
      if (e instanceof PyisolateError && e.code === "PROCESS_EXITED") {
        throw this.handles.goneError(target, `exited while ${what} ran on it (${e.message.replace(/^\$obj\.call in pack "[^"]*" failed: /, "")})`);
      }
      throw e;
    });
    if (call.event) {
      p.catch((e) => this.#log.pack(from.name, `- a ${HANDLE_SERVICE} event failed: ${e instanceof Error ? e.message : String(e)}`, "warn"));
      return undefined;
    }
    return p;
  }

  /** Answers a child's call: `$singleton` goes to the shared process, `$obj` to a handle's owner, anything else to a host service. */
  #route(from: PythonProcess, call: IncomingCall): unknown {
    if (call.service === HANDLE_SERVICE) return this.#routeHandle(from, call);
    if (call.service === SINGLETON_SERVICE) {
      // Only `call` is routed (the shared process resolves the class from its registry of
      // ProxiedSingleton classes; it never imports a name it is sent).
      if (call.method !== "call") {
        throw new PyisolateError("NOT_CALLABLE", `${SINGLETON_SERVICE}.${JSON.stringify(call.method)} cannot be called; ProxiedSingletons are reached through ${SINGLETON_SERVICE}.call(module, qualname, method, args, kwargs).`, { pack: from.name });
      }
      const opts: CallOptions = { signal: call.signal, timeoutMs: 0 };
      if (call.kwargs) opts.kwargs = call.kwargs;
      if (call.event) {
        void this.shared.call(SINGLETON_SERVICE, call.method, call.args, opts).catch((e) =>
          this.#log.pack(from.name, `- a ProxiedSingleton event failed: ${e instanceof Error ? e.message : String(e)}`, "warn"),
        );
        return undefined;
      }
      return this.shared.call(SINGLETON_SERVICE, call.method, call.args, opts);
    }
    return this.services.dispatch(call.service, call.method, call.args, call.kwargs, { caller: from.name, signal: call.signal });
  }

  #installExitHooks(): () => void {
    liveCores.add(this);
    if (liveCores.size === 1) hooks.install();
    return () => {
      liveCores.delete(this);
      if (liveCores.size === 0) hooks.remove();
    };
  }
}

/** How a process ended, as a phrase: "exited with code 3", "was killed by SIGKILL". */
function exitText(info: BrokerExit): string {
  const how = info.signal ? `was killed by ${info.signal}` : info.code !== null ? `exited with code ${info.code}` : "stopped";
  return info.reason && !how.includes(info.reason) ? `${how} (${info.reason})` : how;
}
