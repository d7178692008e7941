/**
 * A transport-neutral RPC endpoint for the wire protocol: it encodes outgoing calls into
 * frames handed to `send`, decodes incoming frame payloads given to {@link RpcEndpoint.receive},
 * keeps the call table (ids, timeouts, cancellation), carries callbacks both ways, answers the
 * peer's calls through one handler, and has one close path that rejects every pending call.
 * @module
 */
import { PyisolateError, type PyisolateErrorCode } from "../errors.ts";
import { RemoteError, exceptionMapOf } from "../protocol/remote_error.ts";
import { decodeMessage, encodeMessage, type CodecContext } from "../protocol/codec.ts";
import type { CallMsg, EventMsg, Message } from "../protocol/messages.ts";
import { unref } from "../util/os.ts";
import type { HandleHooks, RemoteHandle } from "../values/handles.ts";

/**
 * Time a call may take before it fails with `TIMEOUT`, unless the call or the endpoint says
 * otherwise. `0` anywhere means no limit (long node executions pass `timeoutMs: 0`).
 */
export const DEFAULT_CALL_TIMEOUT_MS = 120_000;

/** Service name of callbacks: `m` is the callable's id, or `"release"` with the ids to forget as arguments. */
export const CALLBACK_SERVICE = "$cb";

/**
 * Functions of a peer, by the local function that stands for them: what the peer said of it
 * (a coroutine function or a plain one: passed on to another peer, it crosses with the same
 * flag), and how to call it with keyword arguments and a caller's cancel signal. A peer's
 * function passed on to another peer and called there is forwarded with its keywords as
 * keywords (not as a trailing dict), and without a time limit of the host's own (the caller's
 * limit and cancel apply).
 */
const imported = new WeakMap<
  object,
  { isAsync: boolean | undefined; forward: (args: unknown[], kwargs: Record<string, unknown> | undefined, signal: AbortSignal) => Promise<unknown> }
>();

/** Options of one outgoing call. */
export interface CallOptions {
  /** Keyword arguments for the Python side. */
  kwargs?: Record<string, unknown>;
  /** Milliseconds before the call fails with `TIMEOUT`; `0` for none. @default the endpoint's default */
  timeoutMs?: number;
  /** Aborting it fails the call with `CANCELLED` and tells the peer to stop (`cancel`). */
  signal?: AbortSignal;
}

/** A call (or event) from the peer, as the handler sees it. */
export interface IncomingCall {
  service: string;
  method: string;
  args: unknown[];
  /** Keyword arguments, when the peer sent any. */
  kwargs: Record<string, unknown> | undefined;
  /** Aborted when the peer cancels the call or the connection closes. */
  signal: AbortSignal;
  /** True for an `event` (no answer is sent). */
  event: boolean;
}

/** Answers the peer's calls; what it returns (or throws) is sent back. */
export type IncomingHandler = (call: IncomingCall) => unknown;

/** Options of {@link RpcEndpoint}. */
export interface RpcEndpointOptions {
  /** The pack (or process) on the other side, named in every error. */
  name: string;
  /** Writes one whole frame (length prefix included); the buffer is the transport's to keep. */
  send: (frame: Uint8Array) => void;
  /** Answers incoming calls and events other than callbacks. @default every call fails with `NOT_CALLABLE` */
  handler?: IncomingHandler;
  /** @default {@link DEFAULT_CALL_TIMEOUT_MS} */
  defaultTimeoutMs?: number;
  /** Called with a protocol error (a frame that is not a valid message). The owner should close. */
  onProtocolError?: (err: PyisolateError) => void;
  /** Called when an event handler or a late answer fails; nobody else would see it. @default ignore */
  onError?: (err: unknown) => void;
  /** Told of every remote object handle that crosses this connection (the host's `HandleTable`). */
  handles?: HandleHooks;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  service: string;
  method: string;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * One side of a connection.
 *
 * @example
 * ```ts
 * const ep = new RpcEndpoint({ name: "MyPack", send: (frame) => socket.write(frame), handler });
 * socket.onData((chunk) => { for (const p of frames.push(chunk)) ep.receive(p); });
 * const pong = await ep.call("$rt", "ping");
 * ```
 */
export class RpcEndpoint implements CodecContext {
  readonly name: string;
  readonly defaultTimeoutMs: number;
  #send: (frame: Uint8Array) => void;
  #handler: IncomingHandler | undefined;
  #onProtocolError: ((err: PyisolateError) => void) | undefined;
  #onError: (err: unknown) => void;
  #handles: HandleHooks | undefined;
  // Handles of the message being encoded now (counted as sent once it encoded).
  #outHandles: RemoteHandle[] | null = null;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #incoming = new Map<number, AbortController>();
  #closed: { code: PyisolateErrorCode; cause: string } | null = null;
  // Callbacks we created: id ⇄ function.
  #cbById = new Map<string, (...args: never[]) => unknown>();
  #nextCb = 1;
  // Callbacks of the peer we hold proxies of.
  #imported = new Map<string, WeakRef<(...args: unknown[]) => Promise<unknown>>>();
  #finalizer = new FinalizationRegistry<string>((id) => {
    const ref = this.#imported.get(id);
    if (ref && ref.deref() === undefined) {
      this.#imported.delete(id);
      if (!this.#closed) this.event(CALLBACK_SERVICE, "release", [id]);
    }
  });

