/**
 * The broker: owns one Python process. It creates a private socket directory, listens,
 * spawns `<python> -m pyisolate_runtime`, checks the token in `hello`, sends `config`, waits
 * for `ready`, then moves frames between the socket and its owner. The child's stdout/stderr
 * become lines (the last ones of stderr are kept for crash reports), and its exit is reported
 * once, with code or signal.
 *
 * It runs inside the broker worker (`broker.ts`) or, with `broker: "inline"`, on the calling
 * thread. Frames cross to the owner as whole payloads; encoding the values in them is the
 * owner's job (it holds the services, callbacks and registered types).
 * @module
 */
import { mkdtempSync, chmodSync, rmSync } from "node:fs";
import { OutputLines, mib, watchMemory } from "./child_watch.ts";
import { SOCKET_DIR_PREFIX, sweepSocketDirs } from "./socket_dirs.ts";
import { unref } from "../src/util/os.ts";
import process from "node:process";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { ChildHandle, ExitStatus, Runtime, SocketConn, SocketServer, SpawnOptions } from "../src/runtime/contract.ts";
import { forkFromTemplate } from "../src/process/template_fork.ts";
import { FrameDecoder } from "../src/protocol/frames.ts";
import type { ExceptionMap, HelloMsg, ProcessConfig } from "../src/protocol/messages.ts";
import { decodeMessage, encodeMessage } from "../src/protocol/codec.ts";
import type { PyisolateErrorCode } from "../src/errors.ts";

/** How many stderr lines a crash report carries. */
export const STDERR_TAIL_LINES = 50;


/** What the owner gives the broker to start a process. */
export interface BrokerStartOptions {
  /** Process name (the pack name for an isolated process). */
  name: string;
  /** The Python executable. */
  python: string;
  /** The `config` message's content. */
  config: ProcessConfig;
  /** The child's full environment, without the `PYISOLATE_SOCKET`/`PYISOLATE_TOKEN` the broker adds. */
  env: Record<string, string>;
  cwd?: string;
  /** Milliseconds to wait for `ready`. */
  startTimeoutMs: number;
  /** A template process's socket: fork the process from it (`src/process/template.ts`), else spawn it. */
  template?: string;
  /** A command the Python command runs under (the sandbox: `bwrap …`); the Python command follows its arguments. */
  wrapper?: { cmd: string; args: string[] };
  /** Kill the process when its memory (resident, its descendants' included) exceeds this many bytes. */
  memoryLimitBytes?: number;
}

/**
 * Starts the process somewhere other than this machine's process table (the Ray backend:
 * an actor on a cluster node). The process connects back over TCP to `tcpHost`, so the
 * broker listens there instead of on a Unix socket; everything after the connection (token,
 * handshake, frames) is the same.
 */
export interface Launcher {
  /** The address the broker listens on (TCP, any free port), reachable from where the process runs. */
  tcpHost: string;
  /** Starts the process; `pid` is -1 where the process is not on this machine. */
  spawn(opts: SpawnOptions): ChildHandle;
}

/** In a wrapper's arguments, stands for the process's private socket folder (which the sandbox must bind). */
export const SOCKET_DIR_TOKEN = "$PYISOLATE_SOCKET_DIR";


/** How long `stop` waits for the process to go after SIGKILL before it reports it as gone anyway. */
export const KILL_WAIT_MS = 5_000;

/** The process is ready. */
export interface BrokerStarted {
  ok: true;
  pid: number;
  hello: Omit<HelloMsg, "t" | "token">;
  /** The `ready` frame's payload, for the owner to decode. */
  ready: Uint8Array;
  /** Whether it was forked from the template it was given. */
  forked: boolean;
  /** Why it was spawned plainly although a template was given. */
  forkError?: string;
}

/** Start-up failed; the process is gone. */
export interface BrokerStartFailed {
  ok: false;
  code: PyisolateErrorCode;
  message: string;
  /** The runtime's own error, when it sent `fail`. */
  error?: ExceptionMap;
}

/** How the process ended. */
export interface BrokerExit {
  code: number | null;
  signal: string | null;
  /** The last stderr lines. */
  stderr: string[];
  /** Why the broker ended it, when it did (protocol error, lost connection). */
  reason?: string;
}

