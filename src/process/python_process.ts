/**
 * `PythonProcess`: the main thread's handle of one Python process. It starts the process just
 * in time (on the first call), reuses it afterwards, restarts it on the next call after a
 * crash, and closes it cleanly. The process itself is owned by a broker — a worker per process
 * by default (`workers/broker.ts`), or the calling thread with `broker: "inline"` — and calls
 * go through an {@link RpcEndpoint} on this thread.
 * @module
 */
import process from "node:process";
import { rmSync } from "node:fs";
import { PyisolateError } from "../errors.ts";
import { pythonRoot } from "../paths.ts";
import { log as defaultLog, type Logger } from "../log.ts";
import { getRuntime } from "../runtime/detect.ts";
import { RpcEndpoint, DEFAULT_CALL_TIMEOUT_MS, type CallOptions, type IncomingHandler } from "../rpc/endpoint.ts";
import { decodeMessage } from "../protocol/codec.ts";
import type { PackRef, ProcessConfig, ReadyInfo } from "../protocol/messages.ts";
import type { BrokerExit, BrokerSink, BrokerStartFailed, BrokerStartOptions, BrokerStarted } from "../../workers/broker_core.ts";
import { inlineLink, workerLink, type BrokerLink, type BrokerMode } from "./broker_link.ts";
import { KeepAlive } from "../util/os.ts";

/** Time a process has to send `ready` after it is spawned (imports can be slow). */
export const DEFAULT_START_TIMEOUT_MS = 120_000;

/** Time `close()` waits after `bye`, and again after SIGTERM, before escalating. */
export const DEFAULT_CLOSE_GRACE_MS = 2_000;

/** Life of a {@link PythonProcess}: `idle` until the first call, `exited` after a crash (restarts on the next call), `closed` for good. */
export type ProcessState = "idle" | "starting" | "ready" | "stopping" | "exited" | "closed";

/** Options of {@link PythonProcess}. */
export interface PythonProcessOptions {
  /** Process name: the pack name for an isolated process. Log lines and errors carry it. */
  name: string;
  kind: "isolated" | "shared";
  /** The Python executable, or a function resolving it when the process first starts. */
  python: string | (() => Promise<string>);
  /** Packs the process imports. @default [] */
  packs?: PackRef[];
  /** Answers the child's calls to the host. @default every call fails with `NOT_CALLABLE` */
  handler?: IncomingHandler;
  /** Host service names the child may call (sent in `config.services`). @default [] */
  services?: string[] | (() => string[]);
  /** `config.options`. @default {} */
  options?: Record<string, unknown>;
  /** `config.sys_path`. @default [] */
  sysPath?: string[];
  /** Extra environment variables for the child. */
  env?: Record<string, string>;
  /** Working directory of the child. @default the host's */
  cwd?: string;
  /** @default {@link DEFAULT_CALL_TIMEOUT_MS} */
  defaultTimeoutMs?: number;
  /** @default {@link DEFAULT_START_TIMEOUT_MS} */
  startTimeoutMs?: number;
  /** @default the shared `log` */
  logger?: Logger;
  /** @default `PYISOLATE_BROKER` from the environment, else `"worker"` */
  broker?: BrokerMode;
  /** Called after every exit of the process (crash or close). */
  onExit?: (info: BrokerExit) => void;
}

/**
 * One Python process, started on first use.
 *
 * @example
 * ```ts
 * const proc = new PythonProcess({ name: "MyPack", kind: "isolated", python: "/envs/mypack/bin/python", packs: [{ name: "MyPack", path }] });
 * await proc.call("$rt", "echo", [42]); // spawns it: "][ MyPack - just-in-time spawning of isolated custom_node"
 * await proc.close();
 * ```
 */
