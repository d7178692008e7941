/**
 * `PythonProcess`: the main thread's handle of one Python process. It starts the process just
 * in time (on the first call), reuses it afterwards, restarts it on the next call after a
 * crash, and closes it cleanly. The process itself is owned by a broker — the calling thread by
 * default (`broker: "inline"`: the fewest hops per call), or a worker per process with
 * `broker: "worker"` (`workers/broker.ts`: socket reads and framing off this thread) — and
 * calls go through an {@link RpcEndpoint} on this thread.
 * @module
 */
import process from "node:process";
import { rmSync } from "node:fs";
import { PyisolateError } from "../errors.ts";
import { pythonRoot } from "../paths.ts";
import { asLogger, type Logger, type LoggerLike } from "../log.ts";
import { getRuntime } from "../runtime/detect.ts";
import { RpcEndpoint, DEFAULT_CALL_TIMEOUT_MS, type CallOptions, type IncomingHandler } from "../rpc/endpoint.ts";
import { decodeMessage } from "../protocol/codec.ts";
import type { PackRef, ProcessConfig, ReadyInfo } from "../protocol/messages.ts";
import type { BrokerExit, BrokerSink, BrokerStartFailed, BrokerStartOptions, BrokerStarted } from "../../workers/broker_core.ts";
import { inlineLink, workerLink, type BrokerLink, type BrokerMode } from "./broker_link.ts";
import { KeepAlive, unref } from "../util/os.ts";
import { startHealthCheck } from "./health.ts";
import { CLOSE_MARGIN_MS, DEFAULT_CLOSE_GRACE_MS, DEFAULT_START_TIMEOUT_MS, type ProcessState, type PythonProcessOptions } from "./process_options.ts";
import type { TemplateChoice } from "./template.ts";

export { DEFAULT_HEALTH_INTERVAL_MS, DEFAULT_HEALTH_TIMEOUT_MS, type HealthCheckOptions } from "./health.ts";
export { CLOSE_MARGIN_MS, DEFAULT_CLOSE_GRACE_MS, DEFAULT_START_TIMEOUT_MS, type ProcessState, type PythonProcessOptions } from "./process_options.ts";

/** How long a call waits for the exit of a process whose connection was just closed. */
const EXIT_WAIT_MS = 5_000;

