/**
 * The host's account of remote object handles ({@link RemoteHandle}, `values/handles.ts`).
 *
 * The {@link HandleTable} counts who holds each handle — explicit holders (the executor's
 * output cache, through `retain`/`release`, as for tensor segments) and the processes it
 * sent the handle to, until their proxies die — and tells the owner to drop the object when
 * nobody does. A handle the host receives is held until the end of the current task, so
 * that whoever the message was for can take it (a proxy's release that arrives in the same
 * batch of frames cannot drop it first); one nobody takes by then is dropped. When an owner
 * exits, its handles are gone: using one is an error naming the node and pack that made it,
 * and the executor runs that node again.
 * @module
 */
import { PyisolateError } from "../errors.ts";
import { unref } from "../util/os.ts";
import { collectHandles, type HandleHooks, type HandleProducer, type RemoteHandle } from "./handles.ts";

/** One handle in the table (see {@link HandleTable.list}). */
export interface HandleInfo {
  id: string;
  owner: string;
  type: string;
  repr: string;
  /** Explicit holders (the output cache). */
  retained: number;
  /** Sends to each process whose proxies have not been released yet. */
  remote: Record<string, number>;
  producer?: HandleProducer;
  /** Why the object is gone (its owner exited), if it is. */
  gone?: string;
}

interface Entry {
  readonly id: string;
  readonly owner: string;
  readonly type: string;
  readonly repr: string;
  retained: number;
  remote: Map<string, number>;
  /** Receipts from the owner not released yet: the count the owner's release needs. */
  fromOwner: number;
  /** Receipts in the current task (held until it ends). */
  arriving: number;
  producer?: HandleProducer;
  gone?: string;
}

/** Options of {@link HandleTable}. */
export interface HandleTableOptions {
  /** Tells `owner` that the host let go of `n` receipts of each `[id, n]` (an `$obj.release` event). */
  release(owner: string, pairs: [string, number][]): void;
}

/**
 * The host's account of remote object handles: who holds each, and what each is.
 *
 * @example
 * const handles = new HandleTable({ release: (owner, pairs) => core.processFor(owner).event("$obj", "release", [pairs]) });
 * handles.retain(outputs);   // the executor caches a node's outputs
 * handles.release(outputs);  // evicted: objects nobody else holds are dropped by their owners
 */
export class HandleTable implements HandleHooks {
  #opts: HandleTableOptions;
  #entries = new Map<string, Entry>();
  #arriving: Entry[] = [];
  #sweep: ReturnType<typeof setTimeout> | undefined;
  #outgoing = new Map<string, [string, number][]>();
  #flushing = false;

  constructor(opts: HandleTableOptions) {
    this.#opts = opts;
  }

  /** How many handles the host holds. */
  get size(): number {
    return this.#entries.size;
  }

