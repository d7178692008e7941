/**
 * The wire protocol between the host and a Python process (`docs/protocol.md`): the message
 * union with its short keys, and length-prefixed framing. Every frame is a 4-byte big-endian
 * length followed by exactly one CBOR data item.
 * @module
 */
import { PyisolateError } from "../errors.ts";

/** Largest frame payload either side accepts (1 GiB); a longer frame is a protocol error. */
export const MAX_FRAME: number = 1 << 30;

/** Bytes of the length prefix in front of every frame. */
export const FRAME_HEADER_BYTES = 4;

/** An exception as it crosses the wire (also the content of tag 41504). */
export interface ExceptionMap {
  /** Qualified Python type name (`"ValueError"`, `"comfy.model_management.InterruptProcessingException"`). */
  type: string;
  message: string;
  /** Formatted Python traceback; `""` when raised in TypeScript. */
  traceback: string;
}

/** One pack the process loads (`config.packs`). */
export interface PackRef {
  name: string;
  /** Absolute path of the pack directory (or single `.py` file). */
  path: string;
}

/** What the host tells a Python process to load (the `config` message). */
export interface ProcessConfig {
  /** Process name, used in logs (the pack name for an isolated process). */
  pack: string;
  /** Absolute path of the first pack (empty for a shared process without packs). */
  path: string;
  kind: "isolated" | "shared";
  packs: PackRef[];
  /** Entries to prepend to `sys.path`. */
  sys_path: string[];
  /** Host service names the child may call. */
  services: string[];
  /** Free-form options per feature. */
  options: Record<string, unknown>;
}

/** A pack's entry in the `ready` info. Extensions add fields (e.g. `nodes`). */
export interface ReadyPack {
  name: string;
  module: string;
  ok: boolean;
  error?: ExceptionMap;
  [extra: string]: unknown;
}

/** The `ready` message's info: what the process loaded. */
export interface ReadyInfo {
  packs: ReadyPack[];
  python: string;
  pid: number;
  [extra: string]: unknown;
}

/** child → host, first frame: proves the token. */
export interface HelloMsg {
  t: "hello";
  token: string;
  pid: number;
  python: string;
  runtime: string;
}
/** host → child, reply to hello. */
export interface ConfigMsg {
  t: "config";
  config: ProcessConfig;
}
/** child → host: packs imported, calls may come. */
export interface ReadyMsg {
  t: "ready";
  info: ReadyInfo;
}
/** child → host instead of ready: the runtime could not start. */
export interface FailMsg {
  t: "fail";
  error: ExceptionMap;
}
/** A call expecting an answer (both ways). */
export interface CallMsg {
  t: "call";
  id: number;
  s: string;
  m: string;
  a: unknown[];
  k?: Record<string, unknown>;
}
/** The call `id` of the receiver returned `v`. */
export interface OkMsg {
  t: "ok";
  id: number;
  v: unknown;
}
/** The call `id` of the receiver raised `e`. */
export interface ErrMsg {
  t: "err";
  id: number;
  e: ExceptionMap;
}
/** Fire and forget (both ways). */
export interface EventMsg {
  t: "event";
  s: string;
  m: string;
  a: unknown[];
  k?: Record<string, unknown>;
}
/** The sender no longer wants the answer to its call `id`. */
export interface CancelMsg {
  t: "cancel";
  id: number;
}
/** host → child: exit cleanly. */
export interface ByeMsg {
  t: "bye";
}

/** Every message of the protocol, discriminated by `t`. */
export type Message =
  | HelloMsg
  | ConfigMsg
  | ReadyMsg
  | FailMsg
  | CallMsg
  | OkMsg
  | ErrMsg
  | EventMsg
  | CancelMsg
  | ByeMsg;

/** The `t` values of {@link Message}. */
export type MessageType = Message["t"];

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const isId = (x: unknown): boolean => typeof x === "number" && Number.isInteger(x) && x >= 0;
const isStr = (x: unknown): boolean => typeof x === "string";

/**
 * Checks that a decoded frame is a message of a known kind with the fields it needs.
 * Returns a description of what is wrong, or `null` when it is well-formed.
 */
