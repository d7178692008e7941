/**
 * The wire protocol between the host and a Python process (`docs/protocol.md`): the message
 * union with its short keys, and the check that a decoded frame is one of them. Framing is
 * `frames.ts`'s; encoding, `codec.ts`'s.
 * @module
 */

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
  /** ComfyUI's built-in nodes (core mode): `path` is the checkout, loaded as ComfyUI's start-up does. */
  core?: boolean;
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