  /** The handles the host holds, with their holders. */
  list(): HandleInfo[] {
    return [...this.#entries.values()].map((e) => ({
      id: e.id,
      owner: e.owner,
      type: e.type,
      repr: e.repr,
      retained: e.retained,
      remote: Object.fromEntries(e.remote),
      ...(e.producer ? { producer: e.producer } : {}),
      ...(e.gone ? { gone: e.gone } : {}),
    }));
  }

  // --- the codec's reports -------------------------------------------------------------------

  received(handle: RemoteHandle, from: string): void {
    let e = this.#entries.get(handle.id);
    if (!e) {
      // A handle the host does not hold, from a process that does not own it: stale or
      // forged. Nothing to count; sending it anywhere fails (check).
      if (from !== handle.owner) return;
      e = { id: handle.id, owner: handle.owner, type: handle.type, repr: handle.repr, retained: 0, remote: new Map(), fromOwner: 0, arriving: 0 };
      this.#entries.set(e.id, e);
    }
    if (from === e.owner) e.fromOwner++;
    e.arriving++;
    this.#arriving.push(e);
    this.#sweep ??= this.#scheduleSweep();
  }

  check(handle: RemoteHandle, to: string): void {
    const e = this.#entries.get(handle.id);
    if (!e) throw this.#unknownError(handle, to);
    if (e.gone) throw this.goneError(handle);
  }

  sent(handles: readonly RemoteHandle[], to: string): void {
    for (const h of handles) {
      const e = this.#entries.get(h.id);
      // The owner gets its own object back, not a proxy: nothing there to release.
      if (e && to !== e.owner) e.remote.set(to, (e.remote.get(to) ?? 0) + 1);
    }
  }

  // --- holders -------------------------------------------------------------------------------

  /** Adds one holder to every handle a value holds (a handle twice in it counts twice). Returns how many it found. */
  retain(value: unknown): number {
    let n = 0;
    for (const h of collectHandles(value)) {
      const e = this.#entries.get(h.id);
      if (!e) continue;
      e.retained++;
      n++;
    }
    return n;
  }

  /** Drops one holder of every handle a value holds; objects nobody holds any more are released. */
  release(value: unknown): void {
    for (const h of collectHandles(value)) {
      const e = this.#entries.get(h.id);
      if (!e || e.retained === 0) continue;
      e.retained--;
      this.#maybeDrop(e);
    }
  }

  /** Process `from` let go of `n` sends of each `[id, n]` (its proxies died). */
  releasedBy(from: string, pairs: unknown): void {
    if (!Array.isArray(pairs)) return;
    for (const pair of pairs) {
      if (!Array.isArray(pair)) continue;
      const e = this.#entries.get(String(pair[0]));
      const n = Number(pair[1]);
      if (!e || !Number.isFinite(n)) continue;
      const left = (e.remote.get(from) ?? 0) - n;
      if (left > 0) e.remote.set(from, left);
      else e.remote.delete(from);
      this.#maybeDrop(e);
    }
  }

  /**
   * Process `name` exited (`why` says how): the objects it owned are gone, and the proxies
   * it held are released.
   */
  processExited(name: string, why: string): void {
    for (const e of [...this.#entries.values()]) {
      if (e.owner === name && !e.gone) {
        e.gone = why;
        e.fromOwner = 0;
      }
      if (e.remote.delete(name) || e.gone) this.#maybeDrop(e);
    }
  }

  /** Forgets everything (the host closed). */
  clear(): void {
    this.#entries.clear();
    this.#arriving = [];
    this.#outgoing.clear();
    if (this.#sweep !== undefined) clearTimeout(this.#sweep);
    this.#sweep = undefined;
  }

  // --- what the registry and router ask ------------------------------------------------------

  /** Records the node whose outputs `value` is, for handles that have no producer yet. */
  annotate(value: unknown, producer: HandleProducer): void {
    for (const h of collectHandles(value)) {
      const e = this.#entries.get(h.id);
      if (e && !e.producer) e.producer = producer;
    }
  }

  /** Whether a value holds a handle whose object is gone (or that the host no longer holds). */
  stale(value: unknown): boolean {
    return collectHandles(value).some((h) => {
      const e = this.#entries.get(h.id);
      return !e || e.gone !== undefined;
    });
  }

  /** @throws {PyisolateError} the error of the first handle in `value` that cannot be used any more. */
  assertUsable(value: unknown): void {
    for (const h of collectHandles(value)) {
      const e = this.#entries.get(h.id);
      if (!e) throw this.#unknownError(h);
      if (e.gone) throw this.goneError(h);
    }
  }

  /**
   * @throws {PyisolateError} `PERMISSION_DENIED` unless process `process` holds `handle` (the
   * host sent it there and its proxy is alive) or owns it: a process uses only the objects
   * it was given.
   */
  assertHeldBy(handle: RemoteHandle, process: string): void {
    const e = this.#entries.get(handle.id);
    if (!e || e.owner === process || (e.remote.get(process) ?? 0) > 0) return;
    throw new PyisolateError(
      "PERMISSION_DENIED",
      `Process "${process}" used ${this.describe(handle)}, which the host never gave it. A process can use only the objects that reach it as node inputs, call arguments or results.`,
      { pack: process },
    );
  }

  /** The handles in `value` whose objects live in another process than `process`, one per object. */
  crossing(value: unknown, process: string): HandleInfo[] {
    const out = new Map<string, HandleInfo>();
    for (const h of collectHandles(value)) {
      if (h.owner === process || out.has(h.id)) continue;
      const e = this.#entries.get(h.id);
      out.set(h.id, { id: h.id, owner: h.owner, type: h.type, repr: h.repr, retained: e?.retained ?? 0, remote: {}, ...(e?.producer ? { producer: e.producer } : {}) });
    }
    return [...out.values()];
  }

  /**
   * The log lines for the objects of other processes in `value` that node `nodeId`
   * (`classType`, run by process `process`) is about to use: one per pair of processes not
   * in `seen` yet (which it fills), saying that every call on them crosses processes.
   */
  crossingNotes(value: unknown, process: string, nodeId: string, classType: string, seen: Set<string>): string[] {
    const notes: string[] = [];
    for (const h of this.crossing(value, process)) {
      const key = `${h.owner}\u0000${process}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const from = h.producer ? `node ${h.producer.nodeId} (${h.producer.classType}, pack ${h.producer.pack})` : `process ${h.owner}`;
      notes.push(
        `- node ${nodeId} (${classType}) uses a ${h.type} object made by ${from} in another process: ` +
          "every call on it crosses processes; run both nodes in one process to avoid that (docs/handles.md)",
      );
    }
    return notes;
  }

  /** Which object a handle is, for messages: `the comfy.sd.CLIP object made by node 4 (CLIPLoader) of pack "A"`. */
  describe(handle: RemoteHandle): string {
    const p = this.#entries.get(handle.id)?.producer;
    const made = p ? `made by node ${p.nodeId} (${p.classType}) of pack "${p.pack}"` : `of process "${handle.owner}"`;
    return `the ${handle.type} object ${made}`;
  }

  /** The error for using a handle whose owner exited. */
  goneError(handle: RemoteHandle, cause?: string): PyisolateError {
    const e = this.#entries.get(handle.id);
    const why = cause ?? e?.gone ?? `process "${handle.owner}" is not running`;
    const p = e?.producer;
    return new PyisolateError(
      "PROCESS_EXITED",
      `${cap(this.describe(handle))} is gone: it lived in process "${handle.owner}", which ${why.replace(/^the Python process /, "")}. ` +
        `Run the workflow again: ${p ? `node ${p.nodeId} runs again and makes it anew` : "the node that made it runs again"}.`,
      { pack: p?.pack ?? handle.owner, ...(p ? { node: p.nodeId } : {}) },
    );
  }

  #unknownError(handle: RemoteHandle, to?: string): PyisolateError {
    return new PyisolateError(
      "NOT_FOUND",
      `The ${handle.type} handle ${handle.id} of process "${handle.owner}" is not held by the host${to ? ` and cannot be sent to "${to}"` : ""}: ` +
        "it was released (nobody held it), or made by an earlier start of that process. Keep the value retained " +
        "(host.core.handles.retain(value)) while you pass it on.",
      { pack: handle.owner },
    );
  }

  // --- internals -----------------------------------------------------------------------------

  #holders(e: Entry): number {
    let n = e.retained + e.arriving;
    for (const c of e.remote.values()) n += c;
    return n;
  }

  #maybeDrop(e: Entry): void {
    if (this.#holders(e) > 0 || this.#entries.get(e.id) !== e) return;
    this.#entries.delete(e.id);
    if (e.gone || e.fromOwner <= 0) return;
    let list = this.#outgoing.get(e.owner);
    if (!list) this.#outgoing.set(e.owner, (list = []));
    list.push([e.id, e.fromOwner]);
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushing = false;
    const all = [...this.#outgoing];
    this.#outgoing.clear();
    for (const [owner, pairs] of all) {
      try {
        this.#opts.release(owner, pairs);
      } catch {
        // an owner that is going away drops its objects anyway
      }
    }
  }

  #scheduleSweep(): ReturnType<typeof setTimeout> {
    const t = setTimeout(() => {
      this.#sweep = undefined;
      const arrived = this.#arriving;
      this.#arriving = [];
      for (const e of arrived) {
        e.arriving--;
        this.#maybeDrop(e);
      }
    }, 0);
    unref(t);
    return t;
  }
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
