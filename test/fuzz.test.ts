// Protocol fuzzing of the host's decoders: random bytes, mutated real messages and random CBOR
// values through the frame decoder, the CBOR decoder, the message check and a whole
// RpcEndpoint. Nothing may throw anything but a PyisolateError, and an endpoint reports a
// broken frame as a protocol error of its connection, never by throwing.
//
// Bounded in CI; run longer with PYISOLATE_FUZZ_ITERATIONS=200000 npx vitest run test/fuzz.test.ts
// (PYISOLATE_FUZZ_SEED picks the seed; a failure prints the seed and the input).
import { describe, expect, it } from "vitest";
import { PyisolateError } from "../src/errors.ts";
import { decode, decodeMessage, encode, encodeMessage } from "../src/protocol/codec.ts";
import { FrameDecoder } from "../src/protocol/frames.ts";
import { tuple } from "../src/protocol/py_types.ts";
import { RpcEndpoint } from "../src/rpc/endpoint.ts";
import "../src/values/tensors.ts"; // tensor tags registered, as in a host

const ITERATIONS = Number(process.env.PYISOLATE_FUZZ_ITERATIONS ?? 3000);
const SEED = Number(process.env.PYISOLATE_FUZZ_SEED ?? 20240601);

/** A small seeded PRNG (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = rng(SEED);
const int = (n: number) => Math.floor(rand() * n);

function randomValue(depth = 0): unknown {
  switch (int(depth > 4 ? 6 : 10)) {
    case 0:
      return int(2) ? int(1 << 30) : -int(1 << 30);
    case 1:
      return rand() * 1e6;
    case 2:
      return "s".repeat(int(40)) + String.fromCharCode(int(0xd7ff));
    case 3:
      return null;
    case 4:
      return 2n ** BigInt(int(80));
    case 5:
      return new Uint8Array(int(20)).map(() => int(256));
    case 6:
      return Array.from({ length: int(5) }, () => randomValue(depth + 1));
    case 7:
      return tuple(...Array.from({ length: int(4) }, () => randomValue(depth + 1)));
    case 8:
      return Object.fromEntries(Array.from({ length: int(5) }, (_v, i) => [`k${i}`, randomValue(depth + 1)]));
    default:
      return new Map([[tuple(1, 2), randomValue(depth + 1)]]);
  }
}

const seeds: Uint8Array[] = [
  encode({ t: "call", id: 1, s: "$nodes", m: "execute", a: ["Node", { x: [1] }, {}, "1"] }),
  encode({ t: "ok", id: 7, v: { result: [[1, 2.5, "x"]], ui: null } }),
  encode({ t: "err", id: 3, e: { type: "ValueError", message: "boom", traceback: "" } }),
  encode({ t: "event", s: "Progress", m: "update", a: [{ value: 1, max: 3 }] }),
  encode({ t: "ok", id: 2, v: { segment: "pyisolate-abc-00ff", offset: 0, nbytes: 4, dtype: "float32", shape: [1], strides: [1], device: "cpu" } }),
].map((b) => b.slice());

function mutate(src: Uint8Array): Uint8Array {
  const b = Array.from(src);
  for (let k = 1 + int(4); k > 0; k--) {
    const at = int(b.length + 1);
    switch (int(4)) {
      case 0:
        if (b.length) b[at % b.length] = int(256);
        break;
      case 1:
        b.splice(at, 0, int(256));
        break;
      case 2:
        b.splice(at, 1 + int(4));
        break;
      default:
        b.length = Math.min(b.length, at);
    }
  }
  return Uint8Array.from(b);
}

function input(i: number): Uint8Array {
  switch (i % 3) {
    case 0:
      return Uint8Array.from({ length: int(64) }, () => int(256));
    case 1:
      return mutate(seeds[int(seeds.length)]!);
    default:
      return mutate(encode(randomValue()).slice());
  }
}

function onlyPyisolateErrors(what: string, data: Uint8Array, fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof PyisolateError)) {
      throw new Error(`${what} threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message} for input ${Buffer.from(data).toString("hex")} (seed ${SEED})`);
    }
  }
}

describe(`protocol fuzzing (${ITERATIONS} inputs, seed ${SEED})`, () => {
  it("the CBOR decoder and the message check throw only PyisolateError (PROTOCOL)", () => {
    for (let i = 0; i < ITERATIONS; i++) {
      const data = input(i);
      onlyPyisolateErrors("decode", data, () => decode(data));
      onlyPyisolateErrors("decodeMessage", data, () => decodeMessage(data));
    }
  });

  it("the frame decoder takes any stream in any chunks, and fails only with PROTOCOL", () => {
    for (let i = 0; i < ITERATIONS / 10; i++) {
      const dec = new FrameDecoder();
      const stream = new Uint8Array(int(4096)).map(() => (int(3) === 0 ? 0 : int(256)));
      let off = 0;
      try {
        while (off < stream.length) {
          const n = 1 + int(300);
          dec.push(stream.subarray(off, off + n));
          off += n;
        }
      } catch (e) {
        expect(e).toBeInstanceOf(PyisolateError);
        expect((e as PyisolateError).code).toBe("PROTOCOL");
      }
    }
  });

  it("an endpoint never throws on a frame: a broken one is its connection's protocol error", () => {
    let protocolErrors = 0;
    const sent: Uint8Array[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      const errors: PyisolateError[] = [];
      const ep = new RpcEndpoint({ name: "FuzzPack", send: (f) => sent.push(f), onProtocolError: (e) => errors.push(e), handler: () => null });
      const pending = ep.call("S", "m", [], { timeoutMs: 0 }).catch(() => {});
      const data = input(i);
      try {
        ep.receive(data);
      } catch (e) {
        throw new Error(`receive threw ${(e as Error).message} for input ${Buffer.from(data).toString("hex")} (seed ${SEED})`);
      }
      for (const e of errors) {
        expect(e.code).toBe("PROTOCOL");
        expect(e.message).toContain('Pack "FuzzPack"');
      }
      protocolErrors += errors.length;
      ep.close("PROCESS_EXITED", "the fuzz case ended");
      void pending;
    }
    expect(protocolErrors).toBeGreaterThan(ITERATIONS / 10); // the inputs did exercise the error path
    // Every answer it sent is a well-formed frame of the protocol.
    for (const f of sent) expect(() => decodeMessage(f.subarray(4))).not.toThrow();
  });

  it("what the host encodes always decodes back (random values)", () => {
    for (let i = 0; i < ITERATIONS / 3; i++) {
      const v = randomValue();
      const frame = encodeMessage({ t: "ok", id: i + 1, v });
      expect(() => decodeMessage(frame.subarray(4))).not.toThrow();
    }
  });
});
