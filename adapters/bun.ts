/**
 * The Bun adapter, on Bun's own APIs:
 *
 * - processes: `Bun.spawn` (stdin ignored, stdout/stderr piped and streamed); `detachedGroup`
 *   uses Bun's `detached` option (`setsid`: a process group of its own) and group kills go to
 *   `process.kill(-pid, signal)`;
 * - Unix sockets: `Bun.listen` / `Bun.connect` with `unix`; `socket.write` writes what the
 *   kernel takes at once, so the rest is queued and written on `drain`;
 * - workers: web `Worker`s with Bun's `workerData` option for the start-up data; `unref()` is
 *   Bun's own; posts wait until the worker has called `workerSelf()` (see `_web_worker.ts`);
 * - `mapFile`: `Bun.mmap` (private mapping, zero-copy).
 * @module
 */
import { unlinkSync } from "node:fs";
import { workerData } from "node:worker_threads";
import { PyisolateError } from "../src/errors.ts";
import { failedChild, readCopy, streamChildHandle } from "./_shared.ts";
import { webWorkerEndpoint, wrapWebWorker } from "./_web_worker.ts";
import type {
  ChildHandle,
  ExitStatus,
  HttpServeOptions,
  HttpServer,
  MappedFile,
  MessageEndpoint,
  Runtime,
  SocketConn,
  SocketServer,
  SpawnOptions,
  WorkerHandle,
} from "../src/runtime/contract.ts";

// --- the slice of the Bun namespace this adapter uses -----------------------------------------

interface BunSubprocess {
  readonly pid: number;
  readonly stdout: ReadableStream<Uint8Array> | number | undefined;
  readonly stderr: ReadableStream<Uint8Array> | number | undefined;
  readonly exited: Promise<number>;
  readonly exitCode: number | null;
  readonly signalCode: string | null;
  kill(signal?: string | number): void;
  unref(): void;
}

interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
}

interface SocketHandlers {
  open?(s: BunSocket): void;
  data(s: BunSocket, data: Uint8Array): void;
  drain(s: BunSocket): void;
  close(s: BunSocket, err?: Error): void;
  end(s: BunSocket): void;
  error(s: BunSocket, err: Error): void;
}

interface BunNamespace {
  spawn(opts: {
    cmd: string[];
    env: Record<string, string>;
    cwd?: string;
    stdin: "ignore";
    stdout: "pipe" | "ignore";
    stderr: "pipe" | "ignore";
    detached?: boolean;
  }): BunSubprocess;
  listen(opts: { unix: string; socket: SocketHandlers } | { hostname: string; port: number; socket: SocketHandlers }): { stop(closeActive?: boolean): void; unref(): void; readonly port?: number };
  connect(opts: { unix: string; socket: SocketHandlers }): Promise<BunSocket>;
  mmap(path: string, opts?: { shared?: boolean }): Uint8Array;
  readonly isMainThread: boolean;
  readonly env: Record<string, string | undefined>;
}

const Bun = (globalThis as unknown as { Bun: BunNamespace }).Bun;

// --- processes --------------------------------------------------------------------------------

/** A subprocess stream as a web stream, or null where it was not piped. */
function streamOf(stream: BunSubprocess["stdout"]): ReadableStream<Uint8Array> | null {
  return !stream || typeof stream === "number" ? null : (stream as ReadableStream<Uint8Array>);
}

function spawn(opts: SpawnOptions): ChildHandle {
  let proc: BunSubprocess;
  try {
    proc = Bun.spawn({
      cmd: [opts.cmd, ...opts.args],
      // Bun's default is the environment it started with; Node's, the current one.
      env: opts.env ?? (process.env as Record<string, string>),
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      stdin: "ignore",
      stdout: opts.onStdout ? "pipe" : "ignore",
      stderr: opts.onStderr ? "pipe" : "ignore",
      detached: opts.detachedGroup ?? false,
    });
  } catch (e) {
    // ENOENT and friends: the process never started (Bun sets Node's error codes).
    return failedChild(e);
  }
  const pid = proc.pid;
  if (opts.unref) proc.unref();
  return streamChildHandle(opts, {
    pid,
    stdout: streamOf(proc.stdout),
    stderr: streamOf(proc.stderr),
    status: proc.exited.then((): ExitStatus => (proc.signalCode !== null ? { code: null, signal: proc.signalCode } : { code: proc.exitCode, signal: null })),
    kill: (signal) => proc.kill(signal),
    killGroup: (signal) => process.kill(-pid, signal as NodeJS.Signals),
  });
}

