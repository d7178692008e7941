/**
 * Shared-memory segments: where tensors live while they cross processes. Each host has a
 * folder of its own, `/dev/shm/pyisolate-<hostid>/` (the id is random per host), and each
 * segment is a file in it named `pyisolate-<hostid>-<random>`, so a segment's name alone says
 * where it lives. The host owns their lifetimes: a {@link SegmentRegistry} counts references
 * and unlinks a segment when its count reaches zero, and removes its whole folder when the host
 * closes (or gets SIGINT/SIGTERM). The folder holds the host's liveness socket (`alive`), which
 * accepts connections while the host lives: a host starting later removes a folder only when
 * that socket refuses connections — its host is provably gone — never on a guess from a pid
 * (which another container sharing `/dev/shm` may use for a live host).
 * @module
 */
import { lstatSync, mkdirSync, readdirSync, rmSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { randomBytes } from "node:crypto";
import { PyisolateError } from "../errors.ts";
import type { Runtime, SocketServer } from "../runtime/contract.ts";
import { getRuntime } from "../runtime/detect.ts";
import { collectTensorRefs, type TensorRef } from "./tensors.ts";

/** Every host folder and segment name starts with this, then the host id. */
export const SEGMENT_PREFIX = "pyisolate-";

/** The liveness socket in a host's folder. */
export const ALIVE_SOCKET = "alive";

const SEGMENT_NAME = /^pyisolate-([0-9A-Za-z]+)-[0-9A-Za-z]+$/;
const HOST_FOLDER = /^pyisolate-([0-9A-Za-z]+)$/;

/** The shared-memory directory: `PYISOLATE_SHM_DIR`, default `/dev/shm`. */
export function defaultShmDir(): string {
  return process.env.PYISOLATE_SHM_DIR || "/dev/shm";
}

/** A new random host id (12 hex digits). */
export function newHostId(): string {
  return randomBytes(6).toString("hex");
}

/** Options of {@link SegmentRegistry}. */
export interface SegmentRegistryOptions {
  /** Where the hosts' segment folders live. @default `PYISOLATE_SHM_DIR`, else `/dev/shm` */
  dir?: string;
  /**
   * The id segment names carry; children get it as `PYISOLATE_HOST_ID` (pass the same id to
   * `HostCore`). `createHost` uses a random one. @default this process's pid
   */
  hostId?: string;
  /**
   * Unlinks a segment that lives on another machine (the Ray backend: another Ray node) and
   * returns true; false when it lives here, under {@link SegmentRegistry.dir}.
   */
  unlinkRemote?: (segment: string, ref: TensorRef) => boolean;
}

/**
 * The host's account of shared-memory segments. Every holder of a value that contains
 * TensorRefs (the output cache, a call in flight) calls {@link SegmentRegistry.retain} when it
 * takes the value and {@link SegmentRegistry.release} when it lets go; a segment is unlinked
 * when its count reaches zero. Unlinking never disturbs a process that has already mapped the
 * segment: its mapping stays valid.
 *
 * @example
 * const segments = new SegmentRegistry({ hostId: newHostId() });
 * await segments.claim();             // its folder and liveness socket
 * await segments.sweepDeadHosts();    // folders of hosts that are gone
 * segments.retain(outputs);           // the executor caches a node's outputs
 * segments.release(outputs);          // evicted: segments no one else holds are unlinked
 * await segments.close();             // at host close: the folder goes
 */
export class SegmentRegistry {
  /** Where the hosts' segment folders live. */
  readonly dir: string;
  /** The id in this host's segment names. */
  readonly hostId: string;
  /** This host's folder: `<dir>/pyisolate-<hostId>`. */
  readonly hostDir: string;
  readonly #counts = new Map<string, number>();
  /** Segments of another machine, with a ref that says where (for {@link SegmentRegistryOptions.unlinkRemote}). */
  readonly #remote = new Map<string, TensorRef>();
  #alive: SocketServer | undefined;
  /** @see SegmentRegistryOptions.unlinkRemote */
  unlinkRemote: ((segment: string, ref: TensorRef) => boolean) | undefined;

  constructor(opts: SegmentRegistryOptions = {}) {
    this.dir = opts.dir ?? defaultShmDir();
    this.hostId = opts.hostId ?? String(process.pid);
    if (!/^[0-9A-Za-z]+$/.test(this.hostId)) throw new PyisolateError("USAGE", `Host id ${JSON.stringify(this.hostId)} must be letters and digits only.`);
    this.hostDir = join(this.dir, `${SEGMENT_PREFIX}${this.hostId}`);
    this.unlinkRemote = opts.unlinkRemote;
  }

  /**
   * Creates this host's folder and listens on its liveness socket, so that other hosts can
   * tell it is alive. Idempotent.
   * @throws {PyisolateError} `USAGE` when the shared-memory directory is missing or not writable.
   */
  async claim(rt?: Runtime): Promise<void> {
    if (this.#alive) return;
    try {
      mkdirSync(this.hostDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new PyisolateError("USAGE", `Cannot create the segment folder ${this.hostDir}: ${(err as Error).message}. Tensors cross processes through ${this.dir}; set PYISOLATE_SHM_DIR to a writable tmpfs folder.`, { cause: err });
    }
    const path = join(this.hostDir, ALIVE_SOCKET);
    rmSync(path, { force: true });
    this.#alive = await (rt ?? (await getRuntime())).listenUnix(path, (conn) => conn.close());
  }

  /** Adds one reference to every segment a value holds (a segment twice in it counts twice). Returns how many TensorRefs it found. */
  retain(value: unknown): number {
    let n = 0;
    for (const ref of collectTensorRefs(value)) {
      if (!ref.segment) continue;
      this.#counts.set(ref.segment, (this.#counts.get(ref.segment) ?? 0) + 1);
      if (ref.map.ray !== undefined) this.#remote.set(ref.segment, ref);
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
        const where = this.#remote.get(ref.segment);
        this.#remote.delete(ref.segment);
        if (where && this.unlinkRemote?.(ref.segment, where)) gone.push(ref.segment);
        else if (this.#unlink(ref.segment)) gone.push(ref.segment);
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
    return listSegments(this.dir, this.hostId);
  }

  /**
   * Unlinks every segment of this host (retained or not) and forgets all counts; the folder
   * and its liveness socket stay. Returns the names unlinked.
   */
  releaseAll(): string[] {
    this.#counts.clear();
    for (const [name, ref] of this.#remote) this.unlinkRemote?.(name, ref);
    this.#remote.clear();
    const gone: string[] = [];
    for (const name of this.onDisk()) if (this.#unlink(name)) gone.push(name);
    return gone;
  }

  /**
   * Removes this host's folder — every segment and the liveness socket — at once, without
   * waiting (what the host's exit hooks call). Returns the segment names removed.
   */
  removeNow(): string[] {
    const gone = this.onDisk();
    this.#counts.clear();
    this.#remote.clear();
    rmSync(this.hostDir, { recursive: true, force: true });
    return gone;
  }

  /** Stops the liveness socket and removes the folder (host close). Idempotent. */
  async close(): Promise<string[]> {
    const alive = this.#alive;
    this.#alive = undefined;
    const gone = this.removeNow();
    await alive?.close().catch(() => {});
    return gone;
  }

  /**
   * Removes the folders of hosts that are provably gone: their liveness socket exists and
   * refuses connections. A folder whose socket answers, or that has none, is kept. Returns the
   * segment names removed.
   */
  async sweepDeadHosts(rt?: Runtime): Promise<string[]> {
    const runtime = rt ?? (await getRuntime());
    const gone: string[] = [];
    let entries: string[];
    try {
      entries = readdirSync(this.dir);
    } catch {
      return gone;
    }
    await Promise.all(
      entries.map(async (name) => {
        const m = HOST_FOLDER.exec(name);
        if (!m || m[1] === this.hostId) return;
        const folder = join(this.dir, name);
        if (!(await hostGone(runtime, folder))) return;
        gone.push(...listSegments(this.dir, m[1]!));
        rmSync(folder, { recursive: true, force: true });
      }),
    );
    return gone.sort();
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

/** Whether the host of `folder` is provably gone: its liveness socket exists and refuses connections. */
async function hostGone(rt: Runtime, folder: string): Promise<boolean> {
  const path = join(folder, ALIVE_SOCKET);
  try {
    if (!lstatSync(path).isSocket()) return false;
  } catch {
    return false;
  }
  try {
    const conn = await rt.connectUnix(path);
    conn.close();
    return false;
  } catch (err) {
    const e = err as { code?: string; name?: string; message?: string };
    return e.code === "ECONNREFUSED" || e.name === "ConnectionRefused" || /refused/i.test(e.message ?? "");
  }
}

/** The host id a segment name carries, or null when it is not a segment name. */
export function segmentHostId(name: string): string | null {
  const m = SEGMENT_NAME.exec(name);
  return m ? m[1]! : null;
}

/** The path of segment `name` under `dir` (in its host's folder), refusing anything that is not a segment name. */
export function segmentPath(dir: string, name: string): string {
  const id = typeof name === "string" ? segmentHostId(name) : null;
  if (id === null) throw new PyisolateError("USAGE", `${JSON.stringify(name)} is not a pyisolate segment name.`);
  return join(dir, `${SEGMENT_PREFIX}${id}`, name);
}

/** Names of the segments under `dir` (of host `hostId` only, when given). */
export function listSegments(dir: string = defaultShmDir(), hostId?: string | number): string[] {
  let folders: string[];
  if (hostId !== undefined) folders = [`${SEGMENT_PREFIX}${hostId}`];
  else {
    try {
      folders = readdirSync(dir).filter((n) => HOST_FOLDER.test(n));
    } catch {
      return [];
    }
  }
  const out: string[] = [];
  for (const f of folders) {
    try {
      for (const n of readdirSync(join(dir, f))) if (SEGMENT_NAME.test(n)) out.push(n);
    } catch {
      // no such folder
    }
  }
  return out.sort();
}