export class PythonProcess {
  readonly name: string;
  readonly kind: "isolated" | "shared";
  readonly packs: PackRef[];
  #opts: PythonProcessOptions;
  #log: Logger;
  #mode: BrokerMode;
  #state: ProcessState = "idle";
  #python: string | undefined;
  #pid: number | undefined;
  #socketDir: string | undefined;
  #readyInfo: ReadyInfo | undefined;
  #ep: RpcEndpoint | undefined;
  #link: BrokerLink | undefined;
  #starting: Promise<ReadyInfo> | undefined;
  #lastExit: BrokerExit | undefined;
  #closing: Promise<void> | undefined;
  #starts = 0;
  #keepAlive = new KeepAlive();

  constructor(opts: PythonProcessOptions) {
    this.name = opts.name;
    this.kind = opts.kind;
    this.packs = opts.packs ?? [];
    this.#opts = opts;
    this.#log = opts.logger ?? defaultLog;
    const envMode = (process.env?.PYISOLATE_BROKER ?? "") as string;
    this.#mode = opts.broker ?? (envMode === "inline" ? "inline" : "worker");
  }

  /** Where it is in its life. */
  get state(): ProcessState {
    return this.#state;
  }

  /** The Python executable, once resolved. */
  get python(): string | undefined {
    return this.#python;
  }

  /** The child's pid while it runs. */
  get pid(): number | undefined {
    return this.#pid;
  }

  /** What the process reported in `ready` (its packs, Python version, pid), once started. */
  get readyInfo(): ReadyInfo | undefined {
    return this.#readyInfo;
  }

  /** How the process last exited, if it did. */
  get lastExit(): BrokerExit | undefined {
    return this.#lastExit;
  }

  /** How many times the process was started. */
  get starts(): number {
    return this.#starts;
  }

  /** Where its broker runs. */
  get brokerMode(): BrokerMode {
    return this.#mode;
  }

