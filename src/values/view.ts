/**
 * Reading a tensor's bytes from TypeScript, in place: {@link viewTensor} maps the tensor's
 * segment (zero-copy where the runtime can) and {@link tensorValues} reads its elements.
 * @module
 */
import { asPyisolateError, PyisolateError } from "../errors.ts";
import type { MappedFile, Runtime } from "../runtime/contract.ts";
import { getRuntime } from "../runtime/detect.ts";
import { unlinkSync } from "node:fs";
import { defaultShmDir, segmentHostId, segmentPath } from "./segments.ts";
import type { TensorRef } from "./tensors.ts";

/** How a host whose tensors may live on other machines (the Ray backend) reaches them. */
export interface RemoteSegments {
  /** Whether the ref's bytes live on another machine. */
  remote(ref: TensorRef): boolean;
  /** Copies them into a new segment of the host on this machine; returns its name. */
  fetch(ref: TensorRef): Promise<string>;
}

/** By host id (the one in segment names): the hosts of this process whose tensors may live elsewhere. */
const remoteSegments = new Map<string, RemoteSegments>();

/**
 * Lets {@link viewTensor} read the tensors of host `hostId` that live on other machines
 * (the Ray backend registers itself). Returns the function that unregisters it.
 */
export function registerRemoteSegments(hostId: string, how: RemoteSegments): () => void {
  remoteSegments.set(hostId, how);
  return () => {
    if (remoteSegments.get(hostId) === how) remoteSegments.delete(hostId);
  };
}

/** A typed array over a tensor's elements, by dtype, where JavaScript has one. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

const TYPED: Record<string, { new (buf: ArrayBufferLike, off: number, len: number): TensorData; BYTES_PER_ELEMENT: number }> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

/** Bytes per element of the dtypes tensors use (torch and numpy names). */
export const DTYPE_SIZES: Readonly<Record<string, number>> = {
  bool: 1, uint8: 1, int8: 1, float8_e4m3fn: 1, float8_e5m2: 1, float8_e4m3fnuz: 1, float8_e5m2fnuz: 1,
  int16: 2, uint16: 2, float16: 2, bfloat16: 2,
  int32: 4, uint32: 4, float32: 4, complex32: 4,
  int64: 8, uint64: 8, float64: 8, complex64: 8,
  complex128: 16,
};

/** A tensor's bytes, read from its segment. */
export interface TensorView {
  readonly ref: TensorRef;
  /** The bytes the tensor spans (`ref.nbytes` of them). */
  readonly bytes: Uint8Array;
  /** Whether `bytes` views the shared memory itself (false: a copy was read). */
  readonly zeroCopy: boolean;
  /**
   * The span as typed elements, where JavaScript has a typed array for the dtype (bool as
   * `Uint8Array`); null for bfloat16, float16, float8 and complex dtypes — use `bytes`.
   */
  readonly data: TensorData | null;
  /** Index in `data` (in elements from the start of `bytes`) of element [0, …, 0]. */
  readonly start: number;
  /** Releases the mapping; `bytes` and `data` must not be used afterwards. */
  unmap(): void;
}

/**
 * Maps a tensor's segment (read-only) and returns its bytes, without copying them where the
 * runtime can map files (Node: through koffi; otherwise a copy is read and `zeroCopy` is false).
 * A tensor of a pack on another Ray node (the Ray backend) is first copied to this machine
 * through Ray; `zeroCopy` then speaks of the local copy.
 * @throws {PyisolateError} `USAGE` for a CUDA tensor (its memory is not in a segment),
 *   `NOT_FOUND` when the segment was already released, `RAY` when a tensor of another Ray node
 *   cannot be fetched (naming the node and the cause).
 * @example
 * const v = await viewTensor(ref);
 * const first = (v.data as Float32Array)[v.start];
 * v.unmap();
 */
export async function viewTensor(ref: TensorRef, opts: { runtime?: Runtime; dir?: string } = {}): Promise<TensorView> {
  if (ref.device !== "cpu") {
    throw new PyisolateError("USAGE", `A ${ref.device} tensor lives in GPU memory and has no shared-memory segment to view; move it to the CPU in Python first.`);
  }
  const item = DTYPE_SIZES[ref.dtype];
  let lo = 0;
  ref.shape.forEach((n, i) => {
    const st = Number(ref.strides[i] ?? 0);
    if (st < 0 && n > 0) lo += (Number(n) - 1) * st;
  });
  const start = 0 - lo; // not -lo: that is -0 when lo is 0
  if (!ref.segment || ref.nbytes === 0) {
    return { ref, bytes: new Uint8Array(0), zeroCopy: true, data: null, start, unmap() {} };
  }
  const runtime = opts.runtime ?? (await getRuntime());
  const hid = segmentHostId(ref.segment);
  const elsewhere = hid === null ? undefined : remoteSegments.get(hid);
  const copy = elsewhere?.remote(ref) ? await elsewhere.fetch(ref) : undefined;
  const path = segmentPath(opts.dir ?? defaultShmDir(), copy ?? ref.segment);
  const offset = copy ? 0 : ref.offset;
  let mapped: MappedFile;
  try {
    mapped = runtime.mapFile(path, offset + ref.nbytes);
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") {
      throw new PyisolateError("NOT_FOUND", `Tensor segment ${ref.segment} is gone: it was released before it was viewed. Retain the value that holds it while you use it.`, { cause: err });
    }
    throw asPyisolateError(err, `mapping tensor segment ${ref.segment} (${path})`);
  } finally {
    // The copy is this view's alone: its file goes once mapped (the mapping stays valid).
    if (copy) {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }
  }
  const bytes = mapped.bytes.subarray(offset, offset + ref.nbytes);
  const T = TYPED[ref.dtype];
  let data: TensorData | null = null;
  if (T && item !== undefined && (bytes.byteOffset % T.BYTES_PER_ELEMENT) === 0) {
    data = new T(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / T.BYTES_PER_ELEMENT));
  }
  return { ref, bytes, zeroCopy: mapped.zeroCopy, data, start, unmap: () => mapped.unmap() };
}

/**
 * The tensor's elements in logical (row-major) order, as a new array: numbers (bigint for
 * 64-bit integers, 0/1 for bool). For checks and small tensors; large ones should use
 * {@link viewTensor}.
 * @throws {PyisolateError} `TYPE` for dtypes JavaScript has no typed array for.
 */
export async function tensorValues(ref: TensorRef, opts: { runtime?: Runtime; dir?: string } = {}): Promise<(number | bigint)[]> {
  const v = await viewTensor(ref, opts);
  try {
    const out: (number | bigint)[] = [];
    if (ref.numel === 0) return out;
    const data = v.data;
    if (!data) throw new PyisolateError("TYPE", `Tensors of dtype ${ref.dtype} have no JavaScript typed array; read TensorView.bytes instead.`);
    const shape = ref.shape.map(Number);
    const strides = ref.strides.map(Number);
    const idx = new Array<number>(shape.length).fill(0);
    for (let k = 0; k < ref.numel; k++) {
      let pos = v.start;
      for (let d = 0; d < shape.length; d++) pos += idx[d]! * strides[d]!;
      out.push(data[pos]!);
      for (let d = shape.length - 1; d >= 0; d--) {
        if (++idx[d]! < shape[d]!) break;
        idx[d] = 0;
      }
    }
    return out;
  } finally {
    v.unmap();
  }
}
