/**
 * Turns a child's output stream into lines for the host's log.
 * @module
 */

/** Splits a byte stream into text lines. */
export class LineSplitter {
  #dec = new TextDecoder();
  #rest = "";
  /** Adds a chunk; returns the lines it completes. */
  push(chunk: Uint8Array): string[] {
    const text = this.#rest + this.#dec.decode(chunk, { stream: true });
    const parts = text.split("\n");
    this.#rest = parts.pop()!;
    return parts.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
  }
  /** What is left after the stream ended, as a last line. */
  flush(): string[] {
    const last = this.#rest + this.#dec.decode();
    this.#rest = "";
    return last ? [last] : [];
  }
}