/** Where the broker delivers what it receives. */
export interface BrokerSink {
  /** Frame payloads from the child (each in a buffer of its own). */
  frames(payloads: Uint8Array[]): void;
  /** Complete lines the child printed. */
  lines(stream: "stdout" | "stderr", lines: string[]): void;
  /** The process was spawned; `socketDir` is the private directory to remove if the host dies. */
  spawned(pid: number, socketDir: string): void;
  /** The process exited (called once, after start-up succeeded or failed). */
  exit(info: BrokerExit): void;
}


type Phase = "new" | "hello" | "config" | "running" | "exited";

/** One Python process and its socket. */
export class BrokerCore {
  #rt: Runtime;
  #sink: BrokerSink;
  #phase: Phase = "new";
  #name = "";
  #dir = "";
  #server: SocketServer | undefined;
  #conn: SocketConn | undefined;
  #child: ChildHandle | undefined;
  #token = "";
  #frames = new FrameDecoder();
  #stderrTail: string[] = [];
  #reason: string | undefined;
  #exit: ExitStatus | undefined;
  #exitReported = false;
  #settleStart: ((r: BrokerStarted | BrokerStartFailed) => void) | undefined;
  #startTimer: ReturnType<typeof setTimeout> | undefined;
  #hello: Omit<HelloMsg, "t" | "token"> | undefined;
  #config: ProcessConfig | undefined;
  #forked = false;
  #forkError: string | undefined;
  #output = new OutputLines((stream, lines) => this.#emit(stream, lines));
  #stopMemoryWatch: (() => void) | undefined;

  #launcher: Launcher | undefined;

  constructor(rt: Runtime, sink: BrokerSink, launcher?: Launcher) {
    this.#rt = rt;
    this.#sink = sink;
    this.#launcher = launcher;
  }