  /**
   * Starts the process if it is not running (first use, or after a crash) and resolves with its
   * ready info. Concurrent callers share one start.
   * @throws {PyisolateError} `PROCESS_FAILED`, `PYTHON_NOT_FOUND` or `PROTOCOL` when it cannot start; `USAGE` once closed.
   */
  start(why: "use" | "metadata" = "use"): Promise<ReadyInfo> {
    if (this.#state === "ready" && this.#readyInfo) return Promise.resolve(this.#readyInfo);
    if (this.#starting) return this.#starting;
    if (this.#state === "closed" || this.#state === "stopping") {
      return Promise.reject(new PyisolateError("USAGE", `The Python process "${this.name}" is closed; create a new one to run it again.`, { pack: this.name }));
    }
    const p = this.#spawn(why);
    this.#starting = p;
    p.then(
      () => (this.#starting = undefined),
      () => (this.#starting = undefined),
    );
    return p;
  }

  /**
   * Calls `service.method(...args)` in the process, starting it first when needed.
   * @throws {RemoteError} when Python raised; {@link PyisolateError} `TIMEOUT`, `CANCELLED`,
   * `PROCESS_EXITED` (a crash while the call was pending: the message has the exit code or
   * signal and the last stderr lines), or a start-up error.
   */
  async call(service: string, method: string, args: readonly unknown[] = [], opts: CallOptions = {}): Promise<unknown> {
    this.#keepAlive.hold();
    try {
      if (this.#state !== "ready") await this.start();
      return await this.#ep!.call(service, method, args, opts);
    } finally {
      this.#keepAlive.release();
    }
  }

  /**
   * Sends an event (no answer) if the process is running; does not start it.
   * @returns whether it was sent.
   */
  event(service: string, method: string, args: readonly unknown[] = [], kwargs?: Record<string, unknown>): boolean {
    if (this.#state !== "ready" || !this.#ep) return false;
    this.#ep.event(service, method, args, kwargs);
    return true;
  }

  /** Sends a signal to the process (and its children). For tests and emergencies; prefer {@link close}. */
  kill(signal = "SIGKILL"): void {
    this.#link?.kill(signal);
  }

  /**
   * Kills the process group synchronously (for the host's exit hook, where nothing async runs).
   */
  killNow(): void {
    if (this.#socketDir) rmSync(this.#socketDir, { recursive: true, force: true });
    const pid = this.#pid;
    if (pid === undefined || pid <= 0) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }

  /**
   * Closes the process for good: `bye`, then SIGTERM, then SIGKILL, and waits until it has
   * exited. Pending calls fail with `PROCESS_EXITED`. Idempotent.
   */
  close(graceMs: number = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    this.#closing ??= this.#close(graceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    const wasState = this.#state;
    this.#state = "stopping";
    if (this.#starting) await this.#starting.catch(() => {});
    const link = this.#link;
    if (link && wasState !== "exited") {
      const info = await link.stop(graceMs).catch(() => null);
      // The exit report normally arrives through the sink; make sure the endpoint is closed.
      this.#ep?.close("PROCESS_EXITED", this.#exitCause(info ?? { code: null, signal: null, stderr: [] }, "was closed by the host"));
      await link.dispose().catch(() => {});
    }
    this.#link = undefined;
    this.#pid = undefined;
    this.#state = "closed";
  }

  // --- internals ----------------------------------------------------------------------------

  async #spawn(why: "use" | "metadata"): Promise<ReadyInfo> {
    this.#keepAlive.hold();
    try {
      const restarting = this.#state === "exited";
      this.#state = "starting";
      if (restarting && this.#lastExit) {
        const e = this.#lastExit;
        const how = e.signal ? `was killed by ${e.signal}` : e.code !== null ? `exited with code ${e.code}` : "could not start";
        this.#log.pack(this.name, `- restarting ${this.#what()} (it ${how})`, "warn");
      } else if (this.kind === "isolated") {
        // On a metadata-cache miss the process starts to report its nodes, not to run one.
        this.#log.pack(this.name, why === "metadata" ? "- cache miss, spawning isolated custom_node to read its nodes" : "- just-in-time spawning of isolated custom_node");
      } else {
        this.#log.pack(this.name, "- starting the shared Python process", "debug");
      }
      const python = typeof this.#opts.python === "function" ? await this.#opts.python() : this.#opts.python;
      this.#python = python;
      const rt = await getRuntime();
      const gen = ++this.#starts;
      const sink: BrokerSink = {
        frames: (payloads) => {
          const ep = this.#ep;
          if (!ep || gen !== this.#starts) return;
          for (let i = 0; i < payloads.length; i++) ep.receive(payloads[i]!);
        },
        lines: (stream, lines) => {
          for (const line of lines) this.#log.child(this.name, stream, line);
        },
        spawned: (pid, socketDir) => {
          if (gen !== this.#starts) return;
          this.#pid = pid;
          this.#socketDir = socketDir;
        },
        exit: (info) => this.#onExit(gen, info),
      };
      const link = this.#mode === "inline" ? await inlineLink(rt, sink) : workerLink(rt, sink, this.name);
      this.#link = link;
      const ep = new RpcEndpoint({
        name: this.name,
        send: (frame) => link.send(frame),
        ...(this.#opts.handler ? { handler: this.#opts.handler } : {}),
        defaultTimeoutMs: this.#opts.defaultTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
        onProtocolError: (err) => {
          this.#log.pack(this.name, `- ${err.message}; stopping the process`, "error");
          ep.close("PROTOCOL", err.message);
          link.kill("SIGKILL");
        },
        onError: (err) => this.#log.pack(this.name, `- an event handler failed: ${err instanceof Error ? err.message : String(err)}`, "warn"),
      });
      this.#ep = ep;
      const startTimeoutMs = this.#opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
      const services = this.#opts.services;
      const config: ProcessConfig = {
        pack: this.name,
        path: this.packs[0]?.path ?? "",
        kind: this.kind,
        packs: this.packs.map((p) => ({ name: p.name, path: p.path, ...(p.core ? { core: true } : {}) })),
        sys_path: this.#opts.sysPath ?? [],
        services: typeof services === "function" ? services() : (services ?? []),
        options: this.#opts.options ?? {},
      };
      // The broker enforces the start timeout itself; a broker that never answers, or whose
      // worker dies, ends the start the same way as a failed one.
      const r = await link
        .start({ name: this.name, python, config, env: this.#childEnv(), ...(this.#opts.cwd ? { cwd: this.#opts.cwd } : {}), startTimeoutMs })
        .catch((err: unknown): BrokerStartFailed => {
          const e = err instanceof PyisolateError ? err : new PyisolateError("PROCESS_FAILED", String(err));
          return { ok: false, code: e.code === "TIMEOUT" || e.code === "USAGE" ? "PROCESS_FAILED" : e.code, message: e.message };
        });
      if (gen !== this.#starts) throw new PyisolateError("PROCESS_FAILED", `The start of "${this.name}" was superseded.`, { pack: this.name });
      if (!r.ok) {
        ep.close(r.code === "USAGE" ? "PROCESS_FAILED" : r.code, r.message);
        link.kill("SIGKILL");
        await link.stop(0).catch(() => {});
        await link.dispose().catch(() => {});
        if (this.#link === link) this.#link = undefined;
        this.#pid = undefined;
        throw new PyisolateError(r.code, r.message, { pack: this.name });
      }
      const ready = decodeMessage(r.ready, ep);
      const info = (ready.t === "ready" ? ready.info : { packs: [], python: r.hello.python, pid: r.pid }) as ReadyInfo;
      this.#readyInfo = info;
      this.#pid = r.pid;
      for (const p of info.packs ?? []) {
        if (p && p.ok === false) {
          const e = p.error;
          // The node registry reports it to users, with what it means; here it is detail.
          this.#log.pack(String(p.name), `- failed to import${e ? `: ${e.type}: ${e.message}` : ""}`, "debug");
        }
      }
      if (this.#state === "starting") this.#state = "ready";
      return info;
    } catch (err) {
      // Not started (no Python, no environment, a failed handshake): the next call tries again.
      if (this.#state === "starting") this.#state = this.#lastExit ? "exited" : "idle";
      throw err;
    } finally {
      this.#keepAlive.release();
    }
  }

  #what(): string {
    return this.kind === "isolated" ? "isolated custom_node" : "shared Python process";
  }

  #childEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (typeof v === "string") env[k] = v;
    // The host's own PYTHONPATH would leak host packages into the pack's environment.
    delete env.PYTHONPATH;
    Object.assign(env, this.#opts.env ?? {});
    const extra = this.#opts.env?.PYTHONPATH;
    env.PYTHONPATH = extra ? `${pythonRoot()}:${extra}` : pythonRoot();
    env.PYTHONUNBUFFERED = "1";
    env.PYISOLATE_HOST_PID = String(process.pid);
    env.PYISOLATE_PACK = this.name;
    return env;
  }

  #exitCause(info: BrokerExit, fallback: string): string {
    const how = info.signal ? `was killed by ${info.signal}` : info.code !== null ? `exited with code ${info.code}` : fallback;
    const why = info.reason && !how.includes(info.reason) ? ` (${info.reason})` : "";
    const tail = info.stderr.length ? `. Last stderr lines:\n${info.stderr.join("\n")}` : ".";
    return `the Python process${this.#pid ? ` (pid ${this.#pid})` : ""} ${how}${why}${tail}`;
  }

  #onExit(gen: number, info: BrokerExit): void {
    if (gen !== this.#starts) return;
    this.#lastExit = info;
    const stopping = this.#state === "stopping" || this.#state === "closed";
    const cause = this.#exitCause(info, "exited");
    this.#ep?.close("PROCESS_EXITED", cause);
    this.#pid = undefined;
    const link = this.#link;
    // While starting, the start path owns the broker (its answer may still be on its way).
    if (!stopping && this.#state !== "starting") {
      this.#link = undefined;
      if (this.#state === "ready") {
        this.#log.pack(this.name, `- ${this.#what()} stopped unexpectedly: ${cause.replace(/^the /, "")}`, "warn");
      }
      this.#state = "exited";
      void link?.dispose().catch(() => {});
    }
    try {
      this.#opts.onExit?.(info);
    } catch {
      // observers must not break the exit path
    }
  }
}
