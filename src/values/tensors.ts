/**
 * Tensors on the TypeScript side. A tensor never travels through the host: Python writes its
 * bytes once into a shared-memory segment (`/dev/shm/pyisolate-<hostpid>-<random>`) and the
 * host sees a {@link TensorRef} (CBOR tag 41501; numpy arrays: tag 41505), which it forwards to
 * other processes byte for byte. The segments' lifetimes are `segments.ts`'s; reading a
 * tensor's bytes from TypeScript without copying them is `view.ts`'s.
 * @module
 */
import { TAG_NDARRAY, TAG_TENSOR, registerTag } from "../protocol/codec.ts";
import { PyisolateError } from "../errors.ts";

/** The content of tag 41501, as the producer wrote it. */
export interface TensorRefMap {
  /** File name of the segment in the shared-memory directory; `""` when no bytes are shared (empty tensors, CUDA). */
  segment: string;
  /** Byte offset in the segment where the bytes the tensor spans begin. */
  offset: number;
  /** Length of those bytes. */
  nbytes: number;
  /** torch dtype name without `torch.` (`"float32"`, `"bfloat16"`, `"bool"`, …); numpy arrays use numpy's name. */
  dtype: string;
  shape: number[];
  /** Strides in elements (negative only for numpy arrays). */
  strides: number[];
  /** `"cpu"`, or `"cuda:N"` for a CUDA IPC handle. */
  device: string;
  /** CUDA IPC handle fields (device `cuda:N` only); only Python reads them. */
  cuda?: Record<string, unknown>;
  [key: string]: unknown;
}

/**
 * A tensor in shared memory (or a CUDA tensor's IPC handle), as the host sees it. It keeps the
 * decoded tag content untouched, so encoding it again gives exactly the same bytes: forwarding
 * a tensor to another process copies nothing but this small map.
 */
export class TensorRef {
  /** The tag content as decoded. */
  readonly map: TensorRefMap;

  constructor(map: TensorRefMap) {
    this.map = map;
  }

  /** Whether Python sees a numpy array (tag 41505) rather than a torch tensor. */
  get isNumpy(): boolean {
    return false;
  }
  get segment(): string {
    return this.map.segment;
  }
  get offset(): number {
    return Number(this.map.offset);
  }
  get nbytes(): number {
    return Number(this.map.nbytes);
  }
  get dtype(): string {
    return this.map.dtype;
  }
  get shape(): readonly number[] {
    return this.map.shape;
  }
  get strides(): readonly number[] {
    return this.map.strides;
  }
  get device(): string {
    return this.map.device;
  }
  /** Number of elements. */
  get numel(): number {
    return this.map.shape.reduce((a, b) => a * Number(b), 1);
  }

  /** Builds a TensorRef from a decoded tag-41501 content (or a plain object of the same shape). */
  static fromMap(map: unknown): TensorRef {
    return new TensorRef(checkMap(map, "tensor"));
  }
}

/** A numpy array in shared memory (tag 41505 `[numpy dtype str, map]`). */
export class NdArrayRef extends TensorRef {
  /** numpy's dtype string (`"<f4"`). */
  readonly numpyDtype: string;

  constructor(numpyDtype: string, map: TensorRefMap) {
    super(map);
    this.numpyDtype = numpyDtype;
  }
  override get isNumpy(): boolean {
    return true;
  }
}

function checkMap(map: unknown, what: string): TensorRefMap {
  const m = map as Partial<TensorRefMap> | null;
  if (
    typeof m !== "object" || m === null || typeof m.segment !== "string" || typeof m.dtype !== "string" ||
    !Array.isArray(m.shape) || !Array.isArray(m.strides) || typeof m.device !== "string"
  ) {
    throw new PyisolateError("PROTOCOL", `Received a malformed ${what} reference: ${safeJson(map)}. Both sides must run the same pyisolate version.`);
  }
  return m as TensorRefMap;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? String(x) : x))?.slice(0, 200) ?? String(v);
  } catch {
    return String(v);
  }
}

registerTag<TensorRef>(TAG_TENSOR, {
  cls: TensorRef,
  encode: (t) => t.map,
  decode: (m: unknown) => TensorRef.fromMap(m),
});
registerTag<NdArrayRef>(TAG_NDARRAY, {
  cls: NdArrayRef,
  encode: (t) => [t.numpyDtype, t.map],
  decode: (c: unknown) => {
    if (!Array.isArray(c) || c.length !== 2 || typeof c[0] !== "string") {
      throw new PyisolateError("PROTOCOL", `Received a malformed numpy array reference: ${safeJson(c)}.`);
    }
    return new NdArrayRef(c[0], checkMap(c[1], "numpy array"));
  },
});

/**
 * Every {@link TensorRef} inside a value (arrays, tuples, plain objects and Maps are walked).
 * @example
 * const refs = collectTensorRefs({ samples: latentRef, batch_index: [0] }); // [latentRef]
 */
export function collectTensorRefs(value: unknown, out: TensorRef[] = []): TensorRef[] {
  const seen = new Set<object>();
  const walk = (v: unknown): void => {
    if (typeof v !== "object" || v === null) return;
    if (v instanceof TensorRef) {
      out.push(v);
      return;
    }
    if (seen.has(v)) return;
    seen.add(v);
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
    } else if (v instanceof Map) {
      for (const [k, x] of v) {
        walk(k);
        walk(x);
      }
    } else if (!ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer)) {
      const proto = Object.getPrototypeOf(v);
      if (proto === Object.prototype || proto === null) for (const k in v) walk((v as Record<string, unknown>)[k]);
    }
  };
  walk(value);
  return out;
}
