/**
 * Workflows in ComfyUI's UI format (what the editor saves: `nodes` and `links` arrays, widget
 * values by position) converted to API-format prompts, by the rules of the stock frontend's
 * "Export (API)": widget values are named from the node schemas in the order the editor
 * creates widgets (required inputs, then optional; a `control_after_generate` widget after
 * seeds, a filter list after controlled combos, an upload button at the end of the required
 * inputs of image loaders); links override widgets; Reroute, Primitive and Note nodes are
 * resolved away; muted nodes (mode 2) drop out with the inputs they fed; bypassed nodes
 * (mode 4) pass an input of the matching type through; subgraphs are flattened with
 * `outer:inner` ids.
 * @module
 */
import { PyisolateError } from "../errors.ts";
import type { InputSpec, NodeInfo, Prompt, PromptNode } from "../executor/types.ts";
import { closest } from "../util/text.ts";

/** One node of a UI-format workflow (the fields conversion reads). */
export interface UiNode {
  id: number | string;
  type: string;
  title?: string;
  mode?: number;
  inputs?: { name: string; type?: string | number; link?: number | null; widget?: { name: string } }[];
  outputs?: { name?: string; type?: string | number; links?: number[] | null }[];
  widgets_values?: unknown[] | Record<string, unknown>;
  [key: string]: unknown;
}

/** A link of a UI-format workflow: the array form of the root graph, or the object form of subgraphs. */
export type UiLink =
  | [number, number | string, number, number | string, number, string | number]
  | { id: number; origin_id: number | string; origin_slot: number; target_id: number | string; target_slot: number; type?: string | number };

/** A subgraph definition (`definitions.subgraphs[]`). */
export interface UiSubgraph {
  id: string;
  name?: string;
  nodes: UiNode[];
  links?: UiLink[];
  inputs?: { name: string; type?: string; linkIds?: number[] }[];
  outputs?: { name: string; type?: string; linkIds?: number[] }[];
}

/** A workflow as ComfyUI's editor saves it. */
export interface UiWorkflow {
  nodes: UiNode[];
  links: UiLink[];
  definitions?: { subgraphs?: UiSubgraph[] };
  [key: string]: unknown;
}

/** Node modes: always (0), never — muted (2), bypass (4). */
const MODE_NEVER = 2;
const MODE_BYPASS = 4;
/** The id of a subgraph's input node in its links (its outputs are found by `linkIds`). */
const SUBGRAPH_INPUT_ID = -10;

/** Node types the editor itself provides and never sends: they are resolved away. */
const VIRTUAL_TYPES: ReadonlySet<string> = new Set(["Reroute", "PrimitiveNode", "Note", "MarkdownNote"]);

/** Input types the editor draws as widgets (its core widget table). */
const WIDGET_TYPES: ReadonlySet<string> = new Set([
  "INT", "FLOAT", "BOOLEAN", "STRING", "MARKDOWN", "COMBO", "IMAGEUPLOAD", "COLOR", "IMAGECOMPARE", "CHART", "GALLERIA", "TEXTAREA",
]);

/** True for a workflow in the UI format (`nodes` and `links` arrays) rather than an API prompt. */
export function isUiWorkflow(data: unknown): data is UiWorkflow {
  if (!data || typeof data !== "object" || Array.isArray(data)) return false;
  const o = data as Record<string, unknown>;
  return Array.isArray(o.nodes) && Array.isArray(o.links);
}

/** One widget the editor makes for a node, in order. */
interface WidgetSlot {
  name: string;
  /** The value a new widget has (the schema's default, a combo's first option). */
  initial?: unknown;
  /** A multiline text box: whatever it is given, it holds text. */
  textBox?: boolean;
  /** False for widgets the editor keeps out of the prompt (controls, filter lists, upload buttons). */
  serialize: boolean;
  dynamicPrompts: boolean;
}

function specType(spec: InputSpec): string {
  return Array.isArray(spec[0]) ? "COMBO" : String(spec[0]);
}

