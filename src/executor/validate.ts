/**
 * Prompt validation before anything runs, with ComfyUI's error types and `node_errors`
 * shape: unknown classes, missing inputs, bad links, type mismatches, values out of range,
 * combo values not in the list, custom `VALIDATE_INPUTS`, and dependency cycles — every
 * problem of every node reported together.
 * @module
 */
import { PyFloat, pyFloat } from "../protocol/py_types.ts";
import type { InputSpec, Link, NodeBackend, NodeErrors, NodeInfo, Prompt, ValidationError, ValidationResult } from "./types.ts";

/** Whether an input value is a link `[node_id, output_index]`. */
export function isLink(v: unknown): v is Link {
  return Array.isArray(v) && v.length === 2 && (typeof v[0] === "string" || typeof v[0] === "number") && typeof v[1] === "number";
}

function err(type: string, message: string, details: string, extra_info: Record<string, unknown> = {}): ValidationError {
  return { type, message, details, extra_info };
}

/** The declared spec of an input, required or optional. */
export function inputSpec(info: NodeInfo, name: string): { spec: InputSpec; required: boolean } | undefined {
  const r = info.input.required?.[name];
  if (r) return { spec: r, required: true };
  const o = info.input.optional?.[name];
  if (o) return { spec: o, required: false };
  return undefined;
}

/** The combo choices of a spec, when it is a combo (V1 list form or V3 `["COMBO", {options}]`). */
export function comboOptions(spec: InputSpec): unknown[] | undefined {
  const [type, opts] = spec;
  if (Array.isArray(type)) return type;
  if (type === "COMBO" && opts && Array.isArray((opts as { options?: unknown }).options)) return (opts as { options: unknown[] }).options;
  return undefined;
}

/** Whether an output of type `produced` may feed an input declared as `wanted`. */
export function typesMatch(produced: string | unknown[], wanted: string | unknown[]): boolean {
  if (Array.isArray(wanted)) return Array.isArray(produced) || produced === "COMBO" || produced === "*";
  if (Array.isArray(produced)) return wanted === "COMBO" || wanted === "*";
  if (produced === "*" || wanted === "*") return true;
  const a = new Set(produced.split(",").map((s) => s.trim()));
  return wanted.split(",").some((t) => a.has(t.trim()));
}

function formatSpec(spec: InputSpec): unknown {
  const opts = comboOptions(spec);
  return opts && opts.length > 20 ? null : spec;
}

/** Converts a widget value to the declared primitive type, ComfyUI-style, or explains why it can't. */
export function coerceWidget(type: string, value: unknown): { ok: true; value: unknown } | { ok: false; why: string } {
  switch (type) {
    case "INT": {
      if (typeof value === "bigint") return { ok: true, value };
      const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
      if (typeof n === "number" && Number.isFinite(n)) return { ok: true, value: Math.trunc(n) };
      if (typeof n === "boolean") return { ok: true, value: n ? 1 : 0 };
      // Python's own words for int(nan) and int(inf), as ComfyUI reports them.
      if (typeof n === "number" && Number.isNaN(n)) return { ok: false, why: "cannot convert float NaN to integer" };
      if (typeof n === "number") return { ok: false, why: "cannot convert float infinity to integer" };
      return { ok: false, why: `${pyStr(value)} is not an integer` };
    }
    case "FLOAT": {
      // Whole numbers are marked as floats, so that Python receives 1.0 and not 1.
      if (value instanceof PyFloat) return Number.isFinite(value.value) ? { ok: true, value } : { ok: false, why: notFinite(value.value) };
      if (typeof value === "bigint") return { ok: true, value: pyFloat(Number(value)) };
      const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
      if (typeof n === "number" && Number.isFinite(n)) return { ok: true, value: pyFloat(n) };
      if (typeof n === "number" && !(typeof value === "string" && Number.isNaN(n))) return { ok: false, why: notFinite(n) };
      return { ok: false, why: `${pyStr(value)} is not a number` };
    }
    case "STRING":
      if (value === null || value === undefined || typeof value === "object") return { ok: false, why: `${JSON.stringify(value)} is not a string` };
      return { ok: true, value: String(value) };
    case "BOOLEAN":
      if (typeof value === "boolean") return { ok: true, value };
      if (value === "true" || value === "false") return { ok: true, value: value === "true" };
      if (value === 0 || value === 1) return { ok: true, value: value === 1 };
      return { ok: false, why: `${JSON.stringify(value)} is not a boolean` };
    default:
      return { ok: true, value };
  }
}

function notFinite(n: number): string {
  return `${pyStr(n)} is not a finite number: NaN and infinity are not allowed`;
}

/** A value as Python's `str()` would print it (ComfyUI's error details use `f"{value}"`). */
export function pyStr(v: unknown): string {
  if (typeof v === "number") return Number.isNaN(v) ? "nan" : v === Infinity ? "inf" : v === -Infinity ? "-inf" : String(v);
  if (v instanceof PyFloat) return v.toString();
  if (typeof v === "string") return v;
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "bigint") return v.toString();
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

