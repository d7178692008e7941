import { describe, expect, it } from "vitest";
import { Tag } from "cbor-x";
import { CallableRef, TAG_TUPLE, decode, decodeMessage, encode, encodeMessage, registerTag, type CodecContext } from "../src/protocol/codec.ts";
import { RemoteError, exceptionMapOf } from "../src/protocol/remote_error.ts";
import { Tuple, isTuple, tuple } from "../src/protocol/py_types.ts";
import { FrameDecoder, MAX_FRAME, encodeFrame } from "../src/protocol/frames.ts";
import { PyisolateError } from "../src/errors.ts";

const rt = (v: unknown, ctx?: CodecContext) => decode(encode(v, ctx).slice(), ctx);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("codec", () => {
  it("round-trips plain values", () => {
    const v = { s: "héllo", n: 42, neg: -7, f: 1.5, t: true, f2: false, nil: null, list: [1, [2, [3]]], bytes: new Uint8Array([0, 1, 255]) };
    const back = rt(v) as typeof v;
    expect(back.s).toBe("héllo");
    expect(back.list).toEqual([1, [2, [3]]]);
    expect(Array.from(back.bytes)).toEqual([0, 1, 255]);
    expect(back).toMatchObject({ n: 42, neg: -7, f: 1.5, t: true, f2: false, nil: null });
  });

  it("keeps 2^64-1 and bignums exact as BigInt, and safe 64-bit integers as numbers", () => {
    const max = 2n ** 64n - 1n;
    expect(rt(max)).toBe(max);
    expect(hex(encode(max))).toBe("1bffffffffffffffff");
    expect(rt(-(2n ** 64n))).toBe(-(2n ** 64n));
    expect(rt(2n ** 100n)).toBe(2n ** 100n);
    expect(hex(encode(2n ** 64n))).toBe("c249010000000000000000"); // tag 2 bignum
    expect(rt(-(2n ** 70n))).toBe(-(2n ** 70n));
    expect(rt(2n ** 53n + 1n)).toBe(2n ** 53n + 1n);
    // 64-bit encodings of values a double holds exactly come back as numbers
    expect(rt(2n ** 40n)).toBe(2 ** 40);
    expect(rt(-(2n ** 40n))).toBe(-(2 ** 40));
    expect(rt(BigInt(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("sends integral numbers above 32 bits as CBOR integers, not floats", () => {
    expect(hex(encode(2 ** 40))).toBe("1b0000010000000000");
    expect(hex(encode(-(2 ** 40)))).toBe("3b000000ffffffffff");
    expect(hex(encode(1.5))).toBe("fb3ff8000000000000"); // float64 out
    expect(hex(encode(0.1))).toBe("fb3fb999999999999a");
    expect(rt({ seed: 5_000_000_000 })).toEqual({ seed: 5_000_000_000 });
  });

  it("keeps tuples apart from lists, nested", () => {
    const v = { pair: tuple<unknown>(1, "a"), list: [1, "a"], nested: tuple(tuple(1, 2), [3, tuple()]) };
    const enc = encode(v);
    expect(hex(enc)).toContain("d9a21c82"); // tag 41500 + array(2)
    const back = decode(enc.slice()) as typeof v;
    expect(isTuple(back.pair)).toBe(true);
    expect(Array.from(back.pair)).toEqual([1, "a"]);
    expect(isTuple(back.list)).toBe(false);
    expect(isTuple(back.nested)).toBe(true);
    expect(isTuple(back.nested[0])).toBe(true);
    expect(isTuple(back.nested[1])).toBe(false);
    expect(isTuple((back.nested[1] as unknown[])[1])).toBe(true);
    expect(back.pair).toBeInstanceOf(Tuple);
    expect(isTuple(back.pair.map((x) => x))).toBe(false);
    expect(TAG_TUPLE).toBe(41500);
  });

  it("decodes maps to plain objects and encodes Map with non-text keys as a CBOR map", () => {
    const enc = encode(new Map<unknown, unknown>([[1, "one"], ["k", 2n ** 60n]]));
    expect(hex(enc).startsWith("a2")).toBe(true); // a plain map, no tag 259
    expect(decode(enc.slice())).toEqual({ 1: "one", k: 2n ** 60n });
    expect(Object.getPrototypeOf(decode(encode({ a: 1 }).slice()))).toBe(Object.prototype);
  });

  it("encodes a Uint8Array as a plain byte string (no typed-array tag)", () => {
    expect(hex(encode(new Uint8Array([1, 2])))).toBe("420102");
  });

  it("carries exceptions as tag 41504 and decodes them as RemoteError", () => {
    const back = rt({ e: new TypeError("nope") }) as { e: RemoteError };
    expect(back.e).toBeInstanceOf(RemoteError);
    expect(back.e.pythonType).toBe("TypeError");
    expect(back.e.pythonMessage).toBe("nope");
    expect(back.e.code).toBe("REMOTE");
    const remote = new RemoteError({ type: "ValueError", message: "bad", traceback: "Traceback...\nValueError: bad\n" }, { pack: "P", method: "S.m" });
    expect(remote.message).toContain('S.m in pack "P" raised ValueError: bad');
    expect(remote.message).toContain("Traceback...");
    expect(exceptionMapOf(remote)).toEqual({ type: "ValueError", message: "bad", traceback: "Traceback...\nValueError: bad\n" });
    expect(exceptionMapOf(new PyisolateError("NOT_CALLABLE", "no")).type).toBe("pyisolate.NotCallable");
  });

  it("turns functions into callables through the context, and back", () => {
    const exported: unknown[] = [];
    const ctx: CodecContext = {
      exportCallback(fn) {
        exported.push(fn);
        return String(exported.length);
      },
      importCallback: (id) => async (...args: unknown[]) => ["called", id, ...args],
    };
    const f = (x: number) => x + 1;
    const enc = encode({ cb: f }, ctx);
    expect(exported).toEqual([f]);
    expect(hex(enc)).toContain("d9a21fa1626964"); // tag 41503 {id: …}
    const back = decode(enc.slice(), ctx) as { cb: (...a: unknown[]) => Promise<unknown> };
    expect(typeof back.cb).toBe("function");
    return back.cb(5).then((r) => expect(r).toEqual(["called", "1", 5]));
  });

  it("refuses functions outside a call, and decodes callables without a context as CallableRef", () => {
    expect(() => encode({ f: () => 1 })).toThrow(/can only be sent as an argument or result/);
    const ctx: CodecContext = { exportCallback: () => "7", importCallback: () => async () => 0 };
    const back = decode(encode(() => 1, ctx).slice()) as CallableRef;
    expect(back).toBeInstanceOf(CallableRef);
    expect(back.id).toBe("7");
  });

  it("lets other modules register tags, with a subclass taking precedence", () => {
    class Point {
      readonly x: number;
      readonly y: number;
      constructor(x: number, y: number) {
        this.x = x;
        this.y = y;
      }
    }
    class Point3 extends Point {
      readonly z: number;
      constructor(x: number, y: number, z: number) {
        super(x, y);
        this.z = z;
      }
    }
    registerTag<Point>(41508, { cls: Point, encode: (p) => [p.x, p.y], decode: (a: number[]) => new Point(a[0]!, a[1]!) });
    registerTag<Point3>(41509, { cls: Point3, encode: (p) => [p.x, p.y, p.z], decode: (a: number[]) => new Point3(a[0]!, a[1]!, a[2]!) });
    const back = rt([new Point(1, 2), new Point3(1, 2, 3)]) as Point[];
    expect(back[0]).toBeInstanceOf(Point);
    expect(back[0]).not.toBeInstanceOf(Point3);
    expect(back[1]).toBeInstanceOf(Point3);
    expect((back[1] as Point3).z).toBe(3);
    // unknown tags survive as cbor-x Tags and re-encode unchanged
    const unknown = decode(new Uint8Array([0xd9, 0xa2, 0x06, 0x01])) as Tag; // tag 41478(1)
    expect(unknown).toBeInstanceOf(Tag);
    expect(hex(encode(unknown))).toBe("d9a20601");
  });

  it("encodes class instances by their fields and Sets as arrays", () => {
    class Box {
      big = 2 ** 33;
      label = "b";
    }
    expect(rt(new Box())).toEqual({ big: 2 ** 33, label: "b" });
    expect(hex(encode(new Box()))).toContain("1b0000000200000000");
    expect(rt(new Set([1, 2]))).toEqual([1, 2]);
  });

  it("checks message shapes", () => {
    const frame = encodeMessage({ t: "call", id: 3, s: "S", m: "m", a: [tuple(1)] });
    expect(frame.byteLength).toBe(frame.buffer.byteLength);
    const payload = frame.subarray(4);
    const msg = decodeMessage(payload.slice());
    expect(msg.t).toBe("call");
    expect(() => decodeMessage(encode({ t: "nope" }).slice())).toThrow(/unknown message type "nope"/);
    expect(() => decodeMessage(encode([1, 2]).slice())).toThrow(/not a CBOR map/);
    expect(() => decodeMessage(encode({ t: "call", id: 1, s: "S" }).slice())).toThrow(/no service or method/);
    expect(() => decodeMessage(encode({ t: "ok" }).slice())).toThrow(/no valid id/);
  });

  it("rejects malformed CBOR with a PROTOCOL error", () => {
    for (const bad of [new Uint8Array([0x82, 0x01]), new Uint8Array([0x7a, 0xff, 0xff, 0xff, 0xff]), new Uint8Array([0xff]), new Uint8Array([])]) {
      try {
        decode(bad);
        expect.unreachable(`decoded ${hex(bad)}`);
      } catch (e) {
        expect(e).toBeInstanceOf(PyisolateError);
        expect((e as PyisolateError).code).toBe("PROTOCOL");
      }
    }
  });
});

describe("frames", () => {
  const frames = (...payloads: number[][]) => {
    const parts = payloads.map((p) => encodeFrame(new Uint8Array(p)));
    const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.byteLength;
    }
    return all;
  };

  it("prefixes a big-endian length", () => {
    expect(Array.from(encodeFrame(new Uint8Array([9, 8])))).toEqual([0, 0, 0, 2, 9, 8]);
  });

  it("decodes several frames in one chunk", () => {
    const dec = new FrameDecoder();
    const out = dec.push(frames([1], [2, 3], []));
    expect(out.map((p) => Array.from(p))).toEqual([[1], [2, 3], []]);
    expect(dec.buffered).toBe(0);
  });

  it("decodes frames split across chunks, byte by byte", () => {
    const all = frames([1, 2, 3], [4], Array.from({ length: 300 }, (_, i) => i & 0xff));
    const dec = new FrameDecoder();
    const out: Uint8Array[] = [];
    for (let i = 0; i < all.byteLength; i++) out.push(...dec.push(all.subarray(i, i + 1)));
    expect(out.length).toBe(3);
    expect(Array.from(out[0]!)).toEqual([1, 2, 3]);
    expect(out[2]!.byteLength).toBe(300);
    expect(out[2]![299]).toBe(299 & 0xff);
  });

  it("decodes a chunk that ends one frame and starts the next", () => {
    const all = frames([1, 2, 3], [4, 5]);
    const dec = new FrameDecoder();
    expect(dec.push(all.subarray(0, 5)).length).toBe(0);
    const a = dec.push(all.subarray(5, 10));
    expect(a.map((p) => Array.from(p))).toEqual([[1, 2, 3]]);
    const b = dec.push(all.subarray(10));
    expect(b.map((p) => Array.from(p))).toEqual([[4, 5]]);
  });

  it("gives each payload a buffer of its own, also from a Node Buffer (whose slice is a view)", () => {
    const dec = new FrameDecoder();
    const [p] = dec.push(frames([7, 7]));
    expect(p!.byteOffset).toBe(0);
    expect(p!.buffer.byteLength).toBe(2);
    const pooled = Buffer.concat([Buffer.from([1, 2, 3]), Buffer.from(frames([9], [8, 8]))]).subarray(3);
    const out = new FrameDecoder().push(pooled);
    expect(out.map((x) => [x.byteOffset, x.buffer.byteLength, ...x])).toEqual([
      [0, 1, 9],
      [0, 2, 8, 8],
    ]);
  });

  it("rejects a frame longer than MAX_FRAME, and stays broken", () => {
    const dec = new FrameDecoder();
    const n = MAX_FRAME + 1;
    expect(() => dec.push(new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]))).toThrow(/more than the 1073741824-byte limit/);
    expect(() => dec.push(new Uint8Array([0, 0, 0, 0]))).toThrow(/broken/);
  });
});

describe("whole-number floats", () => {
  it("decode as PyFloat, behave as numbers, and go back out marked", async () => {
    const { TAG_FLOAT, encode, decode } = await import("../src/protocol/codec.ts");
    const { PyFloat } = await import("../src/protocol/py_types.ts");
    // What Python writes for 1.0: tag 41506 around a float64.
    const fromPython = new Uint8Array([0xd9, 0xa2, 0x22, 0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    const v = decode(fromPython) as InstanceType<typeof PyFloat>;
    expect(v).toBeInstanceOf(PyFloat);
    expect(+v).toBe(1);
    expect(JSON.stringify({ v })).toBe('{"v":1}');
    const out = encode(v);
    expect([out[0], out[1], out[2]]).toEqual([0xd9, (TAG_FLOAT >> 8) & 0xff, TAG_FLOAT & 0xff]);
    expect(decode(out)).toBeInstanceOf(PyFloat);
    // Non-integral floats need no mark.
    expect(decode(encode(2.5))).toBe(2.5);
  });
});

describe("FrameDecoder", () => {
  it("reassembles frames whatever the chunk boundaries, including a chunk that ends right after a header", async () => {
    const { FrameDecoder, encodeFrame } = await import("../src/protocol/frames.ts");
    const frames = [7, 70_000, 0, 4, 131_072, 3].map((n, k) => new Uint8Array(n).fill(k + 1));
    const stream = new Uint8Array(frames.reduce((a, f) => a + f.byteLength + 4, 0));
    let o = 0;
    const headerEnds: number[] = [];
    for (const f of frames) {
      stream.set(encodeFrame(f), o);
      headerEnds.push(o + 4);
      o += f.byteLength + 4;
    }
    // Cut at every header end (the case a fast path can get wrong), then in fixed steps.
    for (const cuts of [headerEnds, Array.from({ length: Math.ceil(stream.length / 4093) }, (_, i) => (i + 1) * 4093)]) {
      const dec = new FrameDecoder();
      const got: Uint8Array[] = [];
      let p = 0;
      for (const c of [...cuts.filter((c) => c < stream.length), stream.length]) {
        got.push(...dec.push(stream.slice(p, c)));
        p = c;
      }
      expect(got.map((g) => [g.byteLength, g[0]])).toEqual(frames.map((f, k) => [f.byteLength, f.byteLength ? k + 1 : undefined]));
    }
  });
});
