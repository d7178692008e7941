/**
 * The CBOR codec of the wire protocol (`docs/protocol.md`), on cbor-x: plain maps with text
 * keys become plain objects, integers stay exact (beyond 2^53 as `BigInt`, beyond 64 bits as
 * bignum tags 2/3), non-integers go out as float64, and our own tags (41500–41509) carry
 * tuples, callables and exceptions. Other modules add their types with {@link registerTag}.
 *
 * Two details cbor-x leaves to us, handled here: a JS number that is an integer above
 * 2^32 goes out as a CBOR integer (cbor-x would write a float), and a 64-bit CBOR integer
 * that fits in a double's exact range comes back as a number (cbor-x would give a BigInt).
 *
 * Maps with number keys (a Python `dict` with int keys) decode to objects whose keys are the
 * keys' text form; a map tagged 259 (the Python runtime tags a `dict` with tuple, bytes or
 * other non-scalar keys) decodes to a JS `Map` that keeps them. Send a JS `Map` to produce a
 * CBOR map with non-text keys (tagged 259 when a key is not a scalar). Values nest at most
 * {@link MAX_DEPTH} levels.
 * @module
 */
import { Decoder, Encoder, Tag, addExtension } from "cbor-x";
import { PyisolateError } from "../errors.ts";
import { isTuple, PyFloat, Tuple } from "./py_types.ts";
import { exceptionMapOf, RemoteError } from "./remote_error.ts";
import { encodeFrame } from "./frames.ts";
import { messageProblem, type ExceptionMap, type Message } from "./messages.ts";

/** Tag of a Python tuple (content: array). */
export const TAG_TUPLE = 41500;
/** Tag of a tensor reference (content: map). Registered by the tensor module. */
export const TAG_TENSOR = 41501;
/** Tag of a remote object handle `{id, owner, type}`. */
export const TAG_HANDLE = 41502;
/** Tag of a callable `{id}`: calling it calls `$cb` on the side that created it. */
export const TAG_CALLABLE = 41503;
/** Tag of an exception map `{type, message, traceback}`. */
export const TAG_EXCEPTION = 41504;
/** Tag of a numpy array `[dtype, TensorRef-like map]`. Registered by the tensor module. */
export const TAG_NDARRAY = 41505;
/** Tag of a whole-number float (`1.0`), which JavaScript's one number type cannot tell from `1`. */
export const TAG_FLOAT = 41506;

/** A callable of the other side, as it appears when decoded without a {@link CodecContext}. */
export class CallableRef {
  readonly id: string;
  /** Whether the function is a coroutine function (`true`), a plain one (`false`), or not said. */
  readonly async: boolean | undefined;
  constructor(id: string, isAsync?: boolean) {
    this.id = id;
    this.async = isAsync;
  }
}

/**
 * Per-connection state the codec needs: callables (functions cross as tag 41503), and the
 * account of remote object handles (tag 41502) that cross the connection.
 */
export interface CodecContext {
  /** Registers a local function and returns its id (a fresh id for every encoding). */
  exportCallback(fn: (...args: never[]) => unknown): string;
  /** Returns a local function that calls the peer's callable `id`. */
  importCallback(id: string, isAsync?: boolean): (...args: unknown[]) => Promise<unknown>;
  /**
   * What a peer said of a function imported from it (a coroutine function: `true`, a plain
   * one: `false`), so that passed on to another peer it crosses with the same flag; `undefined`
   * for any other function.
   */
  asyncOf?(fn: (...args: never[]) => unknown): boolean | undefined;
  /** A handle (`values/handles.ts`) is being encoded for the peer; may throw to refuse it. */
  handleOut?(handle: object): void;
  /** A handle arrived from the peer. */
  handleIn?(handle: object): void;
}

/** The context of the {@link encode} or {@link decode} running now (for tag codecs that need it). */
export function activeCodecContext(): CodecContext | null {
  return activeCtx;
}

/** How a class crosses the wire as a CBOR tag (see {@link registerTag}). */
export interface TagCodec<T extends object = object> {
  /** The class encoded with this tag. A subclass registered after its base class wins. */
  cls?: abstract new (...args: never[]) => T;
  /** Turns an instance into the tag's content (any encodable value). */
  encode?: (value: T) => unknown;
  /** Turns the tag's content (already decoded, integers normalised) into a value. */
  decode?: (content: any) => unknown;
}

let activeCtx: CodecContext | null = null;
const tagClasses: (abstract new (...args: never[]) => object)[] = [];

/**
 * Teaches the codec a CBOR tag: instances of `cls` are written as `tag(encode(value))`, and
 * `tag(content)` is read back as `decode(content)`. Either half may be omitted. Registering a
 * tag again replaces its decoder and puts the new class first.
 *
 * @example
 * ```ts
 * registerTag(TAG_TENSOR, { cls: TensorRef, encode: (t) => t.toMap(), decode: (m) => TensorRef.fromMap(m) });
 * ```
 */
