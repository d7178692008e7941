/**
 * The Deno adapter, on Deno's own APIs:
 *
 * - processes: `Deno.Command(...).spawn()` (stdin `"null"`, stdout/stderr piped and streamed);
 *   `detachedGroup` uses Deno's `detached` option, which starts the child in a session and
 *   process group of its own (`setsid`), and group kills go to `Deno.kill(-pid, signal)`;
 * - Unix sockets: `Deno.listen` / `Deno.connect` with `transport: "unix"`, a read loop feeding
 *   `onData`, and a write queue that finishes partial writes;
 * - workers: web `Worker`s (`type: "module"`); the start-up data travels JSON-encoded in the
 *   worker's `name` and is read back from `self.name`; Deno workers have no `unref`;
 * - `mapFile`: libc `mmap` through FFI (`Deno.dlopen`), viewed without copying with
 *   `Deno.UnsafePointerView.getArrayBuffer`; a copying read without `--allow-ffi`.
 *
 * Deno permissions: the adapter needs `--allow-run` (spawn), `--allow-read`/`--allow-write`/
 * `--allow-net` (Unix sockets), `--allow-ffi` (zero-copy mapping; optional) — `-A` grants all,
 * and Deno opens files under `/dev` (so `/dev/shm`) only with `-A`.
 * @module
 */
import { PyisolateError } from "../src/errors.ts";
import { failedChild, streamChildHandle } from "./_shared.ts";
import { Deno, type DenoChild, type DenoConn, type DenoListener } from "./_deno_api.ts";
import { mapFile } from "./_deno_mmap.ts";
import { webWorkerEndpoint, wrapWebWorker } from "./_web_worker.ts";
import type {
  ChildHandle,
  ExitStatus,
  HttpServeOptions,
  HttpServer,
  MessageEndpoint,
  Runtime,
  SocketConn,
  SocketServer,
  SpawnOptions,
  WorkerHandle,
} from "../src/runtime/contract.ts";


// --- processes --------------------------------------------------------------------------------

/** Node-style error codes for the Deno error classes a failed spawn throws. */
const ERROR_CODES: Record<string, string> = { NotFound: "ENOENT", PermissionDenied: "EACCES", NotCapable: "EACCES" };

function spawn(opts: SpawnOptions): ChildHandle {
  let child: DenoChild;
  try {
    child = new Deno.Command(opts.cmd, {
      args: [...opts.args],
      ...(opts.env ? { env: opts.env, clearEnv: true } : {}),
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      stdin: "null",
      stdout: opts.onStdout ? "piped" : "null",
      stderr: opts.onStderr ? "piped" : "null",
      detached: opts.detachedGroup ?? false,
    }).spawn();
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const code = ERROR_CODES[err.name];
    if (code) (err as Error & { code?: string }).code = code;
    return failedChild(err);
  }
  const pid = child.pid;
  if (opts.unref) child.unref();
  return streamChildHandle(opts, {
    pid,
    stdout: opts.onStdout ? child.stdout : null,
    stderr: opts.onStderr ? child.stderr : null,
    // Deno reports a signal death as 128 + signal number together with the signal's name.
    status: child.status.then((st): ExitStatus => (st.signal !== null ? { code: null, signal: st.signal } : { code: st.code, signal: null })),
    kill: (signal) => child.kill(signal),
    killGroup: (signal) => Deno.kill(-pid, signal),
  });
}

// --- Unix sockets -----------------------------------------------------------------------------

/** Bytes asked for per read: large enough that a multi-MiB frame needs few reads. */
const READ_SIZE = 256 * 1024;

/**
 * A Deno connection as a {@link SocketConn}: a read loop started by `onData`, and a write queue
 * (`conn.write` may take part of a buffer). `close()` lets queued bytes go out first, then
 * closes; data arriving after `close()` is dropped.
 */