// --- Unix sockets -----------------------------------------------------------------------------

/** One Bun socket seen through the {@link SocketConn} contract. */
class Conn {
  readonly #s: BunSocket;
  #closed = false;
  #closedByUs = false;
  #closeCbs: ((err?: Error) => void)[] = [];
  #dataCb: ((chunk: Uint8Array) => void) | undefined;
  /** Chunks that arrived before a data handler was registered. */
  #early: Uint8Array[] = [];
  /** Bytes `write` could not hand to the kernel yet, in order. */
  #queue: Uint8Array[] = [];
  #lastErr: Error | undefined;

  constructor(s: BunSocket) {
    this.#s = s;
  }

  readonly api: SocketConn = {
    write: (bytes) => this.#write(bytes),
    onData: (cb) => {
      if (this.#dataCb) throw new PyisolateError("USAGE", "A socket connection takes one data handler; onData was called twice.");
      this.#dataCb = cb;
      const early = this.#early;
      this.#early = [];
      for (const c of early) cb(c);
    },
    onClose: (cb) => {
      this.#closeCbs.push(cb);
    },
    close: () => {
      if (this.#closed || this.#closedByUs) return;
      this.#closedByUs = true;
      // Queued bytes go out first (`drain` ends the socket once they have).
      if (this.#queue.length === 0) this.#end();
    },
  };

  #write(bytes: Uint8Array): void {
    if (this.#closed || this.#closedByUs || bytes.length === 0) return;
    if (this.#queue.length > 0) {
      this.#queue.push(bytes);
      return;
    }
    const n = this.#s.write(bytes);
    if (n < bytes.length) this.#queue.push(bytes.subarray(Math.max(n, 0)));
  }

  /** The kernel takes more: write what was queued, as far as it goes. */
  drain(): void {
    while (this.#queue.length > 0 && !this.#closed) {
      const b = this.#queue[0]!;
      const n = this.#s.write(b);
      if (n < b.length) {
        this.#queue[0] = b.subarray(Math.max(n, 0));
        return;
      }
      this.#queue.shift();
    }
    if (this.#closedByUs) this.#end();
  }

  #end(): void {
    this.#s.end();
    // Bun calls the close handler now or later; report the close either way, once.
    this.closed();
  }

  data(chunk: Uint8Array): void {
    if (this.#closedByUs) return;
    if (this.#dataCb) this.#dataCb(chunk);
    else this.#early.push(chunk);
  }

  error(err: Error): void {
    this.#lastErr = err;
  }

  closed(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    const e = this.#closedByUs ? undefined : (err ?? this.#lastErr);
    for (const cb of this.#closeCbs) cb(e);
  }
}

/** Socket handlers that route Bun's per-socket callbacks to their {@link Conn}. */
function handlers(conns: WeakMap<BunSocket, Conn>, onOpen?: (conn: Conn) => void): SocketHandlers {
  const get = (s: BunSocket): Conn => {
    let c = conns.get(s);
    if (!c) {
      c = new Conn(s);
      conns.set(s, c);
      onOpen?.(c);
    }
    return c;
  };
  return {
    open: (s) => void get(s),
    data: (s, d) => get(s).data(d),
    drain: (s) => get(s).drain(),
    // The peer ended its side: close ours too (as Node does without allowHalfOpen).
    end: (s) => s.end(),
    error: (s, e) => get(s).error(e),
    close: (s, e) => conns.get(s)?.closed(e ?? undefined),
  };
}

async function listenUnix(path: string, onConnection: (conn: SocketConn) => void): Promise<SocketServer> {
  const conns = new WeakMap<BunSocket, Conn>();
  const listener = Bun.listen({ unix: path, socket: handlers(conns, (c) => onConnection(c.api)) });
  // Like Node's `server.unref()`: a listening socket alone does not keep the process alive.
  listener.unref();
  let open = true;
  return {
    path,
    async close() {
      if (!open) return;
      open = false;
      // Stops accepting; connections already accepted stay open (as with Node's server.close).
      listener.stop(false);
      try {
        unlinkSync(path);
      } catch {
        // already removed
      }
    },
  };
}

async function listenTcp(host: string, port: number, onConnection: (conn: SocketConn) => void): Promise<SocketServer> {
  const conns = new WeakMap<BunSocket, Conn>();
  const listener = Bun.listen({ hostname: host, port, socket: handlers(conns, (c) => onConnection(c.api)) });
  listener.unref();
  const bound = listener.port ?? port;
  let open = true;
  return {
    path: `tcp:${host}:${bound}`,
    port: bound,
    async close() {
      if (!open) return;
      open = false;
      listener.stop(false);
    },
  };
}

async function connectUnix(path: string): Promise<SocketConn> {
  const conns = new WeakMap<BunSocket, Conn>();
  const s = await Bun.connect({ unix: path, socket: handlers(conns) });
  let c = conns.get(s);
  if (!c) {
    c = new Conn(s);
    conns.set(s, c);
  }
  return c.api;
}

// --- workers ----------------------------------------------------------------------------------

/**
 * Starts a module worker; `data` reaches it through Bun's `workerData` option (structured
 * clone). Messages posted before the worker has called `runtime.workerSelf()` wait for it.
 */
function startWorker(url: URL, data: unknown): WorkerHandle {
  const w = new Worker(url, { type: "module", workerData: data } as WorkerOptions);
  let closed = false;
  w.addEventListener("close", () => (closed = true));
  return wrapWebWorker(w, {
    terminate: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        w.addEventListener("close", () => resolve(), { once: true });
        w.terminate();
      }),
    unref: () => (w as Worker & { unref(): void }).unref(),
  });
}

function workerSelf(): { endpoint: MessageEndpoint; data: unknown } | null {
  if (Bun.isMainThread) return null;
  return { endpoint: webWorkerEndpoint(), data: workerData ?? null };
}

// --- shared-memory mapping --------------------------------------------------------------------

/**
 * Maps a file without copying with `Bun.mmap` (`shared: false`: a private mapping, so writes
 * into `bytes` stay in this process). Bun maps the whole file; `bytes` is its first `length`
 * bytes. Bun offers no explicit unmap: the mapping is released when the garbage collector frees
 * the buffer, so `unmap()` only marks the view as no longer in use. The file must never be
 * truncated while mapped (Bun then dies of SIGBUS on access). With `PYISOLATE_MAPFILE=copy`,
 * reads a copy (`zeroCopy: false`).
 */
function mapFile(path: string, length: number): MappedFile {
  if (length === 0 || Bun.env.PYISOLATE_MAPFILE === "copy") return readCopy(path, length);
  const whole = Bun.mmap(path, { shared: false });
  if (whole.byteLength < length) {
    throw new PyisolateError("USAGE", `Cannot map ${length} bytes of "${path}": the file holds only ${whole.byteLength}.`, { file: path });
  }
  return { bytes: whole.subarray(0, length), zeroCopy: true, unmap() {} };
}

/** Starts an HTTP + WebSocket server (`_serve_bun.ts`, loaded when first used). */
async function serveHttp(opts: HttpServeOptions): Promise<HttpServer> {
  return (await import("./_serve_bun.ts")).serveHttp(opts);
}

/** The Bun {@link Runtime}. */
export const runtime: Runtime = { name: "bun", spawn, listenUnix, connectUnix, listenTcp, startWorker, workerSelf, mapFile, serveHttp };