export function registerTag<T extends object>(tag: number, codec: TagCodec<T>): void {
  const { cls, encode: enc, decode: dec } = codec;
  if (cls && !enc) throw new PyisolateError("USAGE", `Tag ${tag} names a class but no encode function; give both, or neither for a decode-only tag.`);
  addExtension({
    Class: cls as never,
    tag,
    encode: enc ? (value: T, write: (data: unknown) => Uint8Array) => write(prepare(enc(value))) : (undefined as never),
    decode: dec ? (content: unknown) => dec(normalise(content)) : (undefined as never),
  });
  if (cls) tagClasses.push(cls);
}

// Tuples: an Array subclass, so cbor-x sends it through the extension path.
registerTag<Tuple>(TAG_TUPLE, {
  cls: Tuple,
  encode: (t) => Array.from(t),
  decode: (items: unknown) => {
    const t = new Tuple();
    if (Array.isArray(items)) for (let i = 0; i < items.length; i++) t.push(items[i]);
    return t;
  },
});

registerTag<PyFloat>(TAG_FLOAT, {
  cls: PyFloat,
  encode: (f) => f.value,
  decode: (v: unknown) => new PyFloat(Number(v)),
});

// Exceptions: any Error goes out as an exception map; one comes back as a RemoteError.
registerTag<Error>(TAG_EXCEPTION, {
  cls: Error,
  encode: (e) => exceptionMapOf(e),
  decode: (m: ExceptionMap) => new RemoteError(typeof m === "object" && m !== null ? m : { type: "Exception", message: String(m), traceback: "" }),
});

// Callables: a function becomes {id} through the active context; one comes back as a function.
registerTag<CallableRef>(TAG_CALLABLE, {
  cls: CallableRef,
  encode: (c) => (c.async === undefined ? { id: c.id } : { id: c.id, async: c.async }),
  decode: (m: { id?: unknown; async?: unknown }) => {
    const id = String(m?.id);
    const isAsync = typeof m?.async === "boolean" ? m.async : undefined;
    return activeCtx ? activeCtx.importCallback(id, isAsync) : new CallableRef(id, isAsync);
  },
});

const options = {
  useRecords: false,
  mapsAsObjects: true,
  useTag259ForMaps: false,
  tagUint8Array: false,
  useFloat32: 0,
  largeBigIntToFloat: false,
  structuredClone: false,
  pack: false,
  bundleStrings: false,
  variableMapSize: true,
};
const encoder = new Encoder(options as never);
const decoder = new Decoder(options as never);

const U32_MAX = 0xffffffff;
const NEG_U32 = -0x100000000;
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);
const SAFE_MIN = -SAFE_MAX;

/** Whether cbor-x can encode an object of this class as-is (ours, binary, or a raw tag). */
function passesThrough(v: object): boolean {
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer || v instanceof Tag || v instanceof Date) return true;
  for (let i = tagClasses.length - 1; i >= 0; i--) if (v instanceof tagClasses[i]!) return true;
  return false;
}

/**
 * How deep arrays, maps and objects may nest in a value that crosses (the Python runtime's
 * encoder has the same bound); a deeper value is a `TYPE` error before anything is sent.
 */
export const MAX_DEPTH = 500;

function tooDeep(): PyisolateError {
  return new PyisolateError("TYPE", `A value nests more than ${MAX_DEPTH} levels deep (arrays, maps and objects inside each other); flatten it, or pass large data as a tensor.`);
}

/**
 * Readies a value for cbor-x: functions become callables, integers beyond 32 bits become
 * BigInt (so they go out as integers), Sets become arrays and other class instances their own
 * enumerable fields. Copies only what changes.
 */
