/**
 * Remote object handles on the host. A Python object without a wire form (a ModelPatcher,
 * a CLIP, a pack's own class) stays in the process that made it and crosses as a handle
 * (CBOR tag 41502, {@link RemoteHandle}); the host forwards handles like any value and
 * routes what proxies do with them to the owner (`$obj`, in `process/host_core.ts`).
 *
 * Who holds each handle is the host's `HandleTable` (`values/handle_table.ts`); this module
 * is the handle itself, its tag, and what the codec of a connection reports
 * ({@link HandleHooks}).
 * @module
 */
import { PyisolateError } from "../errors.ts";
import { TAG_HANDLE, activeCodecContext, registerTag } from "../protocol/codec.ts";

/** The service of handle operations: `call(handle, op, args, kwargs)`, `release([[id, n], …])`. */
export const HANDLE_SERVICE = "$obj";

/** The content of tag 41502, as the owner wrote it. */
export interface RemoteHandleMap {
  /** Unguessable; starts with the epoch of the owner's process start. */
  id: string;
  /** The process that holds the object (a pack name, or `shared`). */
  owner: string;
  /** The object's qualified Python type name (`comfy.sd.CLIP`). */
  type: string;
  /** A short description, for logs and errors. */
  repr: string;
  /** The pack whose node made the object, when known. */
  pack?: string;
  [key: string]: unknown;
}

/** A Python object of another process, as the host sees it: forwarded unchanged. */
export class RemoteHandle {
  /** The tag content as decoded. */
  readonly map: RemoteHandleMap;

  constructor(map: RemoteHandleMap) {
    this.map = map;
  }
  get id(): string {
    return this.map.id;
  }
  get owner(): string {
    return this.map.owner;
  }
  get type(): string {
    return this.map.type;
  }
  get repr(): string {
    return this.map.repr;
  }
  get pack(): string | undefined {
    return this.map.pack;
  }
  toString(): string {
    return `<${this.type} object of process "${this.owner}">`;
  }

  /** Builds a handle from a decoded tag-41502 content. */
  static fromMap(map: unknown): RemoteHandle {
    const m = map as Partial<RemoteHandleMap> | null;
    if (typeof m !== "object" || m === null || typeof m.id !== "string" || typeof m.owner !== "string" || typeof m.type !== "string") {
      throw new PyisolateError("PROTOCOL", `Received a malformed remote object handle: ${String(JSON.stringify(map)).slice(0, 200)}. Both sides must run the same pyisolate version.`);
    }
    if (typeof m.repr !== "string") m.repr = "";
    return new RemoteHandle(m as RemoteHandleMap);
  }
}

registerTag<RemoteHandle>(TAG_HANDLE, {
  cls: RemoteHandle,
  encode: (h) => {
    activeCodecContext()?.handleOut?.(h);
    return h.map;
  },
  decode: (m: unknown) => {
    const h = RemoteHandle.fromMap(m);
    activeCodecContext()?.handleIn?.(h);
    return h;
  },
});

/** Every {@link RemoteHandle} inside a value (arrays, tuples, plain objects and Maps are walked). */
export function collectHandles(value: unknown, out: RemoteHandle[] = []): RemoteHandle[] {
  const seen = new Set<object>();
  const walk = (v: unknown): void => {
    if (typeof v !== "object" || v === null) return;
    if (v instanceof RemoteHandle) {
      out.push(v);
      return;
    }
    if (seen.has(v)) return;
    seen.add(v);
    if (Array.isArray(v)) for (const x of v) walk(x);
    else if (v instanceof Map) for (const [k, x] of v) (walk(k), walk(x));
    else if (!ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer)) {
      const proto = Object.getPrototypeOf(v);
      if (proto === Object.prototype || proto === null) for (const k in v) walk((v as Record<string, unknown>)[k]);
    }
  };
  walk(value);
  return out;
}

/** The workflow node whose output a handle first was. */
export interface HandleProducer {
  nodeId: string;
  classType: string;
  pack: string;
}

/** What the codec of one connection reports to the table (implemented by `HandleTable`). */
export interface HandleHooks {
  /** `handle` arrived from process `from`. */
  received(handle: RemoteHandle, from: string): void;
  /** `handle` is about to be sent to process `to`: throws when it cannot be. */
  check(handle: RemoteHandle, to: string): void;
  /** A message holding `handles` was encoded for process `to`. */
  sent(handles: readonly RemoteHandle[], to: string): void;
}
