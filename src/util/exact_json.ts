/**
 * JSON that keeps every integer exact. `JSON.parse` rounds integers beyond 2^53 (ComfyUI
 * seeds reach 2^64 − 1), so workflow files, HTTP bodies and what the server sends go through
 * `lossless-json` instead: integers a double holds exactly are numbers, larger ones are
 * `bigint`s (which the codec carries to Python as exact ints), and both are written back
 * digit for digit. A whole-number Python float ({@link PyFloat}) is written as `1.0`, as
 * Python's `json.dumps` writes it.
 * @module
 */
import { isInteger, LosslessNumber, parse, stringify } from "lossless-json";
import { PyFloat } from "../protocol/py_types.ts";

/** A JSON number's text as a number, or a `bigint` when it is an integer a double cannot hold. */
function exactNumber(text: string): number | bigint {
  if (isInteger(text)) {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : BigInt(text);
  }
  return Number.parseFloat(text);
}

/**
 * Parses JSON text, keeping integers beyond 2^53 exact as `bigint`s.
 * @throws {SyntaxError} for text that is not JSON (the message says where).
 * @example
 * ```ts
 * parseExactJson('{"seed": 18446744073709551615}'); // { seed: 18446744073709551615n }
 * ```
 */
export function parseExactJson(text: string): unknown {
  return parse(text, null, exactNumber);
}

const pyFloats = {
  test: (v: unknown): boolean => v instanceof PyFloat,
  stringify: (v: unknown): string => {
    const n = (v as PyFloat).value;
    if (!Number.isFinite(n)) return "null";
    return Number.isInteger(n) && Math.abs(n) < 1e16 ? n.toFixed(1) : String(n);
  },
};

/**
 * Writes a value as JSON, `bigint`s as their digits and whole-number Python floats as `1.0`.
 * @example
 * ```ts
 * stringifyExactJson({ seed: 2n ** 64n - 1n }); // '{"seed":18446744073709551615}'
 * ```
 */
export function stringifyExactJson(value: unknown, space?: number): string {
  // The runtime's own JSON.stringify is many times faster: use it unless the value holds a
  // bigint or a whole-number float, which only lossless-json writes exactly.
  let exact = false;
  const fast = JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
    if (typeof v === "bigint" || this[key] instanceof PyFloat) {
      exact = true;
      return null;
    }
    return v;
  }, space);
  if (!exact) return fast ?? "null";
  // `null` stands for a non-finite number, as JSON.stringify writes it.
  const out = stringify(value, (_key, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v), space, [pyFloats]);
  return out ?? "null";
}

export { LosslessNumber };
