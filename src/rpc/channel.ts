/**
 * `Channel`: the one message mechanism between two threads — the host's main thread and a
 * worker (the broker worker of a Python process, or a worker of the embedding program that
 * calls host services). It carries, over one {@link MessageEndpoint}:
 *
 * - calls with an answer (`call`), each with a deadline;
 * - one-way events (`event`);
 * - binary data (`send`: an `ArrayBuffer` or an array of them, transferred, unwrapped — the
 *   frames of a Python process cross this way, one message per frame batch).
 *
 * Its lifecycle is birpc's: a named default timeout ({@link DEFAULT_CHANNEL_TIMEOUT_MS}),
 * timers that do not keep the host alive, and one close path ({@link Channel.close}) that
 * rejects every pending call — the owner calls it when the worker dies, so nothing waits for
 * an answer that cannot come.
 *
 * @example
 * ```ts
 * const ch = new Channel(worker, { name: "the broker worker", handlers: { lines: (s, l) => print(s, l) } });
 * worker.onError((e) => ch.close("PROCESS_FAILED", `the worker failed: ${e.message}`));
 * const started = await ch.call("start", [opts], { timeoutMs: 130_000 });
 * ```
 * @module
 */
import { PyisolateError, type PyisolateErrorCode } from "../errors.ts";
import type { MessageEndpoint } from "../runtime/contract.ts";
import { unref } from "../util/os.ts";

/** Time a channel call may take unless the call or the channel says otherwise (`0`: no limit). */
export const DEFAULT_CHANNEL_TIMEOUT_MS = 30_000;

/** Marks the channel's own messages, so that other traffic on the same endpoint passes by. */
const KEY = "$pyi";

/** The channel's messages (binary data crosses unwrapped, outside this union). */
type Wire =
  | { [KEY]: "call"; id: number; m: string; a: unknown[] }
  | { [KEY]: "ok"; id: number; v: unknown }
  | { [KEY]: "err"; id: number; code: PyisolateErrorCode; message: string }
  | { [KEY]: "event"; m: string; a: unknown[] };

/** Binary data: one buffer, or several in order. */
export type ChannelData = ArrayBuffer | ArrayBuffer[];

/** A function the peer may call by name. */
export type ChannelHandler = (...args: any[]) => unknown;

/** Options of {@link Channel}. */
export interface ChannelOptions {
  /** What is on the other side, named in every error (`the broker worker of "MyPack"`). */
  name: string;
  /** What the peer may call (calls and events alike); any other name is a `NOT_CALLABLE` error. @default {} */
  handlers?: Record<string, ChannelHandler>;
  /** Receives binary data. @default binary data is dropped */
  onData?: (data: ChannelData) => void;
  /** @default {@link DEFAULT_CHANNEL_TIMEOUT_MS} */
  defaultTimeoutMs?: number;
  /** Called when an event handler fails (nobody else would see it). @default ignore */
  onError?: (err: unknown) => void;
}

/** Options of one {@link Channel.call}. */
export interface ChannelCallOptions {
  /** Milliseconds before the call fails with `TIMEOUT`; `0` for none. @default the channel's default */
  timeoutMs?: number;
  /** Buffers to transfer rather than copy. */
  transfer?: Transferable[];
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  method: string;
  timer: ReturnType<typeof setTimeout> | undefined;
}

function isWire(d: unknown): d is Wire {
  return typeof d === "object" && d !== null && typeof (d as Record<string, unknown>)[KEY] === "string";
}

/** One side of a thread-to-thread connection. */
export class Channel {
  readonly name: string;
  readonly defaultTimeoutMs: number;
  #ep: MessageEndpoint;
  #handlers: Record<string, ChannelHandler>;
  #onData: ((data: ChannelData) => void) | undefined;
  #onError: (err: unknown) => void;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed: { code: PyisolateErrorCode; cause: string } | null = null;
  #listener = (ev: { data: unknown }): void => this.#receive(ev.data);

