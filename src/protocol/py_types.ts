/**
 * Python values JavaScript has no type of its own for: a tuple (ComfyUI tells tuples from
 * lists) and a whole-number float (`1.0`, which a JavaScript number cannot tell from `1`).
 * The codec writes them with their own tags (41500, 41506).
 * @module
 */

const TUPLE_BRAND: unique symbol = Symbol.for("pyisolate.tuple") as never;

/**
 * A Python tuple on the TypeScript side: an `Array` that is marked as a tuple so that it goes
 * back to Python as a tuple (ComfyUI tells tuples from lists). `map`/`filter`/… return plain
 * arrays; use {@link tuple} to make one.
 */
export class Tuple<T = unknown> extends Array<T> {
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }
}
Object.defineProperty(Tuple.prototype, TUPLE_BRAND, { value: true });

/**
 * Makes a {@link Tuple} of the given items.
 * @example
 * ```ts
 * const out = tuple(image, mask); // Python sees (image, mask)
 * ```
 */
export function tuple<T>(...items: T[]): Tuple<T> {
  const t = new Tuple<T>();
  for (let i = 0; i < items.length; i++) t.push(items[i]!);
  return t;
}

/** Whether `x` is a {@link Tuple} (a Python tuple). */
export function isTuple(x: unknown): x is Tuple {
  return Array.isArray(x) && (x as { [TUPLE_BRAND]?: boolean })[TUPLE_BRAND] === true;
}

/**
 * A Python float whose value is a whole number (`1.0`). JavaScript has one number type, so
 * without the mark `1.0` would come back to Python as the int `1`. It behaves as a number
 * (`+x`, arithmetic, comparisons, JSON).
 */
export class PyFloat {
  readonly value: number;

  constructor(value: number) {
    this.value = value;
  }
  valueOf(): number {
    return this.value;
  }
  toJSON(): number {
    return this.value;
  }
  toString(): string {
    return Number.isInteger(this.value) ? this.value.toFixed(1) : String(this.value);
  }
}

/** A number as Python should see it: whole numbers become floats. */
export function pyFloat(n: number): number | PyFloat {
  return Number.isInteger(n) ? new PyFloat(n) : n;
}

/**
 * The same value with every {@link PyFloat} turned into a plain number: for data that is JSON
 * anyway (node schemas, the metadata cache), where the float mark means nothing. Copies only
 * what changes.
 */
export function plainNumbers<T>(value: T): T {
  if (value instanceof PyFloat) return value.value as T;
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    value.forEach((x, i) => {
      const y = plainNumbers(x);
      if (y !== x) (out ??= value.slice())[i] = y;
    });
    return (out ?? value) as T;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  let out: Record<string, unknown> | undefined;
  for (const [k, x] of Object.entries(value)) {
    const y = plainNumbers(x);
    if (y !== x) (out ??= { ...(value as Record<string, unknown>) })[k] = y;
  }
  return (out ?? value) as T;
}
