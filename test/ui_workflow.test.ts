// UI-format workflows to API prompts: every export rule of the editor on the generated cases,
// with the prompt each must give (the browser test checks the same cases against the stock
// frontend's own export).
import { describe, expect, it } from "vitest";
import type { NodeInfo } from "../src/executor/types.ts";
import { convertUiWorkflow, isUiWorkflow, processDynamicPrompt, widgetSlots } from "../src/workflow/ui_workflow.ts";
import { linksCase, modesCase, subgraphCase, UiGraph, unknownOffCase, widgetsCase } from "./shared/ui_cases.ts";

const big = 0xffffffffffffffffn;
const node = (name: string, required: NodeInfo["input"]["required"], output: string[], optional?: NodeInfo["input"]["optional"], extra: Partial<NodeInfo> = {}): NodeInfo => ({
  name,
  display_name: name,
  category: "ui_rules",
  input: { required: required ?? {}, ...(optional ? { optional } : {}) },
  output,
  output_name: output,
  output_node: false,
  python_module: "custom_nodes.UiRules",
  ...extra,
});

/** The UiRules fixture pack's schemas, as /object_info gives them. */
export const INFO: Record<string, NodeInfo> = {
  UiSource: node("UiSource", { seed: ["INT", { default: 0, min: 0, max: Number(big) }] }, ["LATENT", "IMAGE"]),
  UiSampler: node(
    "UiSampler",
    {
      latent: ["LATENT"],
      noise_seed: ["INT", { default: 0 }],
      steps: ["INT", { default: 20 }],
      cfg: ["FLOAT", { default: 7 }],
      sampler: [["euler", "ddim", "uni_pc"]],
      scheduler: [["normal", "karras"], { control_after_generate: true }],
      text: ["STRING", { multiline: true, dynamicPrompts: true }],
    },
    ["LATENT", "STRING"],
    { denoise: ["FLOAT", { default: 1 }], tag: ["STRING", { forceInput: true }] },
    { display_name: "UI Sampler" },
  ),
  UiLoadImage: node("UiLoadImage", { image: [["example.png", "other.png"], { image_upload: true }], frames: ["INT", { default: 1 }] }, ["IMAGE"]),
  UiMix: node("UiMix", { image: ["IMAGE"], latent: ["LATENT"], amount: ["FLOAT", { default: 0.5 }] }, ["LATENT", "IMAGE"]),
  UiSink: node("UiSink", { latent: ["LATENT"] }, [], { image: ["IMAGE"], text: ["STRING", { forceInput: true }], label: ["STRING", { default: "out" }] }, {
    display_name: "UI Sink",
    output_node: true,
  }),
};

