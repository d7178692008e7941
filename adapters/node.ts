/**
 * The Node.js adapter: `node:child_process`, `node:net`, `node:worker_threads`.
 * @module
 */
import { spawn as nodeSpawn } from "node:child_process";
import { createConnection, createServer, type Socket } from "node:net";
import { openSync, closeSync, fstatSync } from "node:fs";
import { unlink } from "node:fs/promises";
import { createRequire } from "node:module";
import { Worker, parentPort, workerData, isMainThread } from "node:worker_threads";
import { readCopy } from "./_shared.ts";
import { PyisolateError } from "../src/errors.ts";
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

function wrapSocket(sock: Socket): SocketConn {
  sock.setNoDelay?.(true);
  let closed = false;
  const closeCbs: ((err?: Error) => void)[] = [];
  let lastErr: Error | undefined;
  sock.on("error", (err) => {
    lastErr = err;
  });
  sock.on("close", () => {
    if (closed) return;
    closed = true;
    for (const cb of closeCbs) cb(lastErr);
  });
  return {
    write(bytes) {
      if (!sock.destroyed) sock.write(bytes);
    },
    onData(cb) {
      sock.on("data", (chunk: Buffer) => cb(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    },
    onClose(cb) {
      closeCbs.push(cb);
    },
    close() {
      // Queued bytes go out first, as on Deno and Bun; the peer then sees the end of stream.
      sock.end();
    },
  };
}

/** How long output may keep flowing after the process exited before the exit is reported anyway. */
const DRAIN_AFTER_EXIT_MS = 2_000;

function spawn(opts: SpawnOptions): ChildHandle {
  const child = nodeSpawn(opts.cmd, [...opts.args], {
    env: opts.env ?? (process.env as Record<string, string>),
    cwd: opts.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    detached: opts.detachedGroup ?? false,
  });
  if (opts.unref) {
    child.unref();
    (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
  }
  const onOut = opts.onStdout;
  const onErr = opts.onStderr;
  child.stdout!.on("data", (c: Buffer) => onOut?.(new Uint8Array(c.buffer, c.byteOffset, c.byteLength)));
  child.stderr!.on("data", (c: Buffer) => onErr?.(new Uint8Array(c.buffer, c.byteOffset, c.byteLength)));
  const exited = new Promise<ExitStatus>((resolve, reject) => {
    child.once("error", (err) => {
      // ENOENT and friends: the process never started.
      if (child.pid === undefined) reject(err);
    });
    child.once("close", (code, signal) => resolve({ code, signal }));
    // A process of its own that outlives it may hold the output pipes open: the exit counts
    // once they drain, or shortly after the exit whatever they do.
    child.once("exit", (code, signal) => {
      const t = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolve({ code, signal });
      }, DRAIN_AFTER_EXIT_MS);
      t.unref();
      child.once("close", () => clearTimeout(t));
    });
  });
  // A spawn error is delivered through `exited`; keep it from surfacing as unhandled.
  exited.catch(() => {});
  let done = false;
  void exited.then(
    () => (done = true),
    () => (done = true),
  );
  return {
    get pid() {
      return child.pid ?? -1;
    },
    exited,
    kill(signal = "SIGTERM") {
      if (done || child.pid === undefined) return;
      try {
        if (opts.detachedGroup) process.kill(-child.pid, signal as NodeJS.Signals);
        else child.kill(signal as NodeJS.Signals);
      } catch {
        // already gone
      }
    },
  };
}

function listenUnix(path: string, onConnection: (conn: SocketConn) => void): Promise<SocketServer> {
  return new Promise((resolve, reject) => {
    const server = createServer((sock) => onConnection(wrapSocket(sock)));
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      server.unref();
      resolve({
        path,
        close: () =>
          new Promise<void>((res) => {
            server.close(() => res());
            unlink(path).catch(() => {});
          }),
      });
    });
  });
}

function listenTcp(host: string, port: number, onConnection: (conn: SocketConn) => void): Promise<SocketServer> {
  return new Promise((resolve, reject) => {
    const server = createServer((sock) => onConnection(wrapSocket(sock)));
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      server.unref();
      const bound = (server.address() as { port: number }).port;
      resolve({ path: `tcp:${host}:${bound}`, port: bound, close: () => new Promise<void>((res) => server.close(() => res())) });
    });
  });
}

function connectUnix(path: string): Promise<SocketConn> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    sock.once("error", reject);
    sock.once("connect", () => {
      sock.off("error", reject);
      resolve(wrapSocket(sock));
    });
  });
}

type Listener = (ev: { data: unknown }) => void;

/** Adapts Node's EventEmitter-style port to the DOM-style {@link MessageEndpoint}. */
function endpointOf(port: { postMessage(m: unknown, t?: readonly unknown[]): void; on(e: "message", l: (d: unknown) => void): unknown; off(e: "message", l: (d: unknown) => void): unknown }): MessageEndpoint {
  const wrapped = new WeakMap<Listener, (d: unknown) => void>();
  return {
    postMessage: (m, t) => port.postMessage(m, t as readonly unknown[] | undefined),
    addEventListener(_type, listener) {
      const w = (data: unknown) => listener({ data });
      wrapped.set(listener, w);
      port.on("message", w);
    },
    removeEventListener(_type, listener) {
      const w = wrapped.get(listener);
      if (w) port.off("message", w);
    },
  };
}

