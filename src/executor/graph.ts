/**
 * The executor's helpers: graph order, the ready queue, hidden-input kinds, and how values
 * and tracebacks are shown in events. Private to `executor/`.
 * @module
 */
import type { NodeInfo } from "./types.ts";

/** JSON with sorted keys (and BigInt, NaN and infinities told apart): the input signature's text. */
export function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => {
    if (typeof x === "bigint") return `${x}n`;
    if (typeof x === "number" && !Number.isFinite(x)) return `num:${x}`;
    if (x && typeof x === "object" && !Array.isArray(x)) {
      return Object.fromEntries(Object.keys(x).sort().map((k) => [k, (x as Record<string, unknown>)[k]]));
    }
    return x;
  });
}

/** A value as ComfyUI shows it in `current_inputs` / `current_outputs`. */
export function formatValue(x: unknown): unknown {
  if (x === null || x === undefined) return null;
  if (typeof x === "number" || typeof x === "string" || typeof x === "boolean") return x;
  if (typeof x === "bigint") return x.toString();
  return Object.prototype.toString.call(x) === "[object Object]" && (x as { constructor?: { name?: string } }).constructor?.name
    ? `<${(x as { constructor: { name: string } }).constructor.name}>`
    : String(x);
}


/** The hidden input kinds a class declares (`PROMPT`, `EXTRA_PNGINFO`, `UNIQUE_ID`, …). */
export function hiddenKinds(info: NodeInfo | undefined): Set<string> {
  const out = new Set<string>();
  for (const v of Object.values(info?.input.hidden ?? {})) {
    const kind = Array.isArray(v) ? v[0] : v;
    if (typeof kind === "string") out.add(kind);
  }
  return out;
}

/** A binary min-heap of ids by rank. */
export class MinHeap {
  #ranks: number[] = [];
  #ids: string[] = [];

  get size(): number {
    return this.#ids.length;
  }

  peek(): string | undefined {
    return this.#ids[0];
  }

  push(rank: number, id: string): void {
    const r = this.#ranks;
    const ids = this.#ids;
    let i = ids.length;
    r.push(rank);
    ids.push(id);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (r[parent]! <= rank) break;
      r[i] = r[parent]!;
      ids[i] = ids[parent]!;
      i = parent;
    }
    r[i] = rank;
    ids[i] = id;
  }

  pop(): string | undefined {
    const r = this.#ranks;
    const ids = this.#ids;
    if (ids.length === 0) return undefined;
    const top = ids[0];
    const lastRank = r.pop()!;
    const lastId = ids.pop()!;
    const n = ids.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && r[right]! < r[left]! ? right : left;
        if (r[child]! >= lastRank) break;
        r[i] = r[child]!;
        ids[i] = ids[child]!;
        i = child;
      }
      r[i] = lastRank;
      ids[i] = lastId;
    }
    return top;
  }
}

/** Python's traceback text as ComfyUI's list of frames (`traceback.format_tb` style lines). */
export function splitTraceback(tb: string): string[] {
  const lines = tb.split("\n");
  const out: string[] = [];
  for (const line of lines) {
    if (line.startsWith("  File ")) out.push(line + "\n");
    else if (out.length > 0 && line.startsWith("    ")) out[out.length - 1] += line + "\n";
  }
  return out.length > 0 ? out : [tb];
}

/**
 * Needed nodes in dependency order (inputs before the nodes that use them): a depth-first
 * post-order from the ids in sorted order, with an explicit stack.
 */
export function topoOrder(needed: Set<string>, deps: (id: string) => string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const root of [...needed].sort()) {
    if (seen.has(root)) continue;
    seen.add(root);
    const stack: { id: string; deps: string[]; next: number }[] = [{ id: root, deps: deps(root), next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next < top.deps.length) {
        const d = top.deps[top.next++]!;
        if (!seen.has(d)) {
          seen.add(d);
          stack.push({ id: d, deps: deps(d), next: 0 });
        }
        continue;
      }
      stack.pop();
      out.push(top.id);
    }
  }
  return out;
}