function wrapConn(conn: DenoConn): SocketConn {
  let closed = false;
  let closing = false;
  const closeCbs: ((err?: Error) => void)[] = [];
  const queue: Uint8Array[] = [];
  let writing = false;
  let reading = false;

  const finish = (err?: Error): void => {
    if (closed) return;
    closed = true;
    queue.length = 0;
    try {
      conn.close();
    } catch {
      // already closed
    }
    for (const cb of closeCbs) cb(closing ? undefined : err);
  };

  async function readLoop(cb: (chunk: Uint8Array) => void): Promise<void> {
    let buf = new Uint8Array(READ_SIZE);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (e) {
        finish(e as Error);
        return;
      }
      if (n === null) {
        finish();
        return;
      }
      if (closing) continue;
      // Hand over a large read as it is (and read into a fresh buffer); copy a small one.
      let chunk: Uint8Array;
      if (n >= READ_SIZE / 2) {
        chunk = buf.subarray(0, n);
        buf = new Uint8Array(READ_SIZE);
      } else {
        chunk = buf.slice(0, n);
      }
      cb(chunk);
    }
  }

  async function flush(): Promise<void> {
    writing = true;
    try {
      while (queue.length > 0 && !closed) {
        let b = queue[0]!;
        while (b.length > 0) b = b.subarray(await conn.write(b));
        queue.shift();
      }
    } catch (e) {
      finish(e as Error);
    } finally {
      writing = false;
    }
    if (closing) finish();
  }

  return {
    write(bytes) {
      if (closed || closing || bytes.length === 0) return;
      queue.push(bytes);
      if (!writing) void flush();
    },
    onData(cb) {
      if (reading) throw new PyisolateError("USAGE", "A socket connection takes one data handler; onData was called twice.");
      reading = true;
      void readLoop(cb);
    },
    onClose(cb) {
      closeCbs.push(cb);
    },
    close() {
      if (closed || closing) return;
      closing = true;
      if (!writing) finish();
    },
  };
}

async function listenUnix(path: string, onConnection: (conn: SocketConn) => void): Promise<SocketServer> {
  const listener = Deno.listen({ transport: "unix", path });
  return serve(listener, onConnection, { path }, () => {
    try {
      Deno.removeSync(path);
    } catch {
      // already removed
    }
  });
}

/**
 * Accepts every connection of `listener` and gives it to `onConnection`; the server's `close()`
 * closes the listener once, then runs `after`. Like Node's `server.unref()`, a listening
 * socket alone does not keep the process alive.
 */
function serve(listener: DenoListener, onConnection: (conn: SocketConn) => void, where: { path: string; port?: number }, after?: () => void): SocketServer {
  listener.unref();
  void (async () => {
    try {
      for await (const conn of listener) onConnection(wrapConn(conn));
    } catch {
      // the listener was closed
    }
  })();
  let open = true;
  return {
    ...where,
    async close() {
      if (!open) return;
      open = false;
      try {
        listener.close();
      } catch {
        // already closed
      }
      after?.();
    },
  };
}

async function listenTcp(host: string, port: number, onConnection: (conn: SocketConn) => void): Promise<SocketServer> {
  const listener = Deno.listen({ transport: "tcp", hostname: host, port });
  const bound = (listener as unknown as { addr: { port: number } }).addr.port;
  return serve(listener, onConnection, { path: `tcp:${host}:${bound}`, port: bound });
}

async function connectUnix(path: string): Promise<SocketConn> {
  return wrapConn(await Deno.connect({ transport: "unix", path }));
}

// --- workers ----------------------------------------------------------------------------------

/** Marks a worker name that carries start-up data (JSON after the prefix). */
const DATA_PREFIX = "pyisolate-worker-data:";

/**
 * Starts a module worker. Deno workers take no start-up data, so `data` travels JSON-encoded in
 * the worker's `name` (it must be JSON-serialisable). `unref()` does nothing: a Deno worker
 * keeps the process alive until it is terminated. Messages posted before the worker has called
 * `runtime.workerSelf()` wait for it.
 */
function startWorker(url: URL, data: unknown): WorkerHandle {
  let json: string;
  try {
    json = JSON.stringify(data ?? null);
  } catch (e) {
    throw new PyisolateError("USAGE", `The start-up data of worker ${url.href} cannot be sent to a Deno worker: ${(e as Error).message}. Pass JSON-serialisable data.`, { cause: e });
  }
  const w = new Worker(url, { type: "module", name: DATA_PREFIX + json });
  return wrapWebWorker(w, { terminate: async () => w.terminate(), unref() {} });
}

function workerSelf(): { endpoint: MessageEndpoint; data: unknown } | null {
  const g = globalThis as unknown as { WorkerGlobalScope?: abstract new () => unknown; name?: string };
  if (typeof g.WorkerGlobalScope !== "function" || !(globalThis instanceof g.WorkerGlobalScope)) return null;
  const name = g.name ?? "";
  const data: unknown = name.startsWith(DATA_PREFIX) ? JSON.parse(name.slice(DATA_PREFIX.length)) : null;
  return { endpoint: webWorkerEndpoint(), data };
}

/** Starts an HTTP + WebSocket server (`_serve_deno.ts`, loaded when first used). */
async function serveHttp(opts: HttpServeOptions): Promise<HttpServer> {
  return (await import("./_serve_deno.ts")).serveHttp(opts);
}

/** The Deno {@link Runtime}. */
export const runtime: Runtime = { name: "deno", spawn, listenUnix, connectUnix, listenTcp, startWorker, workerSelf, mapFile, serveHttp };