/** The widgets the editor creates for a node class, in the order it stores their values. */
export function widgetSlots(info: NodeInfo): WidgetSlot[] {
  const required = Object.entries(info.input?.required ?? {});
  const optional = Object.entries(info.input?.optional ?? {});
  // The editor appends an upload button to the required inputs of a node with a media combo.
  const media = required.find(([, s]) => {
    const o = (s[1] ?? {}) as Record<string, unknown>;
    return specType(s) === "COMBO" && (o.image_upload === true || o.video_upload === true || o.animated_image_upload === true);
  });
  const all: [string, InputSpec][] = [...required, ...(media ? [["upload", ["IMAGEUPLOAD", {}]] as [string, InputSpec]] : []), ...optional];
  const slots: WidgetSlot[] = [];
  for (const [name, spec] of all) {
    const type = specType(spec);
    const opts = (spec[1] ?? {}) as Record<string, unknown>;
    const widgetType = typeof opts.widgetType === "string" ? opts.widgetType : type;
    if (!WIDGET_TYPES.has(widgetType) || opts.forceInput === true) continue;
    if (widgetType === "IMAGEUPLOAD") {
      slots.push({ name, serialize: false, dynamicPrompts: false });
      continue;
    }
    const initial = opts.default ?? (type === "COMBO" ? (Array.isArray(spec[0]) ? spec[0][0] : undefined) : type === "STRING" ? "" : type === "BOOLEAN" ? false : type === "INT" || type === "FLOAT" ? 0 : undefined);
    slots.push({ name, serialize: true, dynamicPrompts: type === "STRING" && opts.dynamicPrompts === true, initial, textBox: type === "STRING" && opts.multiline === true });
    const control = type === "INT" ? (opts.control_after_generate ?? (name === "seed" || name === "noise_seed")) : opts.control_after_generate;
    if ((type === "INT" || type === "FLOAT" || type === "COMBO") && control) {
      slots.push({ name: "control_after_generate", serialize: false, dynamicPrompts: false });
      if (type === "COMBO") slots.push({ name: "control_filter_list", serialize: false, dynamicPrompts: false });
    }
  }
  return slots;
}

/**
 * The editor's migration of old widget values, applied as it loads a node: when the values
 * number exactly what a layout with one slot per forced input would hold (each widget or
 * forced input one, a seed or controlled input two), the values at forced inputs' places are
 * dropped. The editor does this to files it saved itself when the counts happen to agree.
 */
export function migrateWidgetValues(info: NodeInfo, values: unknown[]): unknown[] {
  const names = new Set(widgetSlots(info).map((w) => w.name));
  const required = Object.entries(info.input?.required ?? {});
  const media = required.some(([, s]) => {
    const o = (s[1] ?? {}) as Record<string, unknown>;
    return specType(s) === "COMBO" && (o.image_upload === true || o.video_upload === true || o.animated_image_upload === true);
  });
  const inputs = [...required, ...(media ? [["upload", ["IMAGEUPLOAD", {}]] as [string, InputSpec]] : []), ...Object.entries(info.input?.optional ?? {})]
    .map(([name, spec]) => ({ name, opts: (spec[1] ?? {}) as Record<string, unknown> }))
    .filter((i) => names.has(i.name) || i.opts.forceInput === true);
  const count = inputs.reduce((n, i) => n + (i.opts.control_after_generate || i.name === "seed" || i.name === "noise_seed" ? 2 : 1), 0);
  if (count !== values.length) return values;
  return values.filter((_, k) => inputs[k]?.opts.forceInput !== true);
}

/**
 * The editor's dynamic prompts on a string widget: comments removed, `{a|b}` replaced by one
 * of its choices (at random, as the editor does), `\{` `\|` `\}` kept as the characters.
 */
