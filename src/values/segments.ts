/**
 * Shared-memory segments: where tensors live while they cross processes
 * (`/dev/shm/pyisolate-<hostpid>-<random>`). The host owns their lifetimes: a
 * {@link SegmentRegistry} counts references and unlinks a segment when its count reaches zero,
 * removes what is left when the host closes, and removes segments of dead hosts at start.
 * @module
 */
import { readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { PyisolateError } from "../errors.ts";
import { pidAlive } from "../util/os.ts";
import { collectTensorRefs, type TensorRef } from "./tensors.ts";

/** Every segment's file name starts with this, then the host pid and a dash. */
export const SEGMENT_PREFIX = "pyisolate-";

/** The shared-memory directory: `PYISOLATE_SHM_DIR`, default `/dev/shm`. */
export function defaultShmDir(): string {
  return process.env.PYISOLATE_SHM_DIR || "/dev/shm";
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

/** The path of segment `name` in `dir`, refusing anything that is not a segment name. */
export function segmentPath(dir: string, name: string): string {
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
