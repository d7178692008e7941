/**
 * Pieces the adapters share: they use only what Node, Deno and Bun all provide (`node:fs`,
 * web streams). Private to `adapters/`.
 * @module
 */
import { closeSync, openSync, readSync } from "node:fs";
import type { MappedFile } from "../src/runtime/contract.ts";

/** Reads `length` bytes of a file into a buffer of their own: the copying fallback of `mapFile`. */
export function readCopy(path: string, length: number): MappedFile {
  const fd = openSync(path, "r");
  try {
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
