/**
 * The main thread's link to the broker of one Python process: a worker of its own (the
 * default), driven through one {@link Channel}, or a {@link BrokerCore} on the calling thread
 * (`broker: "inline"`). Either way the owner sees the same {@link BrokerLink}.
 * @module
 */
import { PyisolateError } from "../errors.ts";
import { brokerWorkerUrl } from "../paths.ts";
import type { Runtime, WorkerHandle } from "../runtime/contract.ts";
import { Channel } from "../rpc/channel.ts";
import type { BrokerExit, BrokerSink, BrokerStartFailed, BrokerStartOptions, BrokerStarted, Launcher } from "../../workers/broker_core.ts";
import { START_MARGIN_MS, STOP_MARGIN_MS, type BrokerMainHandlers } from "../../workers/broker_api.ts";

/** Where a process's broker runs. */
export type BrokerMode = "worker" | "inline";

/** The broker as the main thread drives it, wherever it runs. */
export interface BrokerLink {
  /** Spawns the process; resolves once it is ready or has failed to start. */
  start(opts: BrokerStartOptions): Promise<BrokerStarted | BrokerStartFailed>;
  /** Writes one whole frame (length prefix included); the buffer is the link's to keep. */
  send(frame: Uint8Array): void;
  /** Stops the process (`bye`, SIGTERM, SIGKILL, each after `graceMs`); `null` when the broker could not say how it ended. */
  stop(graceMs: number): Promise<BrokerExit | null>;
  /** Sends a signal to the process group. */
  kill(signal: string): void;
  /** Ends the broker (its worker, if any). Idempotent. */
  dispose(): Promise<void>;
}

/** One idle broker worker per runtime and module, started after one is taken, so that the next process start does not wait for a worker to boot. */
const spares = new Map<string, WorkerHandle>();

/**
 * A started worker for `url`: the spare when there is one, else a new one. A spare is kept
 * only where workers can be unref'd (Node, Bun), so that it never keeps the host alive.
 */
function takeWorker(rt: Runtime, url: URL, data: unknown): WorkerHandle {
  if (data !== null || rt.name === "deno") return rt.startWorker(url, data);
  const key = `${rt.name} ${url.href}`;
  const spare = spares.get(key);
  spares.delete(key);
  setTimeout(() => {
    if (spares.has(key)) return;
    const next = rt.startWorker(url, null);
    next.unref();
    next.onError(() => {
      if (spares.get(key) === next) spares.delete(key);
    });
    spares.set(key, next);
  }, 0);
  return spare ?? rt.startWorker(url, data);
}

/** A broker on the calling thread; with a `launcher`, its process starts where that puts it (a Ray actor). */
export async function inlineLink(rt: Runtime, sink: BrokerSink, launcher?: Launcher): Promise<BrokerLink> {
  const { BrokerCore } = await import("../../workers/broker_core.ts");
  const core = new BrokerCore(rt, sink, launcher);
  return {
    start: (opts) => core.start(opts),
    send: (frame) => core.send(frame),
    stop: (g) => core.stop(g),
    kill: (s) => core.kill(s),
    dispose: async () => {},
  };
}

/**
 * A broker in a worker of its own. A worker that fails (its code did not load, it crashed)
 * closes the channel, so a pending `start` or `stop` rejects with `PROCESS_FAILED` instead of
 * waiting for an answer that cannot come, and a started process is reported as exited.
 *
 * @param name the process, named in errors.
 * @param url the worker's module. @default the broker worker
 * @param data the worker's start-up data. @default null
 */
export function workerLink(rt: Runtime, sink: BrokerSink, name: string, url: URL = brokerWorkerUrl(rt.name), data: unknown = null): BrokerLink {
  const worker = takeWorker(rt, url, data);
  worker.unref();
  const events: BrokerMainHandlers = {
    lines: (stream, lines) => sink.lines(stream, lines),
    spawned: (pid, socketDir) => sink.spawned(pid, socketDir),
    exit: (info) => sink.exit(info),
  };
  const channel = new Channel(worker, {
    name: `the broker worker of "${name}"`,
    handlers: events as unknown as Record<string, (...args: any[]) => unknown>,
    defaultTimeoutMs: 0,
    onData: (data) => sink.frames(Array.isArray(data) ? data.map((b) => new Uint8Array(b)) : [new Uint8Array(data)]),
  });
  let disposed = false;
  let started = false;
  worker.onError((err) => {
    if (disposed || channel.closed) return;
    channel.close("PROCESS_FAILED", `the worker died: ${err.message}`);
    if (started) sink.exit({ code: null, signal: null, stderr: [], reason: `the broker worker died: ${err.message}` });
  });
  return {
    async start(opts) {
      if (disposed) throw new PyisolateError("USAGE", "The broker worker was already disposed.");
      const r = await channel.call<BrokerStarted | BrokerStartFailed>("start", [opts], { timeoutMs: opts.startTimeoutMs + START_MARGIN_MS });
      started = true;
      return r;
    },
    send(frame) {
      const own = frame.byteOffset === 0 && frame.byteLength === frame.buffer.byteLength ? frame : frame.slice();
      channel.send(own.buffer as ArrayBuffer);
    },
    stop: (g) => channel.call<BrokerExit | null>("stop", [g], { timeoutMs: 2 * g + STOP_MARGIN_MS }),
    kill(s) {
      channel.event("kill", [s]);
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      channel.close("USAGE", "the broker worker was disposed");
      await worker.terminate();
    },
  };
}
