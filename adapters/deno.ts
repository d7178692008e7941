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
import { pump } from "./_shared.ts";
import { webWorkerEndpoint, wrapWebWorker } from "./_web_worker.ts";
import type {
  ChildHandle,
  ExitStatus,
  MappedFile,
  MessageEndpoint,
  Runtime,
  SocketConn,
  SocketServer,
  SpawnOptions,
  WorkerHandle,
} from "../src/runtime/contract.ts";

// --- the slice of the Deno namespace this adapter uses ----------------------------------------

type Pointer = object;

interface DenoChild {
  readonly pid: number;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly status: Promise<{ code: number; signal: string | null }>;
  kill(signal?: string): void;
}

interface DenoConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

interface DenoListener extends AsyncIterable<DenoConn> {
  close(): void;
  unref(): void;
}

interface DenoFile {
  readSync(p: Uint8Array): number | null;
  close(): void;
}

interface LibcSymbols {
  mmap(addr: Pointer | null, length: bigint, prot: number, flags: number, fd: number, offset: bigint): Pointer | null;
  munmap(addr: Pointer | null, length: bigint): number;
  open(path: Uint8Array, flags: number): number;
  close(fd: number): number;
  __errno_location(): Pointer | null;
}

interface DenoNamespace {
  Command: new (
    cmd: string,
    opts: {
      args: string[];
      env?: Record<string, string>;
      clearEnv?: boolean;
      cwd?: string;
      stdin: "null";
      stdout: "piped" | "null";
      stderr: "piped" | "null";
      detached?: boolean;
    },
  ) => { spawn(): DenoChild };
  kill(pid: number, signal: string): void;
  listen(opts: { transport: "unix"; path: string }): DenoListener;
  connect(opts: { transport: "unix"; path: string }): Promise<DenoConn>;
  removeSync(path: string): void;
  statSync(path: string): { size: number };
  openSync(path: string, opts: { read: true }): DenoFile;
  env: { get(name: string): string | undefined };
  build: { os: string };
  permissions: { querySync(desc: { name: string; variable?: string }): { state: string } };
  dlopen(path: string, symbols: Record<string, { parameters: string[]; result: string }>): { symbols: unknown };
  UnsafePointer: { value(p: Pointer | null): bigint | number };
  UnsafePointerView: {
    new (p: Pointer): { getInt32(offset?: number): number };
    getArrayBuffer(p: Pointer, byteLength: number, offset?: number): ArrayBuffer;
  };
  errors: Record<string, new (...args: never[]) => Error>;
}

const Deno = (globalThis as unknown as { Deno: DenoNamespace }).Deno;

// --- processes --------------------------------------------------------------------------------

/** Node-style error codes for the Deno error classes a failed spawn throws. */
const ERROR_CODES: Record<string, string> = { NotFound: "ENOENT", PermissionDenied: "EACCES", NotCapable: "EACCES" };

/** A handle for a process that never started: `exited` rejects with the spawn error. */
function failedChild(err: unknown): ChildHandle {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = ERROR_CODES[e.name];
  if (code) (e as Error & { code?: string }).code = code;
  const exited = Promise.reject(e);
  exited.catch(() => {});
  return { pid: -1, exited, kill() {} };
}

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
    return failedChild(e);
  }
  const drained = Promise.all([
    opts.onStdout ? pump(child.stdout, opts.onStdout) : undefined,
    opts.onStderr ? pump(child.stderr, opts.onStderr) : undefined,
  ]);
  let done = false;
  const exited = Promise.all([child.status, drained]).then(([st]): ExitStatus => {
    done = true;
    // Deno reports a signal death as 128 + signal number together with the signal's name.
    return st.signal !== null ? { code: null, signal: st.signal } : { code: st.code, signal: null };
  });
  const pid = child.pid;
  return {
    pid,
    exited,
    kill(signal = "SIGTERM") {
      if (done) return;
      try {
        if (opts.detachedGroup) Deno.kill(-pid, signal);
        else child.kill(signal);
      } catch {
        // already gone
      }
    },
  };
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
  // Like Node's `server.unref()`: a listening socket alone does not keep the process alive.
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
    path,
    async close() {
      if (!open) return;
      open = false;
      try {
        listener.close();
      } catch {
        // already closed
      }
      try {
        Deno.removeSync(path);
      } catch {
        // already removed
      }
    },
  };
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

