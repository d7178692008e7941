// The child-output line splitter: line ends of every kind, split anywhere, in bounded memory.
import { describe, expect, it } from "vitest";
import { LineSplitter, MAX_LINE_CHARS } from "../workers/line_splitter.ts";

const enc = (s: string) => new TextEncoder().encode(s);

describe("LineSplitter", () => {
  it("ends lines at \\n, \\r\\n and a lone \\r, whichever chunk the ends fall in", () => {
    const s = new LineSplitter();
    const out = [...s.push(enc("a\r")), ...s.push(enc("\nb\n\rprogress 1%\rprogress 2%")), ...s.push(enc("\r\ndone")), ...s.flush()];
    expect(out).toEqual(["a", "b", "progress 1%", "progress 2%", "done"]);
  });

  it("keeps blank lines, drops the empty redraws a bare \\r makes", () => {
    const s = new LineSplitter();
    expect([...s.push(enc("x\n\n\r\ry\n"))]).toEqual(["x", "", "y"]);
  });

  it("decodes a UTF-8 character split across chunks", () => {
    const s = new LineSplitter();
    const bytes = enc("é\n");
    expect([...s.push(bytes.subarray(0, 1)), ...s.push(bytes.subarray(1))]).toEqual(["é"]);
  });

  it("cuts a line that never ends into pieces, holding no more than one piece", () => {
    const s = new LineSplitter();
    const pieces: string[] = [];
    for (let i = 0; i < 100; i++) {
      pieces.push(...s.push(enc("x".repeat(10_000))));
      expect(s.pending).toBeLessThan(MAX_LINE_CHARS);
    }
    pieces.push(...s.flushPartial());
    expect(pieces.every((p) => p.length <= MAX_LINE_CHARS)).toBe(true);
    expect(pieces.join("").length).toBe(1_000_000);
  });
});