  /** The child's pid, once spawned. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Spawns the process and waits for `ready` (or for it to fail). */
  async start(opts: BrokerStartOptions): Promise<BrokerStarted | BrokerStartFailed> {
    if (this.#phase !== "new") return { ok: false, code: "USAGE", message: "A broker starts one process only." };
    this.#name = opts.name;
    this.#config = opts.config;
    const done = new Promise<BrokerStarted | BrokerStartFailed>((resolve) => (this.#settleStart = resolve));
    try {
      this.#token = randomBytes(32).toString("hex");
      const launcher = this.#launcher;
      let path: string;
      if (launcher) {
        this.#server = await this.#rt.listenTcp(launcher.tcpHost, 0, (conn) => this.#accept(conn));
        path = this.#server.path;
      } else {
        sweepSocketDirs();
        this.#dir = mkdtempSync(join(tmpdir(), `${SOCKET_DIR_PREFIX}${process.pid}-`));
        chmodSync(this.#dir, 0o700);
        path = join(this.#dir, "s");
        this.#server = await this.#rt.listenUnix(path, (conn) => this.#accept(conn));
        chmodSync(path, 0o600);
      }
      this.#phase = "hello";
      const command = ["-m", "pyisolate_runtime"];
      const spawn: SpawnOptions = {
        cmd: opts.wrapper ? opts.wrapper.cmd : opts.python,
        args: opts.wrapper ? [...opts.wrapper.args.map((a) => (a === SOCKET_DIR_TOKEN ? this.#dir : a)), opts.python, ...command] : command,
        env: { ...opts.env, PYISOLATE_SOCKET: path, PYISOLATE_TOKEN: this.#token },
        ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
        detachedGroup: true,
        onStdout: (c) => this.#output.push("stdout", c),
        onStderr: (c) => this.#output.push("stderr", c),
      };
      if (launcher) this.#child = launcher.spawn(spawn);
      else if (opts.template && !opts.wrapper) {
        try {
          this.#child = await forkFromTemplate(this.#rt, opts.template, spawn);
          this.#forked = true;
        } catch (e) {
          this.#forkError = (e as Error).message;
        }
      }
      this.#child ??= this.#rt.spawn(spawn);
      this.#child.exited.then(
        (status) => {
          this.#output.end();
          this.#onExit(status);
        },
        (e: Error) => {
          this.#failStart("PYTHON_NOT_FOUND", `Could not start Python "${opts.python}" for "${opts.name}": ${e.message}. Check that the environment exists (pyisolate build).`);
          this.#onExit({ code: null, signal: null });
        },
      );
      this.#sink.spawned(this.#child.pid, this.#dir);
      if (opts.memoryLimitBytes && opts.memoryLimitBytes > 0 && this.#child.pid > 0) {
        const limit = opts.memoryLimitBytes;
        this.#stopMemoryWatch = watchMemory(this.#child.pid, limit, (used) => {
          this.#reason ??= `it used ${mib(used)} of memory, more than its limit of ${mib(limit)}`;
          this.kill("SIGKILL");
        });
      }
      this.#startTimer = setTimeout(() => {
        this.#failStart("PROCESS_FAILED", `"${opts.name}" did not become ready within ${opts.startTimeoutMs} ms${this.#tailText()}`);
        this.#reason ??= "it did not start in time";
        this.kill("SIGKILL");
      }, opts.startTimeoutMs);
      unref(this.#startTimer);
    } catch (e) {
      this.#failStart("PROCESS_FAILED", `Could not prepare the process for "${opts.name}": ${(e as Error).message}`);
      this.#cleanup();
      this.#phase = "exited";
    }
    return done;
  }

  /** Writes one whole frame (length prefix included) to the child. */
  send(frame: Uint8Array): void {
    if (this.#conn && this.#phase !== "exited") this.#conn.write(frame);
  }

  /** Sends a signal to the child's process group. */
  kill(signal = "SIGTERM"): void {
    this.#child?.kill(signal);
  }

  /**
   * Stops the process: `bye`, then SIGTERM after `graceMs`, then SIGKILL after as long again.
   * Resolves once it has exited (never leaves a zombie).
   */
  async stop(graceMs = 2000): Promise<BrokerExit> {
    const child = this.#child;
    if (!child) return this.#exitInfo({ code: null, signal: null });
    if (this.#exit) return this.#exitInfo(this.#exit);
    this.#reason ??= "it was closed by the host";
    try {
      if (this.#conn) this.#conn.write(encodeMessage({ t: "bye" }));
    } catch {
      // the socket is gone already
    }
    const waitFor = (ms: number) => {
      let t: ReturnType<typeof setTimeout> | undefined;
      return Promise.race([
        child.exited.then(() => true, () => true),
        new Promise<boolean>((r) => {
          t = setTimeout(() => r(false), ms);
          unref(t);
        }),
      ]).finally(() => clearTimeout(t));
    };
    if (!(await waitFor(graceMs))) {
      child.kill("SIGTERM");
      if (!(await waitFor(graceMs))) {
        child.kill("SIGKILL");
        if (!(await waitFor(KILL_WAIT_MS))) {
          // Gone as far as signals go (a stuck exit, or output pipes held open elsewhere).
          this.#reason = `${this.#reason} and did not exit within ${KILL_WAIT_MS} ms of SIGKILL`;
          return this.#exitInfo(this.#exit ?? { code: null, signal: "SIGKILL" });
        }
      }
    }
    const status = await child.exited.catch(() => ({ code: null, signal: null }) as ExitStatus);
    return this.#exitInfo(status);
  }

  // --- internals ----------------------------------------------------------------------------

  #emit(stream: "stdout" | "stderr", lines: string[]): void {
    if (lines.length === 0) return;
    if (stream === "stderr") {
      this.#stderrTail.push(...lines);
      if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.splice(0, this.#stderrTail.length - STDERR_TAIL_LINES);
    }
    this.#sink.lines(stream, lines);
  }

  #tailText(): string {
    return this.#stderrTail.length ? `. Last stderr lines:\n${this.#stderrTail.join("\n")}` : " (it wrote nothing to stderr).";
  }

  #accept(conn: SocketConn): void {
    if (this.#conn || this.#phase !== "hello") {
      conn.close();
      return;
    }
    this.#conn = conn;
    conn.onData((chunk) => this.#onData(chunk));
    conn.onClose(() => this.#onConnClose());
  }

  #onData(chunk: Uint8Array): void {
    let payloads: Uint8Array[];
    try {
      payloads = this.#frames.push(chunk);
    } catch (e) {
      this.#protocolError((e as Error).message);
      return;
    }
    if (payloads.length === 0) return;
    if (this.#phase === "running") {
      this.#sink.frames(payloads);
      return;
    }
    for (let i = 0; i < payloads.length; i++) {
      if ((this.#phase as Phase) === "running") {
        this.#sink.frames(payloads.slice(i));
        return;
      }
      this.#handshake(payloads[i]!);
    }
  }

  #handshake(payload: Uint8Array): void {
    if (this.#phase === "hello") {
      let msg;
      try {
        msg = decodeMessage(payload);
      } catch (e) {
        this.#protocolError((e as Error).message);
        return;
      }
      if (msg.t !== "hello") {
        this.#protocolError(`the first message was "${msg.t}", not "hello"`);
        return;
      }
      const given = new TextEncoder().encode(String(msg.token));
      const want = new TextEncoder().encode(this.#token);
      if (given.length !== want.length || !timingSafeEqual(given, want)) {
        this.#protocolError("the process connected with a wrong token");
        return;
      }
      this.#hello = { pid: Number(msg.pid), python: String(msg.python), runtime: String(msg.runtime) };
      this.#phase = "config";
      this.#conn!.write(encodeMessage({ t: "config", config: this.#config! }));
      return;
    }
    // phase "config": calls may come before ready (a pack calling the host while imported).
    let t: unknown;
    let msg;
    try {
      msg = decodeMessage(payload);
      t = msg.t;
    } catch {
      t = undefined; // a message the owner's codec may understand (a registered tag)
    }
    if (t === "ready") {
      this.#phase = "running";
      if (this.#startTimer) clearTimeout(this.#startTimer);
      const settle = this.#settleStart;
      this.#settleStart = undefined;
      const started: BrokerStarted = { ok: true, pid: this.#child!.pid, hello: this.#hello!, ready: payload, forked: this.#forked };
      if (this.#forkError !== undefined) started.forkError = this.#forkError;
      settle?.(started);
    } else if (t === "fail" && msg && msg.t === "fail") {
      const e = msg.error;
      this.#failStart(
        "PROCESS_FAILED",
        `The Python runtime for "${this.#name}" could not start: ${e.type}: ${e.message}${e.traceback ? `\n${e.traceback.trimEnd()}` : ""}`,
        e,
      );
      this.#reason ??= "its runtime could not start";
    } else {
      this.#sink.frames([payload]);
    }
  }

  #protocolError(cause: string): void {
    this.#reason ??= `protocol error: ${cause}`;
    this.#failStart("PROTOCOL", `The process for "${this.#name}" broke the protocol: ${cause}.`);
    this.#conn?.close();
    this.kill("SIGKILL");
  }

  #onConnClose(): void {
    if (this.#exit) return;
    // The child closed its end (or the socket failed): it should be exiting; make sure it does.
    this.#reason ??= "it closed its connection to the host";
    const child = this.#child;
    const t = setTimeout(() => child?.kill("SIGKILL"), 2000);
    unref(t);
    child?.exited.finally(() => clearTimeout(t)).catch(() => {});
  }

  #failStart(code: PyisolateErrorCode, message: string, error?: ExceptionMap): void {
    const settle = this.#settleStart;
    if (!settle) return;
    this.#settleStart = undefined;
    if (this.#startTimer) clearTimeout(this.#startTimer);
    const r: BrokerStartFailed = { ok: false, code, message };
    if (error) r.error = error;
    settle(r);
  }

  #onExit(status: ExitStatus): void {
    this.#exit = status;
    this.#phase = "exited";
    // A launcher's reason (a lost node) says more than how the connection ended.
    if (status.reason) this.#reason = status.reason;
    const how = status.reason && status.code === null && status.signal === null ? "stopped" : status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
    this.#failStart("PROCESS_FAILED", `The Python process for "${this.#name}" ${how} before it was ready${status.reason ? ` (${status.reason})` : ""}${this.#tailText()}`);
    this.#cleanup();
    if (!this.#exitReported) {
      this.#exitReported = true;
      this.#sink.exit(this.#exitInfo(status));
    }
  }

  #exitInfo(status: ExitStatus): BrokerExit {
    const info: BrokerExit = { code: status.code, signal: status.signal, stderr: [...this.#stderrTail] };
    if (this.#reason !== undefined) info.reason = this.#reason;
    return info;
  }

  #cleanup(): void {
    if (this.#startTimer) clearTimeout(this.#startTimer);
    this.#stopMemoryWatch?.();
    this.#conn?.close();
    // Synchronously: the owner may end this thread right after the exit report.
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
    const server = this.#server;
    this.#server = undefined;
    void server?.close().catch(() => {});
  }
}