  constructor(opts: RpcEndpointOptions) {
    this.name = opts.name;
    this.#send = opts.send;
    this.#handler = opts.handler;
    this.#onProtocolError = opts.onProtocolError;
    this.#onError = opts.onError ?? (() => {});
    this.#handles = opts.handles;
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  }

  /** Number of our calls awaiting an answer. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Whether {@link RpcEndpoint.close} was called. */
  get closed(): boolean {
    return this.#closed !== null;
  }

  /**
   * Calls `service.method(...args, **kwargs)` on the peer.
   * @throws {RemoteError} when the peer raised; {@link PyisolateError} `TIMEOUT`, `CANCELLED`,
   * `PROCESS_EXITED` (or the close code) or `TYPE` (arguments that cannot be encoded).
   */
  call(service: string, method: string, args: readonly unknown[] = [], opts: CallOptions = {}): Promise<unknown> {
    if (this.#closed) return Promise.reject(this.#closedError(service, method, this.#closed));
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(this.#cancelledError(service, method));
    const id = this.#nextId++;
    if (this.#nextId > 0x7fffffff) this.#nextId = 1;
    const msg: CallMsg = { t: "call", id, s: service, m: method, a: args as unknown[] };
    if (opts.kwargs !== undefined && Object.keys(opts.kwargs).length > 0) msg.k = opts.kwargs;
    let frame: Uint8Array;
    try {
      frame = this.#encode(msg);
    } catch (err) {
      if (err instanceof PyisolateError && (err.code === "PROCESS_EXITED" || err.code === "NOT_FOUND")) return Promise.reject(err);
      return Promise.reject(
        new PyisolateError("TYPE", `The arguments of ${service}.${method} for pack "${this.name}" cannot be sent: ${(err as Error).message}`, { pack: this.name, cause: err }),
      );
    }
    return new Promise<unknown>((resolve, reject) => {
      const p: Pending = { resolve, reject, service, method, timer: undefined, signal, onAbort: undefined };
      const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          if (this.#settle(id)) {
            this.#sendSafe({ t: "cancel", id });
            reject(
              new PyisolateError(
                "TIMEOUT",
                `${service}.${method} in pack "${this.name}" did not answer within ${timeoutMs} ms; the call was cancelled. Pass a larger timeoutMs (0 for none) if it needs longer.`,
                { pack: this.name },
              ),
            );
          }
        }, timeoutMs);
        unref(p.timer);
      }
      if (signal) {
        p.onAbort = () => {
          if (this.#settle(id)) {
            this.#sendSafe({ t: "cancel", id });
            reject(this.#cancelledError(service, method));
          }
        };
        signal.addEventListener("abort", p.onAbort, { once: true });
      }
      this.#pending.set(id, p);
      this.#send(frame);
    });
  }

  /** Sends `service.method(...args)` as an event: no answer, errors stay on the peer's side. */
  event(service: string, method: string, args: readonly unknown[] = [], kwargs?: Record<string, unknown>): void {
    if (this.#closed) throw this.#closedError(service, method, this.#closed);
    const msg: EventMsg = { t: "event", s: service, m: method, a: args as unknown[] };
    if (kwargs !== undefined && Object.keys(kwargs).length > 0) msg.k = kwargs;
    this.#send(this.#encode(msg));
  }

  /** Handles one frame payload from the peer. */
  receive(payload: Uint8Array): void {
    if (this.#closed) return;
    let msg: Message;
    try {
      msg = decodeMessage(payload, this);
    } catch (err) {
      const e =
        err instanceof PyisolateError
          ? new PyisolateError("PROTOCOL", `Pack "${this.name}" sent a frame that breaks the protocol: ${err.message}`, { pack: this.name, cause: err })
          : new PyisolateError("PROTOCOL", `Pack "${this.name}" sent an unreadable frame: ${String(err)}`, { pack: this.name, cause: err });
      if (this.#onProtocolError) this.#onProtocolError(e);
      else this.close("PROTOCOL", e.message);
      return;
    }
    this.receiveMessage(msg);
  }

  /** Handles one decoded message (for transports that decode themselves). */
  receiveMessage(msg: Message): void {
    switch (msg.t) {
      case "ok": {
        const p = this.#pending.get(msg.id);
        if (p && this.#settle(msg.id)) p.resolve(msg.v);
        return;
      }
      case "err": {
        const p = this.#pending.get(msg.id);
        if (p && this.#settle(msg.id)) p.reject(new RemoteError(msg.e, { pack: this.name, method: `${p.service}.${p.method}` }));
        return;
      }
      case "call":
        this.#dispatch(msg.id, msg.s, msg.m, msg.a, msg.k ?? undefined, false);
        return;
      case "event":
        this.#dispatch(-1, msg.s, msg.m, msg.a, msg.k ?? undefined, true);
        return;
      case "cancel": {
        const ac = this.#incoming.get(msg.id);
        if (ac) {
          this.#incoming.delete(msg.id);
          ac.abort(this.#cancelledError("(incoming)", String(msg.id)));
        }
        return;
      }
      default: {
        const e = new PyisolateError("PROTOCOL", `Pack "${this.name}" sent a "${msg.t}" message after start-up, which the protocol does not allow.`, { pack: this.name });
        if (this.#onProtocolError) this.#onProtocolError(e);
        else this.close("PROTOCOL", e.message);
      }
    }
  }

  /**
   * Closes the endpoint: every pending call fails with `code` and a message naming the pack,
   * the method and `cause`; incoming calls are aborted; later calls fail at once. Idempotent.
   */
  close(code: PyisolateErrorCode, cause: string): void {
    if (this.#closed) return;
    const closed = { code, cause };
    this.#closed = closed;
    const pending = [...this.#pending.entries()];
    for (const [id, p] of pending) {
      if (this.#settle(id)) p.reject(this.#closedError(p.service, p.method, closed));
    }
    for (const ac of this.#incoming.values()) ac.abort(new PyisolateError(code, cause, { pack: this.name }));
    this.#incoming.clear();
    this.#cbById.clear();
    this.#imported.clear();
  }

  // --- CodecContext -------------------------------------------------------------------------

  /**
   * @internal Registers a local function for the peer to call. Every encoding gets a fresh id
   * (docs/protocol.md): a `release` still in flight for an earlier id cannot remove this one.
   */
  exportCallback(fn: (...args: never[]) => unknown): string {
    const id = String(this.#nextCb++);
    this.#cbById.set(id, fn);
    return id;
  }

  /** @internal A handle is being encoded for the peer: refused when it cannot be used, else counted once the message encoded. */
  handleOut(handle: object): void {
    if (!this.#handles) return;
    this.#handles.check(handle as RemoteHandle, this.name);
    this.#outHandles?.push(handle as RemoteHandle);
  }

  /** @internal A handle arrived from the peer. */
  handleIn(handle: object): void {
    this.#handles?.received(handle as RemoteHandle, this.name);
  }

  /** @internal What the peer said of a function imported from it (see {@link CodecContext.asyncOf}). */
  asyncOf(fn: (...args: never[]) => unknown): boolean | undefined {
    return imported.get(fn)?.isAsync;
  }

  /** @internal A function that calls the peer's callable `id` (`isAsync`: what the peer said it is, kept for passing it on). */
  importCallback(id: string, isAsync?: boolean): (...args: unknown[]) => Promise<unknown> {
    const existing = this.#imported.get(id)?.deref();
    if (existing) return existing;
    const fn = (...args: unknown[]): Promise<unknown> => this.call(CALLBACK_SERVICE, id, args);
    imported.set(fn, {
      isAsync,
      forward: (args, kwargs, signal) => this.call(CALLBACK_SERVICE, id, args, { ...(kwargs ? { kwargs } : {}), signal, timeoutMs: 0 }),
    });
    this.#imported.set(id, new WeakRef(fn));
    this.#finalizer.register(fn, id);
    return fn;
  }

  // --- internals ----------------------------------------------------------------------------

  /** Removes a pending call and its timer/listener; false when it was already settled. */
  #settle(id: number): boolean {
    const p = this.#pending.get(id);
    if (!p) return false;
    this.#pending.delete(id);
    if (p.timer !== undefined) clearTimeout(p.timer);
    if (p.signal && p.onAbort) p.signal.removeEventListener("abort", p.onAbort);
    return true;
  }

  /** Encodes a message as a frame; the handles in it count as sent to the peer once it encoded. */
  #encode(msg: Message): Uint8Array {
    if (!this.#handles) return encodeMessage(msg, this);
    const outer = this.#outHandles;
    const mine: RemoteHandle[] = [];
    this.#outHandles = mine;
    let frame: Uint8Array;
    try {
      frame = encodeMessage(msg, this);
    } finally {
      this.#outHandles = outer;
    }
    if (mine.length > 0) this.#handles.sent(mine, this.name);
    return frame;
  }

  #sendSafe(msg: Message): void {
    try {
      this.#send(this.#encode(msg));
    } catch (err) {
      this.#onError(err);
    }
  }

  #dispatch(id: number, service: string, method: string, args: unknown[], kwargs: Record<string, unknown> | undefined, event: boolean): void {
    const ac = new AbortController();
    if (!event) this.#incoming.set(id, ac);
    const call: IncomingCall = { service, method, args, kwargs, signal: ac.signal, event };
    let result: unknown;
    try {
      result = service === CALLBACK_SERVICE ? this.#runCallback(call) : this.#handler ? this.#handler(call) : this.#notCallable(call);
    } catch (err) {
      this.#answer(id, ac, event, false, err, call);
      return;
    }
    if (result !== null && typeof result === "object" && typeof (result as PromiseLike<unknown>).then === "function") {
      (result as PromiseLike<unknown>).then(
        (v) => this.#answer(id, ac, event, true, v, call),
        (e) => this.#answer(id, ac, event, false, e, call),
      );
    } else {
      this.#answer(id, ac, event, true, result, call);
    }
  }

  #answer(id: number, ac: AbortController, event: boolean, ok: boolean, value: unknown, call: IncomingCall): void {
    if (event) {
      if (!ok) this.#onError(value);
      return;
    }
    if (this.#incoming.get(id) !== ac) return; // cancelled, or the connection closed
    this.#incoming.delete(id);
    if (this.#closed) return;
    if (ok) {
      let frame: Uint8Array;
      try {
        frame = this.#encode({ t: "ok", id, v: value });
      } catch (err) {
        const e = new PyisolateError("TYPE", `The result of ${call.service}.${call.method} cannot be sent to pack "${this.name}": ${(err as Error).message}`, { pack: this.name, cause: err });
        this.#sendSafe({ t: "err", id, e: exceptionMapOf(e) });
        return;
      }
      this.#send(frame);
    } else {
      this.#sendSafe({ t: "err", id, e: exceptionMapOf(value) });
    }
  }

  #runCallback(call: IncomingCall): unknown {
    if (call.method === "release") {
      for (const arg of call.args) {
        const id = String(arg);
        this.#cbById.delete(id);
      }
      return null;
    }
    const fn = this.#cbById.get(call.method);
    if (!fn) {
      throw new PyisolateError("NOT_CALLABLE", `Callback ${call.method} does not exist on the host side (it was released, or the process restarted since it was passed).`, { pack: this.name });
    }
    const hasKwargs = !!call.kwargs && Object.keys(call.kwargs).length > 0;
    const forward = imported.get(fn)?.forward;
    if (forward) return forward(call.args, hasKwargs ? call.kwargs : undefined, call.signal);
    const args = hasKwargs ? [...call.args, call.kwargs] : call.args;
    return (fn as (...a: unknown[]) => unknown)(...args);
  }

  #notCallable(call: IncomingCall): never {
    throw new PyisolateError("NOT_CALLABLE", `The host has no service "${call.service}"; pack "${this.name}" cannot call ${call.service}.${call.method}.`, { pack: this.name });
  }

  #cancelledError(service: string, method: string): PyisolateError {
    return new PyisolateError("CANCELLED", `${service}.${method} in pack "${this.name}" was cancelled by the caller.`, { pack: this.name });
  }

  #closedError(service: string, method: string, closed: { code: PyisolateErrorCode; cause: string }): PyisolateError {
    return new PyisolateError(closed.code, `${service}.${method} in pack "${this.name}" failed: ${closed.cause}`, { pack: this.name });
  }
}