  constructor(endpoint: MessageEndpoint, opts: ChannelOptions) {
    this.name = opts.name;
    this.#ep = endpoint;
    this.#handlers = opts.handlers ?? {};
    this.#onData = opts.onData;
    this.#onError = opts.onError ?? (() => {});
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? DEFAULT_CHANNEL_TIMEOUT_MS;
    endpoint.addEventListener("message", this.#listener);
  }

  /** Whether {@link Channel.close} was called. */
  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Number of calls awaiting an answer. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Calls the peer's handler `method` and resolves with what it returned.
   * @throws {PyisolateError} the peer's error (with its code), `TIMEOUT`, `TYPE` (arguments
   * that cannot be cloned), or the close code once the channel is closed.
   */
  call<T = unknown>(method: string, args: readonly unknown[] = [], opts: ChannelCallOptions = {}): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closedError(method, this.#closed));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { resolve: resolve as (v: unknown) => void, reject, method, timer: undefined };
      const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          if (this.#pending.delete(id)) {
            reject(new PyisolateError("TIMEOUT", `${method} on ${this.name} did not answer within ${timeoutMs} ms.`));
          }
        }, timeoutMs);
        unref(p.timer);
      }
      this.#pending.set(id, p);
      try {
        this.#ep.postMessage({ [KEY]: "call", id, m: method, a: [...args] } satisfies Wire, opts.transfer);
      } catch (err) {
        this.#settle(id);
        reject(new PyisolateError("TYPE", `The arguments of ${method} cannot be sent to ${this.name}: ${(err as Error).message}`, { cause: err }));
      }
    });
  }

  /** Calls the peer's handler `method` without waiting for an answer. Does nothing once closed. */
  event(method: string, args: readonly unknown[] = [], transfer?: Transferable[]): void {
    if (this.#closed) return;
    this.#ep.postMessage({ [KEY]: "event", m: method, a: [...args] } satisfies Wire, transfer);
  }

  /** Sends binary data, transferring the buffers. Does nothing once closed. */
  send(data: ChannelData): void {
    if (this.#closed) return;
    this.#ep.postMessage(data, Array.isArray(data) ? data : [data]);
  }

  /**
   * Closes the channel: every pending call fails with `code` and a message naming the peer,
   * the method and `cause`; later calls fail at once; nothing more is received. Idempotent.
   */
  close(code: PyisolateErrorCode, cause: string): void {
    if (this.#closed) return;
    const closed = { code, cause };
    this.#closed = closed;
    this.#ep.removeEventListener("message", this.#listener);
    for (const [id, p] of [...this.#pending]) {
      this.#settle(id);
      p.reject(this.#closedError(p.method, closed));
    }
  }

  // --- internals ----------------------------------------------------------------------------

  #settle(id: number): Pending | undefined {
    const p = this.#pending.get(id);
    if (!p) return undefined;
    this.#pending.delete(id);
    if (p.timer !== undefined) clearTimeout(p.timer);
    return p;
  }

  #receive(d: unknown): void {
    if (this.#closed) return;
    if (d instanceof ArrayBuffer || Array.isArray(d)) {
      this.#onData?.(d as ChannelData);
      return;
    }
    if (!isWire(d)) return; // someone else's message on a shared endpoint
    switch (d[KEY]) {
      case "ok":
        this.#settle(d.id)?.resolve(d.v);
        return;
      case "err":
        this.#settle(d.id)?.reject(new PyisolateError(d.code, d.message));
        return;
      case "call":
        this.#serve(d.id, d.m, d.a);
        return;
      case "event":
        try {
          const r = this.#handler(d.m)(...d.a);
          if (r instanceof Promise) r.catch(this.#onError);
        } catch (err) {
          this.#onError(err);
        }
        return;
    }
  }

  #handler(method: string): ChannelHandler {
    const fn = Object.hasOwn(this.#handlers, method) ? this.#handlers[method] : undefined;
    if (typeof fn !== "function") {
      throw new PyisolateError("NOT_CALLABLE", `${this.name} has no handler ${JSON.stringify(method)}; it handles: ${Object.keys(this.#handlers).join(", ") || "(none)"}.`);
    }
    return fn;
  }

  #serve(id: number, method: string, args: unknown[]): void {
    const reply = (ok: boolean, value: unknown): void => {
      if (this.#closed) return;
      if (ok) {
        try {
          this.#ep.postMessage({ [KEY]: "ok", id, v: value } satisfies Wire);
          return;
        } catch (err) {
          value = new PyisolateError("TYPE", `The result of ${method} cannot be sent back: ${(err as Error).message}`);
        }
      }
      const e = value instanceof PyisolateError ? value : null;
      const message = e ? e.message : value instanceof Error ? `${value.name}: ${value.message}` : String(value);
      this.#ep.postMessage({ [KEY]: "err", id, code: e ? e.code : "REMOTE", message } satisfies Wire);
    };
    let result: unknown;
    try {
      result = this.#handler(method)(...args);
    } catch (err) {
      reply(false, err);
      return;
    }
    Promise.resolve(result).then(
      (v) => reply(true, v),
      (err) => reply(false, err),
    );
  }

  #closedError(method: string, closed: { code: PyisolateErrorCode; cause: string }): PyisolateError {
    return new PyisolateError(closed.code, `${method} on ${this.name} failed: ${closed.cause}`);
  }
}