// --- shared-memory mapping --------------------------------------------------------------------

let libc: LibcSymbols | null | undefined;

function granted(desc: { name: string; variable?: string }): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

/** libc through FFI, or null where FFI is not permitted (no `--allow-ffi`) or not Linux. */
function loadLibc(): LibcSymbols | null {
  if (libc !== undefined) return libc;
  libc = null;
  // Query first: calling dlopen without the permission would prompt on a terminal.
  if (Deno.build.os !== "linux" || !granted({ name: "ffi" })) return null;
  try {
    libc = Deno.dlopen("libc.so.6", {
      mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
      munmap: { parameters: ["pointer", "usize"], result: "i32" },
      open: { parameters: ["buffer", "i32"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
      __errno_location: { parameters: [], result: "pointer" },
    }).symbols as LibcSymbols;
  } catch {
    libc = null;
  }
  return libc;
}

function errno(lib: LibcSymbols): number {
  const p = lib.__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_PRIVATE = 2;
const MAP_FAILED = 0xffffffffffffffffn;

/** Unmaps mappings whose bytes were collected without an explicit `unmap()`. */
const unmapOnCollect = new FinalizationRegistry<{ ptr: Pointer; length: number }>((m) => {
  loadLibc()?.munmap(m.ptr, BigInt(m.length));
});

function readCopy(path: string, length: number): MappedFile {
  const bytes = new Uint8Array(length);
  const file = Deno.openSync(path, { read: true });
  try {
    let off = 0;
    while (off < length) {
      const n = file.readSync(bytes.subarray(off));
      if (n === null || n === 0) break;
      off += n;
    }
  } finally {
    file.close();
  }
  return { bytes, zeroCopy: false, unmap() {} };
}

/**
 * Maps `length` bytes of a file without copying: libc `mmap` (private and writable, like the
 * Node adapter: reads share the file's pages, writes stay in this process) through FFI, viewed
 * with `Deno.UnsafePointerView.getArrayBuffer`. `unmap()` detaches the buffer (views read as
 * empty from then on instead of touching unmapped memory) and calls `munmap`; a mapping never
 * unmapped is released when its buffer is collected. Without `--allow-ffi`, or with
 * `PYISOLATE_MAPFILE=copy`, reads a copy (`zeroCopy: false`).
 */
function mapFile(path: string, length: number): MappedFile {
  const copyWanted = granted({ name: "env", variable: "PYISOLATE_MAPFILE" }) && Deno.env.get("PYISOLATE_MAPFILE") === "copy";
  const lib = length > 0 && !copyWanted ? loadLibc() : null;
  if (!lib) return readCopy(path, length);
  const size = Deno.statSync(path).size;
  if (size < length) {
    throw new PyisolateError("USAGE", `Cannot map ${length} bytes of "${path}": the file holds only ${size}.`, { file: path });
  }
  const fd = lib.open(new TextEncoder().encode(`${path}\0`), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const code = errno(lib);
    throw new PyisolateError("NOT_FOUND", `Could not open "${path}" to map it (errno ${code}). Check that the file exists and is readable.`, { file: path });
  }
  let ptr: Pointer | null;
  try {
    ptr = lib.mmap(null, BigInt(length), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0n);
    if (ptr === null || BigInt(Deno.UnsafePointer.value(ptr)) === MAP_FAILED) {
      throw new PyisolateError("USAGE", `Could not map ${length} bytes of "${path}" (mmap errno ${errno(lib)}).`, { file: path });
    }
  } finally {
    lib.close(fd);
  }
  const mapping = ptr;
  let buffer: ArrayBuffer = Deno.UnsafePointerView.getArrayBuffer(mapping, length);
  const token = {};
  unmapOnCollect.register(buffer, { ptr: mapping, length }, token);
  let mapped = true;
  return {
    bytes: new Uint8Array(buffer),
    zeroCopy: true,
    unmap() {
      if (!mapped) return;
      mapped = false;
      unmapOnCollect.unregister(token);
      try {
        // Moves the (external) backing store away without copying and detaches `buffer`.
        buffer = (buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer();
      } catch {
        // already detached (transferred elsewhere)
      }
      lib.munmap(mapping, BigInt(length));
    },
  };
}

/** The Deno {@link Runtime}. */
export const runtime: Runtime = { name: "deno", spawn, listenUnix, connectUnix, startWorker, workerSelf, mapFile };
