/**
 * What the generated io-type tables (`io_types.gen.ts`, from `codegen/io_types.ts`) are
 * built with: the types of a table row, the zod builders the value schemas use, and the
 * checks bound to the tables ({@link ioChecks}). `io_types.gen.ts` re-exports what users
 * need of it; import from there.
 * @module
 */
import { z } from "zod";
import { PyisolateError } from "../errors.ts";
import { TensorRef } from "./tensors.ts";

/** How values of an io type are built. */
export type IoKind = "primitive" | "tensor" | "dict" | "list" | "tuple" | "opaque" | "any" | "dynamic";

/**
 * How values of an io type cross a process boundary: `zero-copy` (holds tensors, which cross
 * as shared-memory segments), `value` (plain data, copied), `checked` (no fixed shape: crosses
 * when the value is made of serializable parts), `opaque` (a Python object that stays in the
 * process that made it; crossing is an error naming the type).
 */
export type IoCrossing = "zero-copy" | "value" | "checked" | "opaque";

/** One io type, as the spec describes it. */
export interface IoTypeInfo {
  /** The class under `comfy_api.latest.io`. */
  readonly cls: string;
  /** The io_type string nodes declare. */
  readonly ioType: string;
  readonly kind: IoKind;
  /** Whether the type has a widget. */
  readonly widget: boolean;
  /** Whether the type exists only as an input. */
  readonly inputOnly: boolean;
  /** Whether its values cross a process boundary. */
  readonly serializable: boolean;
  readonly crossing: IoCrossing;
  /** Widget options beyond the common ones. */
  readonly options: readonly string[];
  readonly note: string;
}

/** An INT value: a number, or a bigint beyond 2^53. */
export type IoInt = number | bigint;

/** Where a value is, for error messages. */
export interface IoWhere {
  pack?: string;
  node?: string;
  /** The input or output name. */
  slot?: string;
}

/** io_type string → its first definition (COMBO: `Combo`, not `MultiCombo`). */
export function indexIoTypes(types: readonly IoTypeInfo[]): ReadonlyMap<string, IoTypeInfo> {
  return new Map([...types].reverse().map((t) => [t.ioType, t] as const));
}

// ---------------------------------------------------------------------------------------------
// zod builders of the generated schemas

const FLOATING = new Set(["float16", "bfloat16", "float32", "float64", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"]);
const INTEGRAL = new Set(["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]);

/** An INT value: an integral number, or a bigint. */
export const zInt: z.ZodType<IoInt> = z.union([z.number().int(), z.bigint()]);

/** A {@link TensorRef} of one of the ranks (any when `null`) with a dtype of the family (any when `null`). */
export function zTensor(rank: number[] | null, dtype: "floating" | "integral" | "bool" | null): z.ZodType<TensorRef> {
  return z.custom<TensorRef>(
    (v) =>
      v instanceof TensorRef &&
      (rank === null || rank.includes(v.shape.length)) &&
      (dtype === null ||
        (dtype === "floating" ? FLOATING.has(v.dtype) : dtype === "integral" ? INTEGRAL.has(v.dtype) : v.dtype === "bool")),
    { message: `expected a tensor${rank ? ` of rank ${rank.join(" or ")}` : ""}${dtype ? ` with a ${dtype} dtype` : ""}` },
  );
}

/** A fixed-length sequence (a Python tuple), item `i` checked by `items[i]`. */
export function zSeq(items: z.ZodType[]): z.ZodType<unknown[]> {
  return z.array(z.unknown()).superRefine((v, ctx) => {
    if (v.length !== items.length) {
      ctx.addIssue({ code: "custom", message: `expected ${items.length} items, got ${v.length}` });
      return;
    }
    items.forEach((schema, i) => {
      const r = schema.safeParse(v[i]);
      if (!r.success) for (const issue of r.error.issues) ctx.addIssue({ ...issue, path: [i, ...issue.path] } as never);
    });
  });
}

/** Refuses every value: values of an opaque type never reach the TS side. */
export function zOpaque(ioType: string): z.ZodType<never> {
  return z.custom<never>(() => false, { message: `${ioType} values are Python objects that stay in the process that made them` });
}

// ---------------------------------------------------------------------------------------------
// the checks

/** The checks over one set of io-type tables (see {@link ioChecks}). */
export interface IoChecks {
  /** Whether an io type is opaque (its values cannot cross a process boundary). Unknown (custom) types are not. */
  isOpaqueIoType(ioType: string): boolean;
  /**
   * The error for a value of an opaque io type (MODEL, CLIP, VAE, …) that would cross a process
   * boundary: it names the type and says what to do.
   */
  opaqueCrossingError(ioType: string, where?: IoWhere): PyisolateError;
  /**
   * Checks a decoded value against its io type's validator. Unknown (custom) io types accept
   * anything; an opaque type always fails with `opaqueCrossingError`.
   * @throws {PyisolateError} code `VALIDATION` naming the type, the path and the problem.
   */
  validateIoValue(ioType: string, value: unknown, where?: IoWhere): void;
}

function whereText(w: IoWhere): string {
  const parts: string[] = [];
  if (w.node) parts.push(`node ${JSON.stringify(w.node)}`);
  if (w.pack) parts.push(`pack ${JSON.stringify(w.pack)}`);
  if (w.slot) parts.push(`slot ${JSON.stringify(w.slot)}`);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

function whereDetails(w: IoWhere): { pack?: string; node?: string } {
  return { ...(w.pack !== undefined ? { pack: w.pack } : {}), ...(w.node !== undefined ? { node: w.node } : {}) };
}

/** The checks over the tables `byName` (io_type → definition) and `schemas` (io_type → validator). */
export function ioChecks(byName: ReadonlyMap<string, IoTypeInfo>, schemas: Readonly<Record<string, z.ZodType>>): IoChecks {
  const isOpaqueIoType = (ioType: string): boolean => byName.get(ioType)?.kind === "opaque";

  const opaqueCrossingError = (ioType: string, where: IoWhere = {}): PyisolateError => {
    const info = byName.get(ioType);
    return new PyisolateError(
      "TYPE",
      `${ioType} value cannot cross a process boundary${whereText(where)}: ${info ? info.note : "it is a Python object"}. ` +
        "Run the nodes that produce and use it in the same process (one pack, or both not isolated), or pass tensors and plain values instead.",
      whereDetails(where),
    );
  };

  const validateIoValue = (ioType: string, value: unknown, where: IoWhere = {}): void => {
    if (isOpaqueIoType(ioType)) throw opaqueCrossingError(ioType, where);
    const schema = (schemas as Record<string, z.ZodType | undefined>)[ioType];
    if (!schema) return;
    const r = schema.safeParse(value);
    if (r.success) return;
    const issue = r.error.issues[0]!;
    const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `[${JSON.stringify(String(p))}]`)).join("");
    throw new PyisolateError(
      "VALIDATION",
      `${ioType} value${whereText(where)} is not valid: ${issue.message}${path ? ` (at value${path})` : ""}.`,
      whereDetails(where),
    );
  };

  return { isOpaqueIoType, opaqueCrossingError, validateIoValue };
}
