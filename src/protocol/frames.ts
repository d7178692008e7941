/**
 * Length-prefixed framing of the wire protocol: every frame is a 4-byte big-endian length
 * followed by exactly one CBOR data item.
 * @module
 */
import { PyisolateError } from "../errors.ts";

/** Largest frame payload either side accepts (1 GiB); a longer frame is a protocol error. */
export const MAX_FRAME: number = 1 << 30;

/** Bytes of the length prefix in front of every frame. */
export const FRAME_HEADER_BYTES = 4;

/**
 * Prefixes a payload with its 4-byte big-endian length, in one new buffer that nothing else
 * shares (so it can be transferred to another thread).
 * @throws {PyisolateError} `PROTOCOL` when the payload is longer than {@link MAX_FRAME}.
 */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const n = payload.byteLength;
  if (n > MAX_FRAME) {
    throw new PyisolateError("PROTOCOL", `A message of ${n} bytes is larger than the ${MAX_FRAME}-byte frame limit; pass large data as tensors or files instead.`);
  }
  const out = new Uint8Array(FRAME_HEADER_BYTES + n);
  out[0] = n >>> 24;
  out[1] = (n >>> 16) & 0xff;
  out[2] = (n >>> 8) & 0xff;
  out[3] = n & 0xff;
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** A copy of `buf[start:end]` in a new `Uint8Array` of its own (a Node `Buffer`'s `slice` would be a view). */
function copyOf(buf: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(buf.subarray(start, end));
  return out;
}

/**
 * Splits a byte stream into frame payloads. Chunks may hold part of a frame, several frames,
 * or both; each payload comes out as its own buffer (never a view into a chunk).
 *
 * @example
 * ```ts
 * const dec = new FrameDecoder();
 * for (const payload of dec.push(chunk)) handle(payload);
 * ```
 */
export class FrameDecoder {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** Length of the frame being assembled, or -1 while its header is incomplete. */
  #need = -1;
  #failed = false;

  /** Bytes received but not yet returned as a frame. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Adds bytes and returns every frame payload they complete.
   * @throws {PyisolateError} `PROTOCOL` when a frame announces more than {@link MAX_FRAME} bytes;
   * the stream cannot be resynchronised afterwards and every later push throws too.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed) throw new PyisolateError("PROTOCOL", "The frame stream is broken by an earlier protocol error; close the connection.");
    const out: Uint8Array[] = [];
    // Fast path: nothing buffered and no header pending, the chunk starts with a frame.
    if (this.#buffered === 0 && this.#need < 0) {
      let off = 0;
      while (chunk.byteLength - off >= FRAME_HEADER_BYTES) {
        const n = this.#readLength(chunk, off);
        if (chunk.byteLength - off - FRAME_HEADER_BYTES < n) break;
        out.push(copyOf(chunk, off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + n));
        off += FRAME_HEADER_BYTES + n;
      }
      if (off === chunk.byteLength) return out;
      chunk = chunk.subarray(off);
    }
    this.#chunks.push(copyOf(chunk, 0, chunk.byteLength));
    this.#buffered += chunk.byteLength;
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < FRAME_HEADER_BYTES) break;
        const head = this.#take(FRAME_HEADER_BYTES);
        this.#need = this.#readLength(head, 0);
      }
      if (this.#buffered < this.#need) break;
      out.push(this.#take(this.#need));
      this.#need = -1;
    }
    return out;
  }

  #readLength(buf: Uint8Array, off: number): number {
    const n = ((buf[off]! << 24) >>> 0) + (buf[off + 1]! << 16) + (buf[off + 2]! << 8) + buf[off + 3]!;
    if (n > MAX_FRAME) {
      this.#failed = true;
      throw new PyisolateError("PROTOCOL", `A frame announces ${n} bytes, more than the ${MAX_FRAME}-byte limit; the peer does not speak this protocol or its stream is corrupt.`);
    }
    return n;
  }

  /** Removes and returns the first `n` buffered bytes as one new buffer. */
  #take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const first = this.#chunks[0]!;
    if (first.byteLength === n) {
      this.#chunks.shift();
      this.#buffered -= n;
      // A view into a larger buffer is copied so that every payload owns its buffer.
      return first.byteOffset === 0 && first.buffer.byteLength === n ? first : copyOf(first, 0, n);
    }
    if (first.byteLength > n) {
      this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return copyOf(first, 0, n);
    }
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.byteLength, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.byteLength) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#buffered -= n;
    return out;
  }
}