function exitSignal(): { wait(ms: number): Promise<void>; done(): void } {
  let done!: () => void;
  const p = new Promise<void>((r) => (done = r));
  return {
    wait: (ms) => {
      let t: ReturnType<typeof setTimeout> | undefined;
      return Promise.race([p, new Promise<void>((r) => ((t = setTimeout(r, ms)), unref(t)))]).finally(() => clearTimeout(t));
    },
    done,
  };
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
  #killReason: string | undefined;
  #sent = 0;
  #received = 0;
  #health: (() => void) | undefined;
  #exit: { wait(ms: number): Promise<void>; done(): void } | undefined;

  constructor(opts: PythonProcessOptions) {
    this.name = opts.name;
    this.kind = opts.kind;
    this.packs = opts.packs ?? [];
    this.#opts = opts;
    this.#log = asLogger(opts.logger);
    const envMode = (process.env?.PYISOLATE_BROKER ?? "") as string;
    this.#mode = opts.broker ?? (envMode === "worker" ? "worker" : "inline");
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

  /** Bytes of frames sent to and received from the process, over all its starts. */
  get traffic(): { sent: number; received: number } {
    return { sent: this.#sent, received: this.#received };
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
      // A connection closed by a protocol error or a kill: its exit is on its way. Waiting for
      // it (briefly) lets this call start the process again instead of failing with the
      // previous call's error.
      if (this.#state === "ready" && this.#ep?.closed) await this.#exit?.wait(EXIT_WAIT_MS);
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
   * Kills the process group now (SIGKILL) because of `reason`, which every pending call's
   * error then names ("… was killed by SIGKILL (reason)"). The next call starts it again.
   */
  terminate(reason: string): void {
    if (this.#state !== "ready" && this.#state !== "starting") return;
    this.#killReason ??= reason;
    this.#log.pack(this.name, `- stopping the ${this.#what()}: ${reason}`, "warn");
    this.#link?.kill("SIGKILL");
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
    this.#stopHealth();
    if (this.#starting) {
      // A process still starting is not worth waiting for: end it.
      this.#link?.kill("SIGKILL");
      await this.#starting.catch(() => {});
    }
    const link = this.#link;
    if (link && wasState !== "exited") {
      // Every stop has a deadline, whatever the broker does.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const deadline = new Promise<null>((r) => {
        timer = setTimeout(() => r(null), 2 * graceMs + CLOSE_MARGIN_MS);
        unref(timer);
      });
      const info = await Promise.race([link.stop(graceMs).catch(() => null), deadline]);
      clearTimeout(timer);
      if (info === null) {
        link.kill("SIGKILL");
        if (this.#pid !== undefined) this.killNow();
      }
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
      this.#exit = exitSignal();
      const python = typeof this.#opts.python === "function" ? await this.#opts.python() : this.#opts.python;
      this.#python = python;
      const rt = await getRuntime();
      const gen = ++this.#starts;
      const sink: BrokerSink = {
        frames: (payloads) => {
          const ep = this.#ep;
          if (!ep || gen !== this.#starts) return;
          for (let i = 0; i < payloads.length; i++) {
            this.#received += payloads[i]!.byteLength + 4;
            ep.receive(payloads[i]!);
          }
        },
        lines: (stream, lines) => {
          for (const line of lines) this.#log.child(this.name, stream, line);
        },
        spawned: (pid, socketDir) => {
          if (gen !== this.#starts) return;
          this.#pid = pid > 0 ? pid : undefined;
          this.#socketDir = socketDir;
        },
        exit: (info) => this.#onExit(gen, info),
      };
      const launcher = this.#opts.launcher?.();
      const link = this.#mode === "inline" || launcher ? await inlineLink(rt, sink, launcher) : workerLink(rt, sink, this.name);
      this.#link = link;
      const ep = new RpcEndpoint({
        name: this.name,
        send: (frame) => {
          this.#sent += frame.byteLength;
          link.send(frame);
        },
        ...(this.#opts.handler ? { handler: this.#opts.handler } : {}),
        ...(this.#opts.handles ? { handles: this.#opts.handles } : {}),
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
      const wrapped = this.#opts.sandbox?.(python);
      const template = launcher ? undefined : this.#opts.template;
      const choice: TemplateChoice | undefined = !template
        ? undefined
        : wrapped
          ? { reason: "it runs in a sandbox, which a fork from the template would escape" }
          : await template(python);
      if (choice && "reason" in choice) this.#log.pack(this.name, `- plain spawn: ${choice.reason}`);
      const spawnedAt = performance.now();
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
      this.#killReason = undefined;
      const r = await link
        .start({
          name: this.name,
          python,
          config,
          env: this.#childEnv(),
          ...(this.#opts.cwd ? { cwd: this.#opts.cwd } : {}),
          ...(choice && "socket" in choice ? { template: choice.socket } : {}),
          startTimeoutMs,
          ...(wrapped ? { wrapper: wrapped } : {}),
          ...(this.#opts.memoryLimitBytes ? { memoryLimitBytes: this.#opts.memoryLimitBytes } : {}),
        })
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
      if (r.forked) this.#log.pack(this.name, `- forked from template ${choice && "key" in choice ? choice.key : ""} (pid ${r.pid}, ready in ${(performance.now() - spawnedAt).toFixed(0)} ms)`, "debug");
      else if (r.forkError !== undefined) this.#log.pack(this.name, `- plain spawn: the template could not fork it (${r.forkError})`, "warn");
      const ready = decodeMessage(r.ready, ep);
      const info = (ready.t === "ready" ? ready.info : { packs: [], python: r.hello.python, pid: r.pid }) as ReadyInfo;
      this.#readyInfo = info;
      // A process on another machine (the Ray backend) has no pid here.
      this.#pid = r.pid > 0 ? r.pid : undefined;
      for (const p of info.packs ?? []) {
        if (p && p.ok === false) {
          const e = p.error;
          // The node registry reports it to users, with what it means; here it is detail.
          this.#log.pack(String(p.name), `- failed to import${e ? `: ${e.type}: ${e.message}` : ""}`, "debug");
        }
      }
      if (this.#state === "starting") {
        this.#state = "ready";
        this.#stopHealth();
        const ep2 = this.#ep;
        if (this.#opts.healthCheck !== false && ep2) {
          this.#health = startHealthCheck(ep2, this.#opts.healthCheck || {}, () => gen === this.#starts && this.#state === "ready", (why) => this.terminate(why));
        }
      }
      return info;
    } catch (err) {
      // Not started (no Python, no environment, a failed handshake): the next call tries again.
      if (this.#state === "starting") this.#state = this.#lastExit ? "exited" : "idle";
      throw err;
    } finally {
      this.#keepAlive.release();
    }
  }

  #stopHealth(): void {
    this.#health?.();
    this.#health = undefined;
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
    env.PYISOLATE_HOST_ID = this.#opts.hostId ?? String(process.pid);
    if (this.#opts.sandbox) env.PYISOLATE_SANDBOXED = "1";
    env.PYISOLATE_PACK = this.name;
    // As the Python pyisolate marks its children: packs test it to know they run isolated.
    if (this.#opts.kind === "isolated") env.PYISOLATE_CHILD = "1";
    return env;
  }

  #exitCause(info: BrokerExit, fallback: string): string {
    const how = info.signal ? `was killed by ${info.signal}` : info.code !== null ? `exited with code ${info.code}` : fallback;
    const reason = this.#killReason ?? info.reason;
    const why = reason && !how.includes(reason) ? ` (${reason})` : "";
    const tail = info.stderr.length ? `. Last stderr lines:\n${info.stderr.join("\n")}` : ".";
    return `the Python process${this.#pid ? ` (pid ${this.#pid})` : ""} ${how}${why}${tail}`;
  }

  #onExit(gen: number, info: BrokerExit): void {
    if (gen !== this.#starts) return;
    this.#exit?.done();
    this.#stopHealth();
    this.#lastExit = this.#killReason ? { ...info, reason: this.#killReason } : info;
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