function prepare(v: unknown, depth = 0): unknown {
  switch (typeof v) {
    case "number":
      return (v > U32_MAX || v < NEG_U32) && Number.isInteger(v) ? BigInt(v) : v;
    case "function": {
      if (!activeCtx) throw new PyisolateError("TYPE", `A function (${v.name || "anonymous"}) can only be sent as an argument or result of a call.`);
      const fn = v as (...args: never[]) => unknown;
      return new CallableRef(activeCtx.exportCallback(fn), activeCtx.asyncOf?.(fn));
    }
    case "object": {
      if (v === null) return v;
      if (depth >= MAX_DEPTH) throw tooDeep();
      const d = depth + 1;
      if (Array.isArray(v)) {
        if (isTuple(v)) {
          let out: Tuple | undefined;
          for (let i = 0; i < v.length; i++) {
            const x = v[i];
            const y = prepare(x, d);
            if (y !== x && !out) out = Tuple.from(v) as Tuple;
            if (out) out[i] = y;
          }
          return out ?? v;
        }
        let out: unknown[] | undefined;
        for (let i = 0; i < v.length; i++) {
          const x = v[i];
          const y = prepare(x, d);
          if (y !== x && !out) out = v.slice();
          if (out) out[i] = y;
        }
        return out ?? v;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto === Object.prototype || proto === null) return prepareFields(v as Record<string, unknown>, false, d);
      if (v instanceof Map) {
        let changed = false;
        const out = new Map();
        let scalarKeys = true;
        for (const [k, x] of v) {
          const k2 = prepare(k, d);
          const x2 = prepare(x, d);
          if (k2 !== k || x2 !== x) changed = true;
          if (k2 !== null && typeof k2 === "object") scalarKeys = false;
          out.set(k2, x2);
        }
        const map = changed ? out : v;
        // Tuple, bytes or other non-scalar keys: tag 259, so that any peer decodes a Map again.
        return scalarKeys ? map : new Tag(map, 259);
      }
      if (passesThrough(v)) return v;
      if (v instanceof Set) return prepare(Array.from(v), depth);
      return prepareFields(v as Record<string, unknown>, true, d);
    }
    default:
      return v;
  }
}

function prepareFields(v: Record<string, unknown>, alwaysCopy: boolean, depth: number): Record<string, unknown> {
  let out: Record<string, unknown> | undefined = alwaysCopy ? {} : undefined;
  for (const k in v) {
    if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
    const x = v[k];
    const y = prepare(x, depth);
    if (y !== x && !out) out = { ...v };
    if (out) out[k] = y;
  }
  return out ?? v;
}

/** Turns 64-bit integers that fit a double exactly back into numbers, in place. */
function normalise(v: unknown): unknown {
  if (typeof v === "bigint") return v <= SAFE_MAX && v >= SAFE_MIN ? Number(v) : v;
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (typeof x === "bigint" || (typeof x === "object" && x !== null)) v[i] = normalise(x);
    }
    return v;
  }
  if (Object.getPrototypeOf(v) === Object.prototype) {
    const o = v as Record<string, unknown>;
    for (const k in o) {
      const x = o[k];
      if (typeof x === "bigint" || (typeof x === "object" && x !== null)) o[k] = normalise(x);
    }
  } else if (v instanceof Map) {
    // A map with keys that are not text (tag 259 from Python: tuple or bytes keys).
    for (const [k, x] of v) {
      const k2 = typeof k === "bigint" || (typeof k === "object" && k !== null) ? normalise(k) : k;
      const x2 = typeof x === "bigint" || (typeof x === "object" && x !== null) ? normalise(x) : x;
      if (k2 !== k) {
        v.delete(k);
        v.set(k2, x2);
      } else if (x2 !== x) v.set(k, x2);
    }
  }
  return v;
}

/**
 * Encodes one value as CBOR. Functions need a `ctx` (they become callables of that
 * connection). The result may view a buffer the encoder reuses: copy it before keeping it.
 * @throws {PyisolateError} `TYPE` for a function without a context; `RangeError` for cycles.
 */
export function encode(value: unknown, ctx?: CodecContext): Uint8Array {
  const prev = activeCtx;
  activeCtx = ctx ?? null;
  try {
    return encoder.encode(prepare(value));
  } finally {
    activeCtx = prev;
  }
}

/**
 * Decodes one CBOR item. Callables (tag 41503) become functions of `ctx`, or
 * {@link CallableRef}s without one.
 * @throws {PyisolateError} `PROTOCOL` when the bytes are not one well-formed CBOR item.
 */
export function decode(bytes: Uint8Array, ctx?: CodecContext): unknown {
  const prev = activeCtx;
  activeCtx = ctx ?? null;
  try {
    return normalise(decoder.decode(bytes));
  } catch (err) {
    if (err instanceof PyisolateError) throw err;
    throw new PyisolateError("PROTOCOL", `Could not decode a CBOR item of ${bytes.byteLength} bytes: ${(err as Error).message}.`, { cause: err });
  } finally {
    activeCtx = prev;
  }
}

/**
 * Encodes a message as a whole frame (length prefix included) in a buffer of its own, ready
 * to be written to the socket or transferred to another thread.
 */
export function encodeMessage(msg: Message, ctx?: CodecContext): Uint8Array {
  return encodeFrame(encode(msg, ctx));
}

/**
 * Decodes a frame payload into a message and checks its shape.
 * @throws {PyisolateError} `PROTOCOL` when it is not CBOR or not a known, well-formed message.
 */
export function decodeMessage(payload: Uint8Array, ctx?: CodecContext): Message {
  const msg = decode(payload, ctx);
  const problem = messageProblem(msg);
  if (problem) throw new PyisolateError("PROTOCOL", `Received a malformed message: ${problem}.`);
  return msg as Message;
}
