/**
 * Turns a child's output stream into lines for the host's log.
 * @module
 */

/** A line longer than this many characters is cut into pieces of this length. */
export const MAX_LINE_CHARS: number = 16 * 1024;

const LINE_END = /\r\n|\r|\n/g;

/**
 * Splits a byte stream into text lines. `\n`, `\r\n` and a lone `\r` end a line (progress bars
 * such as tqdm's redraw with `\r`; each redraw becomes a line). Memory is bounded: a line
 * longer than {@link MAX_LINE_CHARS} is cut, and each chunk is scanned once, so the cost is
 * linear in the output whatever its shape.
 */
export class LineSplitter {
  #dec = new TextDecoder();
  #parts: string[] = [];
  #pending = 0;
  #afterCR = false;

  /** Characters of the line not yet ended. */
  get pending(): number {
    return this.#pending;
  }

  /** Adds a chunk; returns the lines it completes (and pieces of over-long lines). */
  push(chunk: Uint8Array): string[] {
    let text = this.#dec.decode(chunk, { stream: true });
    const out: string[] = [];
    if (this.#afterCR && text.startsWith("\n")) text = text.slice(1); // "\r" | "\n" across two chunks
    this.#afterCR = false;
    if (text.length === 0) return out;
    let start = 0;
    LINE_END.lastIndex = 0;
    for (let m = LINE_END.exec(text); m; m = LINE_END.exec(text)) {
      const end = m.index;
      this.#add(text, start, end, out);
      const line = this.#take();
      // A bare "\r" redraw that printed nothing is not worth a line.
      if (line.length > 0 || m[0] !== "\r") out.push(line);
      start = end + m[0].length;
      if (m[0] === "\r" && start === text.length) this.#afterCR = true;
    }
    this.#add(text, start, text.length, out);
    return out;
  }

  /** What is left (the line not yet ended), as a last line; empties the splitter. */
  flush(): string[] {
    const tail = this.#dec.decode();
    if (tail) this.#add(tail, 0, tail.length, []);
    const last = this.#take();
    return last ? [last] : [];
  }

  /** Cuts a partial line off now (a timer's flush); the stream goes on. */
  flushPartial(): string[] {
    const last = this.#take();
    return last ? [last] : [];
  }

  #add(text: string, from: number, to: number, out: string[]): void {
    while (to - from > 0) {
      const room = MAX_LINE_CHARS - this.#pending;
      const n = Math.min(room, to - from);
      this.#parts.push(text.slice(from, from + n));
      this.#pending += n;
      from += n;
      if (this.#pending >= MAX_LINE_CHARS) out.push(this.#take());
    }
  }

  #take(): string {
    const line = this.#parts.length === 1 ? this.#parts[0]! : this.#parts.join("");
    this.#parts = [];
    this.#pending = 0;
    return line;
  }
}