export function messageProblem(x: unknown): string | null {
  if (!isObj(x)) return "the frame is not a CBOR map";
  switch (x.t) {
    case "call":
    case "event":
      if (x.t === "call" && !isId(x.id)) return `a "call" has no valid id`;
      if (!isStr(x.s) || !isStr(x.m)) return `a "${x.t}" has no service or method name`;
      if (!Array.isArray(x.a)) return `a "${x.t}" has no argument array`;
      if (x.k !== undefined && x.k !== null && !isObj(x.k)) return `a "${x.t}" has keyword arguments that are not a map`;
      return null;
    case "ok":
      return isId(x.id) ? null : `an "ok" has no valid id`;
    case "err":
      if (!isId(x.id)) return `an "err" has no valid id`;
      return isObj(x.e) ? null : `an "err" carries no exception map`;
    case "cancel":
      return isId(x.id) ? null : `a "cancel" has no valid id`;
    case "hello":
      return isStr(x.token) ? null : `a "hello" has no token`;
    case "ready":
      return isObj(x.info) ? null : `a "ready" has no info map`;
    case "fail":
      return isObj(x.error) ? null : `a "fail" has no error map`;
    case "config":
      return isObj(x.config) ? null : `a "config" has no config map`;
    case "bye":
      return null;
    default:
      return `unknown message type ${JSON.stringify(x.t)}`;
  }
}

/**
 * Prefixes a payload with its 4-byte big-endian length, in one new buffer that nothing else
 * shares (so it can be transferred to another thread).
 * @throws {PyisolateError} `PROTOCOL` when the payload is longer than {@link MAX_FRAME}.
 */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const n = payload.byteLength;
  if (n > MAX_FRAME) {
    throw new PyisolateError("PROTOCOL", `A message of ${n} bytes is larger than the ${MAX_FRAME}-byte frame limit; pass large data as tensors or files instead.`);
  }
  const out = new Uint8Array(FRAME_HEADER_BYTES + n);
  out[0] = n >>> 24;
  out[1] = (n >>> 16) & 0xff;
  out[2] = (n >>> 8) & 0xff;
  out[3] = n & 0xff;
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** A copy of `buf[start:end]` in a new `Uint8Array` of its own (a Node `Buffer`'s `slice` would be a view). */
function copyOf(buf: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(buf.subarray(start, end));
  return out;
}

/**
 * Splits a byte stream into frame payloads. Chunks may hold part of a frame, several frames,
 * or both; each payload comes out as its own buffer (never a view into a chunk).
 *
 * @example
 * ```ts
 * const dec = new FrameDecoder();
 * for (const payload of dec.push(chunk)) handle(payload);
 * ```
 */
export class FrameDecoder {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** Length of the frame being assembled, or -1 while its header is incomplete. */
  #need = -1;
  #failed = false;

  /** Bytes received but not yet returned as a frame. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Adds bytes and returns every frame payload they complete.
   * @throws {PyisolateError} `PROTOCOL` when a frame announces more than {@link MAX_FRAME} bytes;
   * the stream cannot be resynchronised afterwards and every later push throws too.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed) throw new PyisolateError("PROTOCOL", "The frame stream is broken by an earlier protocol error; close the connection.");
    const out: Uint8Array[] = [];
    // Fast path: nothing buffered and no header pending, the chunk starts with a frame.
    if (this.#buffered === 0 && this.#need < 0) {
      let off = 0;
      while (chunk.byteLength - off >= FRAME_HEADER_BYTES) {
        const n = this.#readLength(chunk, off);
        if (chunk.byteLength - off - FRAME_HEADER_BYTES < n) break;
        out.push(copyOf(chunk, off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + n));
        off += FRAME_HEADER_BYTES + n;
      }
      if (off === chunk.byteLength) return out;
      chunk = chunk.subarray(off);
    }
    this.#chunks.push(copyOf(chunk, 0, chunk.byteLength));
    this.#buffered += chunk.byteLength;
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < FRAME_HEADER_BYTES) break;
        const head = this.#take(FRAME_HEADER_BYTES);
        this.#need = this.#readLength(head, 0);
      }
      if (this.#buffered < this.#need) break;
      out.push(this.#take(this.#need));
      this.#need = -1;
    }
    return out;
  }

  #readLength(buf: Uint8Array, off: number): number {
    const n = ((buf[off]! << 24) >>> 0) + (buf[off + 1]! << 16) + (buf[off + 2]! << 8) + buf[off + 3]!;
    if (n > MAX_FRAME) {
      this.#failed = true;
      throw new PyisolateError("PROTOCOL", `A frame announces ${n} bytes, more than the ${MAX_FRAME}-byte limit; the peer does not speak this protocol or its stream is corrupt.`);
    }
    return n;
  }

  /** Removes and returns the first `n` buffered bytes as one new buffer. */
  #take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const first = this.#chunks[0]!;
    if (first.byteLength === n) {
      this.#chunks.shift();
      this.#buffered -= n;
      // A view into a larger buffer is copied so that every payload owns its buffer.
      return first.byteOffset === 0 && first.buffer.byteLength === n ? first : copyOf(first, 0, n);
    }
    if (first.byteLength > n) {
      this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return copyOf(first, 0, n);
    }
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.byteLength, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.byteLength) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#buffered -= n;
    return out;
  }
}
