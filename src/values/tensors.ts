/**
 * Tensors on the TypeScript side. A tensor never travels through the host: Python writes its
 * bytes once into a shared-memory segment (`/dev/shm/pyisolate-<hostpid>-<random>`) and the
 * host sees a {@link TensorRef} (CBOR tag 41501; numpy arrays: tag 41505), which it forwards to
 * other processes byte for byte. The host owns the segments' lifetimes: a
 * {@link SegmentRegistry} counts references and unlinks a segment when its count reaches zero,
 * removes what is left when the host closes, and removes segments of dead hosts at start.
 * {@link viewTensor} lets TS code read a tensor's bytes without copying them.
 * @module
 */
import { readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { TAG_NDARRAY, TAG_TENSOR, registerTag } from "../protocol/codec.ts";
import { PyisolateError } from "../errors.ts";
import type { MappedFile, Runtime } from "../runtime/contract.ts";
import { getRuntime } from "../runtime/detect.ts";

/** Every segment's file name starts with this, then the host pid and a dash. */
export const SEGMENT_PREFIX = "pyisolate-";

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

/** The shared-memory directory: `PYISOLATE_SHM_DIR`, default `/dev/shm`. */
export function defaultShmDir(): string {
  return process.env.PYISOLATE_SHM_DIR || "/dev/shm";
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}

/** Options of {@link SegmentRegistry}. */
export interface SegmentRegistryOptions {
  /** Where segments live. @default `PYISOLATE_SHM_DIR`, else `/dev/shm` */
  dir?: string;
  /** The pid segment names carry (children get it as `PYISOLATE_HOST_PID`). @default this process's pid */
  hostPid?: number;
}

/**
 * The host's account of shared-memory segments. Every holder of a value that contains
 * TensorRefs (the output cache, a call in flight) calls {@link SegmentRegistry.retain} when it
 * takes the value and {@link SegmentRegistry.release} when it lets go; a segment is unlinked
 * when its count reaches zero. Unlinking never disturbs a process that has already mapped the
 * segment: its mapping stays valid. One registry per host process.
 *
 * @example
 * const segments = new SegmentRegistry();
 * segments.sweepDeadHosts();          // at host start
 * segments.retain(outputs);           // the executor caches a node's outputs
 * segments.release(outputs);          // evicted: segments no one else holds are unlinked
 * segments.releaseAll();              // at host close
 */
export class SegmentRegistry {
  /** The shared-memory directory. */
  readonly dir: string;
  /** The pid in this host's segment names. */
  readonly hostPid: number;
  readonly #counts = new Map<string, number>();

  constructor(opts: SegmentRegistryOptions = {}) {
    this.dir = opts.dir ?? defaultShmDir();
    this.hostPid = opts.hostPid ?? process.pid;
  }

  /** Adds one reference to every segment a value holds (a segment twice in it counts twice). Returns how many TensorRefs it found. */
  retain(value: unknown): number {
    let n = 0;
    for (const ref of collectTensorRefs(value)) {
      if (!ref.segment) continue;
      this.#counts.set(ref.segment, (this.#counts.get(ref.segment) ?? 0) + 1);
      n++;
    }
    return n;
  }

  /**
   * Drops one reference to every segment a value holds; segments left with none are unlinked.
   * Returns the names unlinked. Releasing a segment that is not retained does nothing.
   */
  release(value: unknown): string[] {
    const gone: string[] = [];
    for (const ref of collectTensorRefs(value)) {
      const c = this.#counts.get(ref.segment);
      if (c === undefined) continue;
      if (c > 1) this.#counts.set(ref.segment, c - 1);
      else {
        this.#counts.delete(ref.segment);
        if (this.#unlink(ref.segment)) gone.push(ref.segment);
      }
    }
    return gone;
  }

  /** The reference count of a segment (0 when not retained). */
  refCount(segment: string): number {
    return this.#counts.get(segment) ?? 0;
  }

  /** Names of the segments currently retained. */
  retained(): string[] {
    return [...this.#counts.keys()];
  }

  /** Segments of this host on disk (retained or not: a child may have written one the host never saw). */
  onDisk(): string[] {
    return listSegments(this.dir, this.hostPid);
  }

  /**
   * Unlinks every segment of this host (retained or not) and forgets all counts. Called when
   * the host closes. Returns the names unlinked.
   */
  releaseAll(): string[] {
    this.#counts.clear();
    const gone: string[] = [];
    for (const name of this.onDisk()) if (this.#unlink(name)) gone.push(name);
    return gone;
  }

  /**
   * Removes segments whose host pid is no longer alive (left by a host that was killed).
   * Called at host start. Returns the names removed.
   */
  sweepDeadHosts(): string[] {
    const gone: string[] = [];
    const alive = new Map<number, boolean>();
    for (const name of listSegments(this.dir)) {
      const pid = segmentPid(name);
      if (pid === null || pid === this.hostPid) continue;
      let a = alive.get(pid);
      if (a === undefined) alive.set(pid, (a = pidAlive(pid)));
      if (!a && this.#unlink(name)) gone.push(name);
    }
    return gone;
  }

  /** The file of a segment. */
  path(segment: string): string {
    return segmentPath(this.dir, segment);
  }

  #unlink(name: string): boolean {
    try {
      unlinkSync(segmentPath(this.dir, name));
      return true;
    } catch {
      return false;
    }
  }
}

/** The pid a segment name carries, or null when it is not a segment name. */
export function segmentPid(name: string): number | null {
  const m = /^pyisolate-(\d+)-[0-9a-zA-Z]+$/.exec(name);
  return m ? Number(m[1]) : null;
}

function segmentPath(dir: string, name: string): string {
  if (!name.startsWith(SEGMENT_PREFIX) || name.includes("/")) {
    throw new PyisolateError("USAGE", `${JSON.stringify(name)} is not a pyisolate segment name.`);
  }
  return join(dir, name);
}

/** Names of the segments in `dir` (of host `pid` only, when given). */
export function listSegments(dir: string = defaultShmDir(), pid?: number): string[] {
  const want = pid === undefined ? SEGMENT_PREFIX : `${SEGMENT_PREFIX}${pid}-`;
  try {
    return readdirSync(dir).filter((n) => n.startsWith(want)).sort();
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// Views

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
 * @throws {PyisolateError} `USAGE` for a CUDA tensor (its memory is not in a segment),
 *   `NOT_FOUND` when the segment was already released.
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
  const path = segmentPath(opts.dir ?? defaultShmDir(), ref.segment);
  let mapped: MappedFile;
  try {
    mapped = runtime.mapFile(path, ref.offset + ref.nbytes);
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") {
      throw new PyisolateError("NOT_FOUND", `Tensor segment ${ref.segment} is gone: it was released before it was viewed. Retain the value that holds it while you use it.`, { cause: err });
    }
    throw err;
  }
  const bytes = mapped.bytes.subarray(ref.offset, ref.offset + ref.nbytes);
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