function startWorker(url: URL, data: unknown): WorkerHandle {
  const w = new Worker(url, { workerData: data });
  const ep = endpointOf(w as never);
  let terminating = false;
  return {
    ...ep,
    terminate: async () => {
      terminating = true;
      await w.terminate();
    },
    unref: () => w.unref(),
    onError(cb) {
      w.on("error", (err) => cb(err instanceof Error ? err : new Error(String(err))));
      w.on("exit", (code) => {
        if (!terminating) cb(new Error(`the worker exited with code ${code}`));
      });
    },
  };
}

function workerSelf(): { endpoint: MessageEndpoint; data: unknown } | null {
  if (isMainThread || !parentPort) return null;
  return { endpoint: endpointOf(parentPort as never), data: workerData };
}

interface Mmap {
  map(fd: number, length: number): { ptr: unknown; buffer: ArrayBuffer };
  unmap(ptr: unknown, length: number): void;
}

let mmapLib: Mmap | null | undefined;

/** libc's mmap/munmap through koffi, or null where koffi (an optional dependency) is missing. */
function loadMmap(): Mmap | null {
  if (mmapLib !== undefined) return mmapLib;
  mmapLib = null;
  const g = globalThis as Record<string, unknown>;
  // koffi is only relied on under Node: Deno and Bun have their own adapters (adapters/deno.ts,
  // adapters/bun.ts); should this one run there anyway, mapFile reads a copy.
  if (g.Deno !== undefined || g.Bun !== undefined || process.platform !== "linux") return null;
  try {
    const koffi = createRequire(import.meta.url)("koffi") as {
      load(name: string): { func(decl: string): (...args: unknown[]) => unknown };
      view(ptr: unknown, len: number): ArrayBuffer;
      address(ptr: unknown): bigint;
      errno(): number;
    };
    const libc = koffi.load("libc.so.6");
    const mmap = libc.func("void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)");
    const munmap = libc.func("int munmap(void *addr, size_t length)");
    const PROT_READ = 1;
    const PROT_WRITE = 2;
    const MAP_PRIVATE = 2;
    const MAP_FAILED = 0xffffffffffffffffn;
    mmapLib = {
      map(fd, length) {
        // Private and writable: reads share the file's pages; a write lands in a private copy
        // and never reaches the file (nor crashes, as a read-only mapping would).
        const ptr = mmap(null, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (ptr === null || koffi.address(ptr) === MAP_FAILED) {
          const err = new Error(`mmap of ${length} bytes failed (errno ${koffi.errno()})`) as Error & { code?: string };
          err.code = "EMMAP";
          throw err;
        }
        return { ptr, buffer: koffi.view(ptr, length) };
      },
      unmap(ptr, length) {
        munmap(ptr, length);
      },
    };
  } catch {
    mmapLib = null;
  }
  return mmapLib;
}

/** Unmaps mappings whose bytes were collected without an explicit `unmap()`. */
const unmapOnCollect = new FinalizationRegistry<{ ptr: unknown; length: number }>((m) => loadMmap()?.unmap(m.ptr, m.length));

/**
 * Maps `length` bytes of a file without copying, through libc's mmap via koffi (a private
 * mapping: writes into `bytes` stay in this process). Without koffi, or with
 * `PYISOLATE_MAPFILE=copy`, reads a copy (`zeroCopy: false`). After `unmap()`, `bytes` must not
 * be touched; a mapping never unmapped is released when `bytes` is collected.
 */
function mapFile(path: string, length: number): MappedFile {
  const lib = length > 0 && process.env.PYISOLATE_MAPFILE !== "copy" ? loadMmap() : null;
  if (!lib) return readCopy(path, length);
  const fd = openSync(path, "r");
  let mapping: { ptr: unknown; buffer: ArrayBuffer };
  try {
    // A mapping past the end of the file would kill the process with SIGBUS on first touch.
    const size = fstatSync(fd).size;
    if (size < length) {
      throw new PyisolateError("USAGE", `Cannot map ${length} bytes of "${path}": the file holds only ${size}.`, { file: path });
    }
    mapping = lib.map(fd, length);
  } finally {
    closeSync(fd);
  }
  const bytes = new Uint8Array(mapping.buffer, 0, length);
  const token = {};
  unmapOnCollect.register(mapping.buffer, { ptr: mapping.ptr, length }, token);
  let mapped = true;
  return {
    bytes,
    zeroCopy: true,
    unmap() {
      if (!mapped) return;
      mapped = false;
      unmapOnCollect.unregister(token);
      lib.unmap(mapping.ptr, length);
    },
  };
}

/** Starts an HTTP + WebSocket server (`_serve_node.ts`, loaded when first used). */
async function serveHttp(opts: HttpServeOptions): Promise<HttpServer> {
  return (await import("./_serve_node.ts")).serveHttp(opts);
}

/** The Node.js {@link Runtime}. */
export const runtime: Runtime = { name: "node", spawn, listenUnix, connectUnix, listenTcp, startWorker, workerSelf, mapFile, serveHttp };
