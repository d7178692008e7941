/**
 * What the broker watches of its child besides the socket: its output, as log lines (a line
 * without its end is logged after a while), and its memory, against a limit.
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { LineSplitter } from "./line_splitter.ts";
import { unref } from "../src/util/os.ts";

/** How long a line without its end (a progress bar, a prompt) waits before it is logged anyway. */
export const PARTIAL_LINE_FLUSH_MS = 1_000;

/** How often a process with a memory limit is measured. */
export const MEMORY_POLL_MS = 200;

type Stream = "stdout" | "stderr";

/** A child's stdout and stderr as lines. */
export class OutputLines {
  #emit: (stream: Stream, lines: string[]) => void;
  #splitters = { stdout: new LineSplitter(), stderr: new LineSplitter() };
  #timers: Partial<Record<Stream, ReturnType<typeof setTimeout>>> = {};

  constructor(emit: (stream: Stream, lines: string[]) => void) {
    this.#emit = emit;
  }

  /** A chunk of one stream. */
  push(stream: Stream, chunk: Uint8Array): void {
    const splitter = this.#splitters[stream];
    this.#emit(stream, splitter.push(chunk));
    const timer = this.#timers[stream];
    if (splitter.pending > 0 && !timer) {
      const t = setTimeout(() => {
        this.#timers[stream] = undefined;
        this.#emit(stream, splitter.flushPartial());
      }, PARTIAL_LINE_FLUSH_MS);
      unref(t);
      this.#timers[stream] = t;
    } else if (splitter.pending === 0 && timer) {
      clearTimeout(timer);
      this.#timers[stream] = undefined;
    }
  }

  /** Both streams ended: what is left goes out as last lines. */
  end(): void {
    for (const k of ["stdout", "stderr"] as const) {
      if (this.#timers[k]) clearTimeout(this.#timers[k]);
      this.#timers[k] = undefined;
      this.#emit(k, this.#splitters[k].flush());
    }
  }
}

/** Calls `onExceed(used)` once the tree of `pid` uses more than `limit` bytes; returns a stop function. */
export function watchMemory(pid: number, limit: number, onExceed: (used: number) => void): () => void {
  const timer = setInterval(() => {
    const used = treeRss(pid);
    if (used > limit) {
      clearInterval(timer);
      onExceed(used);
    }
  }, MEMORY_POLL_MS);
  unref(timer);
  return () => clearInterval(timer);
}

/** `n` bytes in MiB, for messages. */
export function mib(n: number): string {
  return `${(n / 2 ** 20).toFixed(0)} MiB`;
}

const PAGE_SIZE = 4096;

/** Resident memory of a process and its descendants, from /proc (0 where /proc cannot tell). */
export function treeRss(pid: number): number {
  let total = 0;
  const todo = [pid];
  const seen = new Set<number>();
  while (todo.length > 0) {
    const p = todo.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    try {
      const statm = readFileSync(`/proc/${p}/statm`, "utf8").split(" ");
      total += Number(statm[1]) * PAGE_SIZE;
    } catch {
      continue; // gone meanwhile
    }
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, "utf8").split(" ")) if (c.trim()) todo.push(Number(c));
      } catch {
        // no such task any more
      }
    }
  }
  return total;
}
