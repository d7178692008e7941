/**
 * Pieces the adapters share: they use only what Node, Deno and Bun all provide (`node:fs`,
 * web streams). Private to `adapters/`.
 * @module
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { PyisolateError } from "../src/errors.ts";
import type { ChildHandle, ExitStatus, MappedFile, SpawnOptions } from "../src/runtime/contract.ts";

/** Reads `length` bytes of a file into a buffer of their own: the copying fallback of `mapFile`. */
export function readCopy(path: string, length: number): MappedFile {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    if (size < length) {
      throw new PyisolateError("USAGE", `Cannot read ${length} bytes of "${path}": the file holds only ${size}.`, { file: path });
    }
    const bytes = new Uint8Array(length);
    let off = 0;
    while (off < length) {
      const n = readSync(fd, bytes, off, length - off, off);
      if (n === 0) break;
      off += n;
    }
    return { bytes, zeroCopy: false, unmap() {} };
  } finally {
    closeSync(fd);
  }
}

/** Reads a web stream to its end, handing each chunk to `cb`; a stream error just ends it. */
export async function pump(stream: ReadableStream<Uint8Array>, cb: (chunk: Uint8Array) => void): Promise<void> {
  const reader = stream.getReader();
  for (;;) {
    let r: ReadableStreamReadResult<Uint8Array>;
    try {
      r = await reader.read();
    } catch {
      return;
    }
    if (r.done) return;
    cb(r.value);
  }
}

/** A handle for a process that never started: `exited` rejects with the spawn error. */
export function failedChild(err: unknown): ChildHandle {
  const exited = Promise.reject(err instanceof Error ? err : new Error(String(err)));
  exited.catch(() => {});
  return { pid: -1, exited, kill() {} };
}

/** How long output may keep flowing after a child exited before its exit is reported anyway. */
export const DRAIN_AFTER_EXIT_MS = 2_000;

/** A started child as the web-stream runtimes (Deno, Bun) report it. */
export interface StreamChild {
  pid: number;
  stdout: ReadableStream<Uint8Array> | null;
  stderr: ReadableStream<Uint8Array> | null;
  /** Resolves when the process has exited. */
  status: Promise<ExitStatus>;
  /** Signals the process itself. */
  kill(signal: string): void;
  /** Signals its process group. */
  killGroup(signal: string): void;
}

/**
 * The {@link ChildHandle} of a child whose output comes as web streams: `exited` waits for the
 * exit and for both streams to drain; `kill` reaches the process group under `detachedGroup`
 * and does nothing once the child has exited.
 */
export function streamChildHandle(opts: SpawnOptions, child: StreamChild): ChildHandle {
  const drained = Promise.all([
    opts.onStdout && child.stdout ? pump(child.stdout, opts.onStdout) : undefined,
    opts.onStderr && child.stderr ? pump(child.stderr, opts.onStderr) : undefined,
  ]);
  let done = false;
  // A process of its own that outlives the child may hold the output pipes open: the exit
  // counts once they drain, or shortly after the exit whatever they do.
  const drainedOrLate = child.status.then(() => Promise.race([drained, new Promise<void>((r) => {
    const t = setTimeout(r, DRAIN_AFTER_EXIT_MS);
    (t as { unref?: () => void }).unref?.();
  })]));
  const exited = Promise.all([child.status, drainedOrLate]).then(([st]) => {
    done = true;
    return st;
  });
  return {
    pid: child.pid,
    exited,
    kill(signal = "SIGTERM") {
      if (done) return;
      try {
        if (opts.detachedGroup) child.killGroup(signal);
        else child.kill(signal);
      } catch {
        // already gone
      }
    },
  };
}
