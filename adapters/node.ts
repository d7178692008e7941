/**
 * The Node.js adapter: `node:child_process`, `node:net`, `node:worker_threads`.
 * @module
 */
import { spawn as nodeSpawn } from "node:child_process";
import { createConnection, createServer, type Socket } from "node:net";
import { readSync, openSync, closeSync } from "node:fs";
import { unlink } from "node:fs/promises";
import { Worker, parentPort, workerData, isMainThread } from "node:worker_threads";
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
} from "../src/runtime.ts";

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
      sock.destroy();
    },
  };
}

function spawn(opts: SpawnOptions): ChildHandle {
  const child = nodeSpawn(opts.cmd, [...opts.args], {
    env: opts.env ?? (process.env as Record<string, string>),
    cwd: opts.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    detached: opts.detachedGroup ?? false,
  });
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

/** Adapts Node's EventEmitter-style port to the DOM-style endpoint Comlink expects. */
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
  return {
    ...ep,
    terminate: async () => {
      await w.terminate();
    },
    unref: () => w.unref(),
  };
}

function workerSelf(): { endpoint: MessageEndpoint; data: unknown } | null {
  if (isMainThread || !parentPort) return null;
  return { endpoint: endpointOf(parentPort as never), data: workerData };
}

/** Node has no built-in mmap: this reads a copy. The tensors issue adds a zero-copy path. */
function mapFile(path: string, length: number): MappedFile {
  const fd = openSync(path, "r");
  try {
    const bytes = new Uint8Array(length);
    let off = 0;
    while (off < length) {
      const n = readSync(fd, bytes, off, length - off, off);
      if (n === 0) break;
      off += n;
    }
    return { bytes, zeroCopy: false, unmap() {} };
  } finally {
    closeSync(fd);
  }
}

/** The Node.js {@link Runtime}. */
export const runtime: Runtime = { name: "node", spawn, listenUnix, connectUnix, startWorker, workerSelf, mapFile };
