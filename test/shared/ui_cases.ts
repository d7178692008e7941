// UI-format workflows built the way ComfyUI's editor saves them (sockets in schema order,
// widget sockets marked, links in both tables), over the UiRules fixture pack
// (test/fixtures/ui_packs/UiRules). Each case covers some of the editor's export rules; the
// unit test states what each must convert to, the browser test checks that the stock
// frontend's own export agrees.
import type { NodeInfo } from "../../src/executor/types.ts";
import type { UiLink, UiNode, UiWorkflow } from "../../src/workflow/ui_workflow.ts";
import { widgetSlots } from "../../src/workflow/ui_workflow.ts";

/** Builds one graph level (the root or a subgraph). */
export class UiGraph {
  nodes: UiNode[] = [];
  links: { id: number; origin_id: number; origin_slot: number; target_id: number; target_slot: number; type: string }[] = [];
  #info: Record<string, NodeInfo>;
  #nextLink: { n: number };

  constructor(info: Record<string, NodeInfo>, nextLink = { n: 1 }) {
    this.#info = info;
    this.#nextLink = nextLink;
  }

  /** A node of a schema class, its widget values in the editor's order. */
  node(id: number, type: string, widgets: unknown[] = [], extra: Partial<UiNode> = {}): UiNode {
    const info = this.#info[type];
    let inputs: NonNullable<UiNode["inputs"]> = [];
    let outputs: NonNullable<UiNode["outputs"]> = [];
    if (info) {
      const widgetNames = new Set(widgetSlots(info).filter((w) => w.serialize).map((w) => w.name));
      for (const [name, spec] of [...Object.entries(info.input.required ?? {}), ...Object.entries(info.input.optional ?? {})]) {
        const t = Array.isArray(spec[0]) ? "COMBO" : String(spec[0]);
        inputs.push(widgetNames.has(name) ? { name, type: t, widget: { name }, link: null } : { name, type: t, link: null });
      }
      outputs = info.output.map((t, i) => ({ name: info.output_name?.[i] ?? String(t), type: String(t), links: [] }));
    } else if (type === "Reroute") {
      inputs = [{ name: "", type: "*", link: null }];
      outputs = [{ name: "", type: "*", links: [] }];
    } else if (type === "PrimitiveNode") {
      outputs = [{ name: "connect to widget input", type: "*", links: [] }];
    }
    const n: UiNode = {
      id,
      type,
      pos: [120 + (this.nodes.length % 4) * 320, 80 + Math.floor(this.nodes.length / 4) * 260],
      size: [280, 160],
      flags: {},
      order: this.nodes.length,
      mode: 0,
      inputs,
      outputs,
      properties: { "Node name for S&R": type },
      widgets_values: widgets,
      ...extra,
    };
    this.nodes.push(n);
    return n;
  }

  /** Links output `slot` of `from` to the input named `input` of `to`. */
  link(from: UiNode, slot: number, to: UiNode, input: string): number {
    const target = to.inputs!.findIndex((i) => i.name === input);
    if (target === -1) throw new Error(`${to.type} has no input ${input}`);
    const id = this.#nextLink.n++;
    const out = from.outputs![slot]!;
    const type = String(to.type === "Reroute" ? out.type : out.type === "*" ? to.inputs![target]!.type : out.type);
    if (to.type === "Reroute") to.outputs![0]!.type = String(out.type);
    if (from.type === "PrimitiveNode") out.type = String(to.inputs![target]!.type);
    out.links = [...(out.links ?? []), id];
    to.inputs![target]!.link = id;
    this.links.push({ id, origin_id: Number(from.id), origin_slot: slot, target_id: Number(to.id), target_slot: target, type });
    return id;
  }

  /** The links as the root graph writes them (arrays). */
  arrayLinks(): UiLink[] {
    return this.links.map((l) => [l.id, l.origin_id, l.origin_slot, l.target_id, l.target_slot, l.type]);
  }
}

function workflow(g: UiGraph, extra: Partial<UiWorkflow> = {}): UiWorkflow {
  const maxNode = Math.max(0, ...g.nodes.map((n) => Number(n.id)));
  const maxLink = Math.max(0, ...g.links.map((l) => l.id));
  return { last_node_id: maxNode, last_link_id: maxLink, nodes: g.nodes, links: g.arrayLinks(), groups: [], config: {}, extra: {}, version: 0.4, ...extra };
}

/** Widgets, seeds and controls, a controlled combo, dynamic prompts, optional widgets, an upload button, a Note. */
export function widgetsCase(info: Record<string, NodeInfo>): UiWorkflow {
  const g = new UiGraph(info);
  const src = g.node(1, "UiSource", [12345, "fixed"]);
  const s = g.node(2, "UiSampler", [777, "randomize", 25, 6.5, "ddim", "karras", "fixed", "", "a cat // a comment\n/* gone */on a mat", 0.75], { title: "My sampler" });
  const img = g.node(3, "UiLoadImage", ["other.png", 3, "image"]);
  const sink = g.node(4, "UiSink", ["done"]);
  g.node(5, "Note", ["a note the export leaves out"]);
  g.link(src, 0, s, "latent");
  g.link(s, 0, sink, "latent");
  g.link(img, 0, sink, "image");
  g.link(s, 1, sink, "text");
  return workflow(g);
}