export function processDynamicPrompt(text: string): string {
  const src = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*/g, "");
  let i = 0;
  const choice = (): string => {
    const options: string[] = [];
    let current = "";
    let depth = 0;
    while (i < src.length) {
      const ch = src[i++];
      if (ch === "\\") {
        current += "\\" + (src[i++] ?? "");
        continue;
      }
      if (ch === "{") depth++;
      else if (ch === "}") {
        if (depth === 0) break;
        depth--;
      } else if (ch === "|" && depth === 0) {
        options.push(current);
        current = "";
        continue;
      }
      current += ch;
    }
    options.push(current);
    return processDynamicPrompt(options[Math.floor(Math.random() * options.length)] ?? "");
  };
  let out = "";
  while (i < src.length) {
    const ch = src[i++];
    if (ch === "\\") out += "\\" + (src[i++] ?? "");
    else if (ch === "{") out += choice();
    else out += ch;
  }
  return out.replace(/\\([{}|])/g, "$1");
}

/** A link in one shape, whichever the file used. */
interface Link {
  origin_id: string;
  origin_slot: number;
  target_id: string;
  target_slot: number;
}

function normLink(l: UiLink): [number, Link] {
  if (Array.isArray(l)) return [Number(l[0]), { origin_id: String(l[1]), origin_slot: Number(l[2]), target_id: String(l[3]), target_slot: Number(l[4]) }];
  return [Number(l.id), { origin_id: String(l.origin_id), origin_slot: Number(l.origin_slot), target_id: String(l.target_id), target_slot: Number(l.target_slot) }];
}

/** One graph level: the root, or a subgraph as instantiated by one subgraph node. */
interface Graph {
  nodes: Map<string, UiNode>;
  links: Map<number, Link>;
  /** The subgraph node this level belongs to (undefined at the root), with its level. */
  owner?: { node: UiNode; graph: Graph; path: string[] };
  subgraph?: UiSubgraph;
}

/** `a` and `b` connect, by the editor's rule (`*` and empty match anything; comma lists intersect). */
function typesMatch(a: unknown, b: unknown): boolean {
  const x = a === "*" || a === "" || a === undefined || a === null ? "" : String(a).toLowerCase();
  const y = b === "*" || b === "" || b === undefined || b === null ? "" : String(b).toLowerCase();
  if (!x || !y || x === y) return true;
  const xs = x.split(",");
  const ys = y.split(",");
  return xs.some((t) => ys.includes(t));
}

/** Where an input's value comes from: another node's output, a value, or nothing. */
type Source = { link: [string, number] } | { value: unknown } | undefined;

/** Options of {@link convertUiWorkflow}. */
export interface ConvertOptions {
  /** Apply the editor's dynamic prompts to string widgets that ask for them (default true). */
  dynamicPrompts?: boolean;
}

/**
 * Converts a UI-format workflow to the API prompt the stock frontend's "Export (API)" writes,
 * using the node schemas (`/object_info` entries by class).
 * @throws {PyisolateError} `VALIDATION` for a node no pack provides (naming the node and its id;
 *   a muted or bypassed one is left out instead) or a link that points nowhere.
 */