describe("UI-format workflows", () => {
  it("tells the UI format from an API prompt", () => {
    expect(isUiWorkflow({ nodes: [], links: [] })).toBe(true);
    expect(isUiWorkflow({ "1": { class_type: "X", inputs: {} } })).toBe(false);
    expect(isUiWorkflow([])).toBe(false);
  });

  it("lays widgets out as the editor does: seed controls, combo control + filter list, the upload button after the required inputs", () => {
    expect(widgetSlots(INFO.UiSampler!).map((w) => `${w.name}${w.serialize ? "" : "*"}`)).toEqual([
      "noise_seed", "control_after_generate*", "steps", "cfg", "sampler", "scheduler", "control_after_generate*", "control_filter_list*", "text", "denoise",
    ]);
    expect(widgetSlots(INFO.UiLoadImage!).map((w) => `${w.name}${w.serialize ? "" : "*"}`)).toEqual(["image", "frames", "upload*"]);
    expect(widgetSlots(INFO.UiSink!).map((w) => w.name)).toEqual(["label"]);
  });

  it("names widget values, drops controls and Notes, keeps titles; applies the editor's value migration and defaults", () => {
    expect(convertUiWorkflow(widgetsCase(INFO), INFO)).toEqual({
      "1": { inputs: { seed: 12345 }, class_type: "UiSource", _meta: { title: "UiSource" } },
      "2": {
        // 10 values is what the editor's old layout (a slot for the forced "tag") holds: it drops
        // the value at that place, so the text box gets 0.75 (as text) and denoise its default.
        inputs: { noise_seed: 777, steps: 25, cfg: 6.5, sampler: "ddim", scheduler: "karras", text: "0.75", denoise: 1, latent: ["1", 0] },
        class_type: "UiSampler",
        _meta: { title: "My sampler" },
      },
      "3": { inputs: { image: "other.png", frames: 3 }, class_type: "UiLoadImage", _meta: { title: "UiLoadImage" } },
      "4": { inputs: { label: "done", latent: ["2", 0], image: ["3", 0], text: ["2", 1] }, class_type: "UiSink", _meta: { title: "UI Sink" } },
    });
  });

  it("follows Reroutes, applies Primitives to the widgets they feed, lets a link replace a widget", () => {
    const p = convertUiWorkflow(linksCase(INFO), INFO);
    expect(Object.keys(p).sort()).toEqual(["1", "5", "6", "7"]);
    expect(p["5"]!.inputs).toMatchObject({ latent: ["1", 0], steps: 42 });
    expect(p["6"]!.inputs).toMatchObject({ latent: ["5", 0], text: ["5", 1], steps: 10 });
  });

  it("drops muted nodes and what they fed; bypassed nodes pass the input of the matching type", () => {
    const p = convertUiWorkflow(modesCase(INFO), INFO);
    expect(Object.keys(p).sort()).toEqual(["1", "2", "6", "7"]);
    // UiMix's LATENT output (slot 0) passes its latent input (slot 1); its IMAGE output its image input.
    expect(p["6"]!.inputs).toEqual({ label: "modes", latent: ["1", 0], image: ["2", 0] });
    expect(p["7"]!.inputs).toEqual({ label: "muted upstream" });
  });

  it("leaves out muted and bypassed nodes of a class no pack provides, as the editor does", () => {
    const p = convertUiWorkflow(unknownOffCase(INFO), INFO);
    expect(Object.keys(p).sort()).toEqual(["1", "2", "5"]);
    // The muted node's latent is gone; the bypassed filter passes the loaded image on.
    expect(p["5"]!.inputs).toEqual({ label: "unknown off", image: ["2", 0] });
  });

  it("flattens subgraphs with outer:inner ids", () => {
    const p = convertUiWorkflow(subgraphCase(INFO), INFO);
    expect(Object.keys(p).sort()).toEqual(["1", "2:1", "3"]);
    expect(p["2:1"]!.inputs).toMatchObject({ latent: ["1", 0], sampler: "uni_pc", steps: 8 });
    expect(p["3"]!.inputs).toMatchObject({ latent: ["2:1", 0] });
  });

  it("keeps a 2^64 - 1 seed exact and wraps list values as the editor does", () => {
    const g = new UiGraph(INFO);
    g.node(1, "UiSource", [big, "fixed"]);
    const s = g.node(2, "UiSink", [["a", "b"]]);
    void s;
    const p = convertUiWorkflow({ nodes: g.nodes, links: g.arrayLinks() }, INFO);
    expect(p["1"]!.inputs.seed).toBe(big);
    expect(p["2"]!.inputs.label).toEqual({ __value__: ["a", "b"] });
  });

  it("names a node no pack provides, with its id and a likely match", () => {
    const g = new UiGraph(INFO);
    g.node(7, "UiSamplr", []);
    expect(() => convertUiWorkflow({ nodes: g.nodes, links: [] }, INFO)).toThrow(/Node 7 of the workflow is a "UiSamplr", which no pack provides \(did you mean "UiSampler"\?\)/);
  });

  it("dynamic prompts: one choice of each {a|b}, escapes kept as characters", () => {
    expect(processDynamicPrompt("x {a|a} \\{y\\} // c")).toBe("x a {y} ");
    expect(["red", "blue"]).toContain(processDynamicPrompt("{red|blue}"));
  });
});