/** A Reroute chain, a Primitive feeding a widget, a widget input fed by a link. */
export function linksCase(info: Record<string, NodeInfo>): UiWorkflow {
  const g = new UiGraph(info);
  const src = g.node(1, "UiSource", [5, "fixed"]);
  const r1 = g.node(2, "Reroute", []);
  const r2 = g.node(3, "Reroute", []);
  const prim = g.node(4, "PrimitiveNode", [42, "fixed"], { title: "steps" });
  const a = g.node(5, "UiSampler", [1, "fixed", 20, 7, "euler", "normal", "fixed", "", "first", 1]);
  const b = g.node(6, "UiSampler", [2, "fixed", 10, 7, "euler", "normal", "fixed", "", "replaced by the link", 1]);
  const sink = g.node(7, "UiSink", ["links"]);
  g.link(src, 0, r1, "");
  g.link(r1, 0, r2, "");
  g.link(r2, 0, a, "latent");
  g.link(prim, 0, a, "steps");
  g.link(a, 0, b, "latent");
  g.link(a, 1, b, "text");
  g.link(b, 0, sink, "latent");
  return workflow(g);
}

/** A muted node (its inputs downstream go) and bypassed nodes (inputs pass through by type). */
export function modesCase(info: Record<string, NodeInfo>): UiWorkflow {
  const g = new UiGraph(info);
  const src = g.node(1, "UiSource", [9, "fixed"]);
  const img = g.node(2, "UiLoadImage", ["example.png", 1, "image"]);
  const mix = g.node(3, "UiMix", [0.5], { mode: 4 });
  const muted = g.node(4, "UiSampler", [3, "fixed", 20, 7, "euler", "normal", "fixed", "", "muted", 1], { mode: 2 });
  const mix2 = g.node(5, "UiMix", [0.25], { mode: 4 });
  const sink = g.node(6, "UiSink", ["modes"]);
  const sink2 = g.node(7, "UiSink", ["muted upstream"]);
  g.link(img, 0, mix, "image");
  g.link(src, 0, mix, "latent");
  g.link(mix, 0, mix2, "latent");
  g.link(mix, 1, mix2, "image");
  g.link(mix2, 0, sink, "latent");
  g.link(mix2, 1, sink, "image");
  g.link(src, 0, muted, "latent");
  g.link(muted, 0, sink2, "latent");
  g.link(muted, 1, sink2, "text");
  return workflow(g);
}

/** Muted and bypassed nodes of a class no pack provides: left out, a bypass passing its image on. */
export function unknownOffCase(info: Record<string, NodeInfo>): UiWorkflow {
  const g = new UiGraph(info);
  const src = g.node(1, "UiSource", [5, "fixed"]);
  const img = g.node(2, "UiLoadImage", ["example.png", 1, "image"]);
  const gone = g.node(3, "NoSuchPackNode", [1.5], {
    mode: 2,
    inputs: [{ name: "latent", type: "LATENT", link: null }],
    outputs: [{ name: "LATENT", type: "LATENT", links: [] }],
  });
  const pass = g.node(4, "NoSuchPackFilter", ["soft"], {
    mode: 4,
    inputs: [{ name: "image", type: "IMAGE", link: null }],
    outputs: [{ name: "IMAGE", type: "IMAGE", links: [] }],
  });
  const sink = g.node(5, "UiSink", ["unknown off"]);
  g.link(src, 0, gone, "latent");
  g.link(gone, 0, sink, "latent");
  g.link(img, 0, pass, "image");
  g.link(pass, 0, sink, "image");
  return workflow(g);
}

/** A subgraph holding a sampler: its nodes come out with `outer:inner` ids. */
export function subgraphCase(info: Record<string, NodeInfo>): UiWorkflow {
  const next = { n: 1 };
  const g = new UiGraph(info, next);
  const inner = new UiGraph(info, next);
  const sid = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
  const src = g.node(1, "UiSource", [11, "fixed"]);
  const sinkOut = g.node(3, "UiSink", ["subgraph"]);
  const s = inner.node(1, "UiSampler", [4, "fixed", 8, 2, "uni_pc", "normal", "fixed", "", "inside", 0.5]);
  // Subgraph IO: the input node (-10) feeds the sampler's latent, the sampler feeds the output node (-20).
  const inLink = next.n++;
  s.inputs![0]!.link = inLink;
  inner.links.push({ id: inLink, origin_id: -10, origin_slot: 0, target_id: 1, target_slot: 0, type: "LATENT" });
  const outLink = next.n++;
  s.outputs![0]!.links = [outLink];
  inner.links.push({ id: outLink, origin_id: 1, origin_slot: 0, target_id: -20, target_slot: 0, type: "LATENT" });
  const sub = g.node(2, sid, [], {
    inputs: [{ name: "latent", type: "LATENT", link: null }],
    outputs: [{ name: "LATENT", type: "LATENT", links: [] }],
    properties: {},
  });
  g.link(src, 0, sub, "latent");
  g.link(sub, 0, sinkOut, "latent");
  const definition = {
    id: sid,
    version: 1,
    state: { lastGroupId: 0, lastNodeId: 1, lastLinkId: next.n - 1, lastRerouteId: 0 },
    revision: 0,
    config: {},
    name: "Inner sampler",
    inputNode: { id: -10, bounding: [0, 100, 120, 60] },
    outputNode: { id: -20, bounding: [800, 100, 120, 60] },
    inputs: [{ id: "a1b2c3d4-0000-4000-8000-000000000001", name: "latent", type: "LATENT", linkIds: [inLink], pos: [100, 120] }],
    outputs: [{ id: "a1b2c3d4-0000-4000-8000-000000000002", name: "LATENT", type: "LATENT", linkIds: [outLink], pos: [820, 120] }],
    widgets: [],
    nodes: inner.nodes,
    groups: [],
    links: inner.links,
    extra: {},
  };
  return workflow(g, { definitions: { subgraphs: [definition as never] } });
}

/** Every generated case, by name. */
export const UI_CASES: Record<string, (info: Record<string, NodeInfo>) => UiWorkflow> = {
  widgets: widgetsCase,
  links: linksCase,
  modes: modesCase,
  unknownOff: unknownOffCase,
  subgraph: subgraphCase,
};