function numeric(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (v instanceof PyFloat) return v.value;
  if (typeof v === "bigint") return Number(v);
  return undefined;
}

/**
 * Validates a prompt against node schemas. Widget values are coerced in place (as ComfyUI
 * does: `"5"` for an INT becomes `5`). Never throws for a bad prompt: problems are returned.
 */
export async function validatePrompt(prompt: Prompt, backend: NodeBackend): Promise<ValidationResult> {
  const node_errors: NodeErrors = {};
  if (prompt === null || typeof prompt !== "object" || Array.isArray(prompt)) {
    return { ok: false, error: err("invalid_prompt", "Prompt is not an object of nodes", "expected {\"<id>\": {\"class_type\", \"inputs\"}}"), outputs: [], node_errors };
  }

  // Prompt-level problems: nodes without class_type or with an unknown class.
  const unknown: string[] = [];
  for (const [id, node] of Object.entries(prompt)) {
    if (!node || typeof node !== "object" || typeof node.class_type !== "string") {
      node_errors[id] = { errors: [err("invalid_prompt", "Cannot execute because a node is missing the class_type property.", `Node ID '#${id}'`)], dependent_outputs: [], class_type: "" };
      unknown.push(id);
      continue;
    }
    if (!node.inputs || typeof node.inputs !== "object") node.inputs = {};
    if (!backend.info(node.class_type)) {
      node_errors[id] = {
        errors: [err("invalid_prompt", `Cannot execute because node ${node.class_type} does not exist.`, `Node ID '#${id}'`, { class_type: node.class_type })],
        dependent_outputs: [],
        class_type: node.class_type,
      };
      unknown.push(id);
    }
  }
  if (unknown.length > 0) {
    const first = node_errors[unknown[0]!]!.errors[0]!;
    return { ok: false, error: { ...first, details: unknown.map((id) => node_errors[id]!.errors[0]!.message + ` (node ${id})`).join("\n") }, outputs: [], node_errors };
  }

  const outputs = Object.keys(prompt).filter((id) => backend.info(prompt[id]!.class_type)!.output_node === true);
  if (outputs.length === 0) {
    return { ok: false, error: err("prompt_no_outputs", "Prompt has no outputs", "", {}), outputs: [], node_errors };
  }

  // Each node's own checks (no recursion: the links it follows are returned), then the
  // nodes in dependency order — an explicit stack, so a chain of any length is fine — and
  // whether each one validated, its inputs included. Cost: O(nodes + links).
  interface Checked {
    errors: ValidationError[];
    constants: Record<string, unknown[]>;
    /** Linked nodes this node needs valid, in input order. */
    deps: string[];
    /** Every linked node to validate (deps, and the sources of mismatched links), in input order. */
    edges: string[];
  }
  const check = (id: string): Checked => {
    const node = prompt[id]!;
    const info = backend.info(node.class_type)!;
    const errors: ValidationError[] = [];
    const deps: string[] = [];
    const edges: string[] = [];

    for (const [name] of Object.entries(info.input.required ?? {})) {
      if (!(name in node.inputs)) {
        errors.push(err("required_input_missing", "Required input is missing", name, { input_name: name }));
      }
    }
    const constants: Record<string, unknown[]> = {};
    for (const [name, value] of Object.entries(node.inputs)) {
      const declared = inputSpec(info, name);
      if (!declared) continue; // extra inputs are ignored, as ComfyUI does
      const { spec } = declared;
      const [type, opts = {}] = spec;
      if (Array.isArray(value)) {
        if (!isLink(value)) {
          errors.push(err("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]", name, { input_name: name, input_config: formatSpec(spec), received_value: value }));
          continue;
        }
        const src = String(value[0]);
        const srcNode = prompt[src];
        if (!srcNode) {
          errors.push(err("bad_linked_input", "Linked node does not exist", `${name}: node ${src} is not in the prompt`, { input_name: name, linked_node: value }));
          continue;
        }
        const srcInfo = backend.info(srcNode.class_type)!;
        const produced = srcInfo.output[value[1]];
        if (produced === undefined) {
          errors.push(err("bad_linked_input", "Linked output does not exist", `${name}: node ${src} (${srcNode.class_type}) has no output ${value[1]}`, { input_name: name, linked_node: value }));
          continue;
        }
        if (!typesMatch(produced, type)) {
          const received = Array.isArray(produced) ? "COMBO" : produced;
          const wanted = Array.isArray(type) ? "COMBO" : type;
          errors.push(err("return_type_mismatch", "Return type mismatch between linked nodes", `${name}, received_type(${received}) mismatch input_type(${wanted})`, { input_name: name, input_config: formatSpec(spec), received_type: received, linked_node: value }));
          // Still validate upstream so that its own problems are reported in the same pass.
          edges.push(src);
          continue;
        }
        deps.push(src);
        edges.push(src);
        continue;
      }
      // A widget value.
      if (typeof type === "string") {
        const c = coerceWidget(type, value);
        if (!c.ok) {
          errors.push(err("invalid_input_type", `Failed to convert an input value to a ${type} value`, `${name}, ${pyStr(value)}, ${c.why}`, { input_name: name, input_config: formatSpec(spec), received_value: value, exception_message: c.why }));
          continue;
        }
        node.inputs[name] = c.value;
        const n = numeric(c.value);
        const min = numeric((opts as Record<string, unknown>).min);
        const max = numeric((opts as Record<string, unknown>).max);
        if (n !== undefined && min !== undefined && n < min) {
          errors.push(err("value_smaller_than_min", `Value ${n} smaller than min of ${min}`, name, { input_name: name, input_config: formatSpec(spec), received_value: c.value }));
          continue;
        }
        if (n !== undefined && max !== undefined && n > max) {
          errors.push(err("value_bigger_than_max", `Value ${n} bigger than max of ${max}`, name, { input_name: name, input_config: formatSpec(spec), received_value: c.value }));
          continue;
        }
      }
      constants[name] = [node.inputs[name]];
      const choices = comboOptions(spec);
      if (choices && !backend.hasValidateInputs(node.class_type) && !choices.includes(value)) {
        const listInfo = choices.length > 20 ? `(list of length ${choices.length})` : JSON.stringify(choices);
        errors.push(err("value_not_in_list", "Value not in list", `${name}: '${String(value)}' not in ${listInfo}`, { input_name: name, input_config: formatSpec(spec), received_value: value }));
      }
    }
    return { errors, constants, deps, edges };
  };

  const checked = new Map<string, Checked>();
  const ownErrors = new Map<string, ValidationError[]>();
  const order: string[] = [];
  const state = new Map<string, "open" | "done">();
  for (const o of outputs) {
    if (state.has(o)) continue;
    const stack: { id: string; next: number }[] = [];
    const enter = (id: string) => {
      state.set(id, "open");
      checked.set(id, check(id));
      stack.push({ id, next: 0 });
    };
    enter(o);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const edges = checked.get(top.id)!.edges;
      if (top.next < edges.length) {
        const next = edges[top.next++]!;
        const st = state.get(next);
        if (st === undefined) enter(next);
        else if (st === "open") {
          // A link back to a node still being validated: every node on the way is in a cycle.
          const path = stack.map((f) => f.id);
          const cycle = path.slice(path.indexOf(next));
          for (const n of cycle) {
            const list = ownErrors.get(n) ?? [];
            if (!list.some((e) => e.type === "dependency_cycle")) {
              list.push(err("dependency_cycle", "Dependency cycle detected", `${cycle.join(" -> ")} -> ${next}`, { cycle }));
            }
            ownErrors.set(n, list);
          }
        }
        continue;
      }
      stack.pop();
      state.set(top.id, "done");
      order.push(top.id);
    }
  }

  // Inputs before the nodes that use them: custom validation runs in the same order as ever.
  const valid = new Map<string, boolean>();
  for (const id of order) {
    const c = checked.get(id)!;
    const node = prompt[id]!;
    const errors = c.errors;
    if (errors.length === 0 && backend.hasValidateInputs(node.class_type)) {
      try {
        const r = await backend.validateInputs(node.class_type, c.constants, id);
        if (r !== true) errors.push(err("custom_validation_failed", "Custom validation failed for node", r, {}));
      } catch (e) {
        errors.push(err("exception_during_validation", "Exception when validating node", e instanceof Error ? e.message : String(e), {}));
      }
    }
    if (errors.length > 0) ownErrors.set(id, [...(ownErrors.get(id) ?? []), ...errors]);
    valid.set(id, errors.length === 0 && !ownErrors.has(id) && c.deps.every((d) => valid.get(d) === true));
  }

  const good = outputs.filter((o) => valid.get(o) === true);
  for (const [id, errors] of ownErrors) {
    if (errors.length > 0) node_errors[id] = { errors, dependent_outputs: [], class_type: prompt[id]!.class_type };
  }
  if (ownErrors.size > 0) {
    // Which outputs each node with errors holds back.
    for (const o of outputs) {
      const reach = reachable(prompt, o);
      for (const id of ownErrors.keys()) if (node_errors[id] && reach.has(id)) node_errors[id]!.dependent_outputs.push(o);
    }
  }

  if (Object.keys(node_errors).length > 0 || good.length < outputs.length) {
    const lines: string[] = [];
    for (const [id, e] of Object.entries(node_errors)) for (const x of e.errors) lines.push(`${x.message}: ${x.details} (node ${id}, ${e.class_type})`);
    return {
      ok: false,
      error: err("prompt_outputs_failed_validation", "Prompt outputs failed validation", lines.join("\n"), {}),
      outputs: good,
      node_errors,
    };
  }
  return { ok: true, outputs: good, node_errors };
}

/** Node `from` and every node it reaches through links (iterative). */
function reachable(prompt: Prompt, from: string): Set<string> {
  const seen = new Set<string>([from]);
  const todo = [from];
  while (todo.length > 0) {
    const node = prompt[todo.pop()!];
    if (!node) continue;
    for (const v of Object.values(node.inputs)) {
      if (!isLink(v)) continue;
      const src = String(v[0]);
      if (!seen.has(src)) {
        seen.add(src);
        todo.push(src);
      }
    }
  }
  return seen;
}