export function convertUiWorkflow(ui: UiWorkflow, nodes: Record<string, NodeInfo>, opts: ConvertOptions = {}): Prompt {
  const subgraphs = new Map<string, UiSubgraph>((ui.definitions?.subgraphs ?? []).map((s) => [s.id, s]));
  const makeGraph = (list: UiNode[], links: UiLink[] | undefined, owner?: Graph["owner"], subgraph?: UiSubgraph): Graph => ({
    nodes: new Map(list.map((n) => [String(n.id), n])),
    links: new Map((links ?? []).filter((l) => l != null).map(normLink)),
    owner,
    subgraph,
  });
  const root = makeGraph(ui.nodes, ui.links);
  const prompt: Prompt = {};
  const seen = new Set<string>();

  /** Primitive nodes' values, applied to the widgets they feed (the editor's `applyToGraph`). */
  const primitiveValues = (g: Graph): Map<string, Map<string, unknown>> => {
    const out = new Map<string, Map<string, unknown>>();
    for (const n of g.nodes.values()) {
      if (n.type !== "PrimitiveNode") continue;
      const values = Array.isArray(n.widgets_values) ? n.widgets_values : [];
      if (values.length === 0) continue;
      for (const id of n.outputs?.[0]?.links ?? []) {
        const l = g.links.get(id);
        const target = l && g.nodes.get(l.target_id);
        const input = target?.inputs?.[l!.target_slot];
        if (!target || !input) continue;
        const name = input.widget?.name ?? input.name;
        if (!out.has(l!.target_id)) out.set(l!.target_id, new Map());
        out.get(l!.target_id)!.set(name, values[0]);
      }
    }
    return out;
  };

  const execId = (g: Graph, id: string): string => [...(g.owner?.path ?? []), id].join(":");
  const nodeTypes = (n: UiNode): { sub?: UiSubgraph; info?: NodeInfo } => ({ sub: subgraphs.get(n.type), info: nodes[n.type] });

  /** What feeds input `slot` of node `n` in graph `g`; `type` is the type asked for downstream. */
  const resolveInput = (g: Graph, n: UiNode, slot: number, type: unknown, guard: Set<string>): Source => {
    const key = `${execId(g, String(n.id))}[I]${slot}`;
    if (guard.has(key)) throw new PyisolateError("VALIDATION", `The workflow's links form a loop at node ${execId(g, String(n.id))} (${n.type}).`);
    guard.add(key);
    const input = n.inputs?.[slot];
    if (!input || input.link == null) return undefined;
    const link = g.links.get(Number(input.link));
    if (!link) throw new PyisolateError("VALIDATION", `Node ${execId(g, String(n.id))} (${n.type}) has input "${input.name}" on link ${input.link}, which the workflow does not hold.`);
    const want = type ?? input.type;
    if (g.owner && Number(link.origin_id) === SUBGRAPH_INPUT_ID) {
      const outer = g.owner;
      return resolveInput(outer.graph, outer.node, link.origin_slot, want, guard);
    }
    const origin = g.nodes.get(link.origin_id);
    if (!origin) throw new PyisolateError("VALIDATION", `Node ${execId(g, String(n.id))} (${n.type}) takes "${input.name}" from node ${link.origin_id}, which the workflow does not hold.`);
    return resolveOutput(g, origin, link.origin_slot, want, guard);
  };

  /** What output `slot` of node `n` stands for, seen from an input of type `type`. */
  const resolveOutput = (g: Graph, n: UiNode, slot: number, type: unknown, guard: Set<string>): Source => {
    const key = `${execId(g, String(n.id))}[O]${slot}`;
    if (guard.has(key)) throw new PyisolateError("VALIDATION", `The workflow's links form a loop at node ${execId(g, String(n.id))} (${n.type}).`);
    guard.add(key);
    if (n.mode === MODE_BYPASS) {
      const inputs = n.inputs ?? [];
      const outType = n.outputs?.[slot]?.type;
      let pick: number;
      if (type === "*" || type === "") pick = inputs.length > slot ? slot : 0;
      else if (inputs[slot] && typesMatch(inputs[slot].type, outType) && typesMatch(inputs[slot].type, type)) pick = slot;
      else {
        pick = inputs.findIndex((i) => i.type === type);
        if (pick === -1) pick = inputs.findIndex((i) => typesMatch(i.type, outType) && typesMatch(i.type, type));
      }
      return pick === -1 ? undefined : resolveInput(g, n, pick, undefined, guard);
    }
    const { sub } = nodeTypes(n);
    if (sub) {
      const inner = instantiate(g, n, sub);
      const linkId = sub.outputs?.[slot]?.linkIds?.[0];
      const link = linkId === undefined ? undefined : inner.links.get(linkId);
      if (!link) return undefined;
      const origin = inner.nodes.get(link.origin_id);
      if (!origin) return undefined;
      return resolveOutput(inner, origin, link.origin_slot, type, guard);
    }
    if (VIRTUAL_TYPES.has(n.type)) {
      // A Reroute passes its input through; a Primitive's value went to its targets' widgets.
      if (n.inputs?.[slot]?.link == null) return undefined;
      return resolveInput(g, n, slot, type, guard);
    }
    return { link: [execId(g, String(n.id)), slot] };
  };

  const instances = new Map<string, Graph>();
  const instantiate = (g: Graph, n: UiNode, sub: UiSubgraph): Graph => {
    const path = [...(g.owner?.path ?? []), String(n.id)];
    const key = path.join(":");
    let inner = instances.get(key);
    if (!inner) {
      if (path.length > 32) throw new PyisolateError("VALIDATION", `Subgraph ${sub.name ?? sub.id} contains itself (node ${key}).`);
      inner = makeGraph(sub.nodes ?? [], sub.links, { node: n, graph: g, path }, sub);
      instances.set(key, inner);
    }
    return inner;
  };

  const emit = (g: Graph): void => {
    const primitives = primitiveValues(g);
    for (const n of g.nodes.values()) {
      const id = execId(g, String(n.id));
      const { sub, info } = nodeTypes(n);
      if (sub) {
        if (n.mode === MODE_NEVER || n.mode === MODE_BYPASS) continue;
        emit(instantiate(g, n, sub));
        continue;
      }
      if (VIRTUAL_TYPES.has(n.type)) continue;
      // Muted and bypassed nodes are not sent, so their class need not exist (the editor exports
      // them without it too): a bypass passes inputs on from the slot types the workflow holds.
      if (n.mode === MODE_NEVER || n.mode === MODE_BYPASS) continue;
      if (!info) {
        const near = closest(n.type, Object.keys(nodes));
        const hint = near ? ` (did you mean "${near}"?)` : "";
        throw new PyisolateError(
          "VALIDATION",
          `Node ${id} of the workflow is a "${n.type}", which no pack provides${hint}. Install the pack that has it, or remove the node.`,
          { node: id },
        );
      }
      if (seen.has(id)) continue;
      seen.add(id);
      const inputs: Record<string, unknown> = {};
      const fed = primitives.get(String(n.id));
      const values = Array.isArray(n.widgets_values) ? migrateWidgetValues(info, n.widgets_values) : n.widgets_values;
      const slots = widgetSlots(info);
      slots.forEach((w, i) => {
        if (!w.serialize) return;
        let v: unknown;
        if (fed?.has(w.name)) v = fed.get(w.name);
        else if (Array.isArray(values)) v = values[i];
        else if (values && typeof values === "object") v = (values as Record<string, unknown>)[w.name];
        if (v === undefined) v = w.initial;
        if (v === undefined) return;
        if (w.textBox && v !== null && typeof v !== "string") v = String(v);
        if (w.dynamicPrompts && typeof v === "string" && opts.dynamicPrompts !== false) v = processDynamicPrompt(v);
        inputs[w.name] = Array.isArray(v) ? { __value__: v } : v;
      });
      (n.inputs ?? []).forEach((input, slot) => {
        const src = resolveInput(g, n, slot, undefined, new Set());
        if (!src) return;
        if ("value" in src) inputs[input.name] = Array.isArray(src.value) ? { __value__: src.value } : src.value;
        else inputs[input.name] = src.link;
      });
      const node: PromptNode = { inputs, class_type: n.type, _meta: { title: n.title ?? info.display_name ?? info.name ?? n.type } };
      prompt[id] = node;
    }
  };

  emit(root);
  // Inputs fed by nodes that are not sent (muted ones) go, as the editor drops them.
  for (const node of Object.values(prompt)) {
    for (const [k, v] of Object.entries(node.inputs)) {
      if (Array.isArray(v) && v.length === 2 && !prompt[String(v[0])]) delete node.inputs[k];
    }
  }
  return prompt;
}
