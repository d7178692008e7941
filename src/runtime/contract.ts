/**
 * The `Runtime` contract: everything pyisolate needs from the JavaScript runtime that the
 * portable `node:` modules do not give all three runtimes alike. One file per runtime under
 * `adapters/` fills it; nothing outside `adapters/` touches `Deno.` or `Bun.`.
 *
 * Plain file-system, path, crypto and os work uses `node:fs`, `node:path`, … which Node,
 * Deno and Bun all provide; the contract covers processes, Unix sockets, workers,
 * shared-memory mapping and an HTTP + WebSocket server, where each runtime has its own
 * native API.
 *
 * @module
 */
import type { Hooks as WebSocketHooks } from "crossws";

export type { WebSocketHooks };

/** Options for {@link Runtime.spawn}. */
export interface SpawnOptions {
  /** Executable to run (a path, or a name looked up on PATH). */
  cmd: string;
  /** Arguments, without the executable. */
  args: readonly string[];
  /** The child's full environment. @default the parent's environment */
  env?: Record<string, string>;
  /** Working directory. @default the parent's working directory */
  cwd?: string;
  /** Called with each chunk the child writes to stdout. When absent, stdout is discarded. */
  onStdout?: (chunk: Uint8Array) => void;
  /** Called with each chunk the child writes to stderr. When absent, stderr is discarded. */
  onStderr?: (chunk: Uint8Array) => void;
  /**
   * Put the child in its own process group so that {@link ChildHandle.kill} with `group`
   * reaches its children too. @default false
   */
  detachedGroup?: boolean;
  /** The child (and its output pipes) do not keep the host alive, where the runtime allows it. @default false */
  unref?: boolean;
}

/** How a child process ended. Exactly one of `code` and `signal` is non-null. */
export interface ExitStatus {
  code: number | null;
  signal: string | null;
  /** Why it ended, when the launcher knows more than code and signal (a lost Ray node). */
  reason?: string;
}

/** A running child process. */
export interface ChildHandle {
  readonly pid: number;
  /** Resolves once the process has exited and its output streams are drained. */
  readonly exited: Promise<ExitStatus>;
  /** Sends a signal (default SIGTERM). Does nothing once the process has exited. */
  kill(signal?: string): void;
}

/** A connected stream socket. */
export interface SocketConn {
  /** Queues bytes for writing. */
  write(bytes: Uint8Array): void;
  /** Registers the data handler; chunks arrive in order, framing is the caller's job. */
  onData(cb: (chunk: Uint8Array) => void): void;
  /** Registers the close handler; called once, after the peer closes or on error. */
  onClose(cb: (err?: Error) => void): void;
  /** Closes the socket. */
  close(): void;
}

/** A listening socket: Unix-domain, or TCP ({@link Runtime.listenTcp}). */
export interface SocketServer {
  /** The socket file, or `tcp:<host>:<port>` for a TCP listener. */
  readonly path: string;
  /** The port of a TCP listener. */
  readonly port?: number;
  /** Stops listening and removes the socket file. */
  close(): Promise<void>;
}

/**
 * A message endpoint, what a `Channel` runs on: a worker seen from its parent, or the parent
 * seen from inside a worker.
 */
export interface MessageEndpoint {
  postMessage(message: unknown, transfer?: unknown[]): void;
  addEventListener(type: "message", listener: (ev: { data: unknown }) => void): void;
  removeEventListener(type: "message", listener: (ev: { data: unknown }) => void): void;
}

/** A started worker. */
export interface WorkerHandle extends MessageEndpoint {
  /** Stops the worker. */
  terminate(): Promise<void>;
  /** Lets the host exit while the worker still runs (Node's `unref`); no-op elsewhere. */
  unref(): void;
  /**
   * Registers a handler for the worker's own failure: an uncaught error (its module failed
   * to load, say) or an exit that {@link WorkerHandle.terminate} did not ask for.
   */
  onError(cb: (err: Error) => void): void;
}

/** A file mapped into memory. */
export interface MappedFile {
  /** The mapped bytes (a copy when {@link MappedFile.zeroCopy} is false). */
  readonly bytes: Uint8Array;
  /** Whether `bytes` views the mapping itself rather than a copy. */
  readonly zeroCopy: boolean;
  /** Releases the mapping. `bytes` must not be used afterwards. */
  unmap(): void;
}

/** Options of {@link Runtime.serveHttp}. */
export interface HttpServeOptions {
  /** Address to listen on (`127.0.0.1`, `::1`, `0.0.0.0`, …). */
  hostname: string;
  /** TCP port; `0` picks a free one. */
  port: number;
  /** Answers every HTTP request that is not a WebSocket upgrade (web `Request` → `Response`). */
  fetch(request: Request): Response | Promise<Response>;
  /**
   * WebSocket hooks (crossws's): every request asking for an upgrade goes to them; their
   * `upgrade` hook may refuse it by throwing (or returning) a `Response`.
   */
  websocket?: Partial<WebSocketHooks>;
}

/** A listening HTTP server. */
export interface HttpServer {
  /** The address it listens on. */
  readonly hostname: string;
  /** The port it listens on (the one picked, when asked for `0`). */
  readonly port: number;
  /**
   * Stops listening, closes open WebSocket connections and ends idle connections; resolves
   * once the server is down. Requests still being answered may finish.
   */
  close(): Promise<void>;
}

/** What one JavaScript runtime provides to pyisolate. */
export interface Runtime {
  readonly name: "node" | "deno" | "bun";
  /** Starts a child process with piped stdout/stderr and no stdin. */
  spawn(opts: SpawnOptions): ChildHandle;
  /** Listens on a Unix-domain socket at `path` (which must not exist). */
  listenUnix(path: string, onConnection: (conn: SocketConn) => void): Promise<SocketServer>;
  /** Connects to a Unix-domain socket. */
  connectUnix(path: string): Promise<SocketConn>;
  /** Listens on TCP at `host` (`port` 0: any free port, reported as `port`). */
  listenTcp(host: string, port: number, onConnection: (conn: SocketConn) => void): Promise<SocketServer>;
  /** Starts a module worker from a file URL; `data` (JSON-serialisable) reaches it as its start-up data. */
  startWorker(url: URL, data: unknown): WorkerHandle;
  /**
   * Inside a worker: the endpoint to the parent and the start-up data. A worker started with
   * {@link Runtime.startWorker} must call it to receive messages (Deno and Bun hold the
   * parent's messages until it does).
   */
  workerSelf(): { endpoint: MessageEndpoint; data: unknown } | null;
  /** Maps `length` bytes of a file (read-only). */
  mapFile(path: string, length: number): MappedFile;
  /** Starts an HTTP server with WebSocket upgrades (the runtime's own server, loaded when first used). */
  serveHttp(opts: HttpServeOptions): Promise<HttpServer>;
}
