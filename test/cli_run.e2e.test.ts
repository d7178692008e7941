// `pyisolate run` end to end, in-process through main(): the demo workflow over the example
// packs (real environments and processes), --json event lines, and the CLI's errors.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../src/cli/main.ts";

const root = join(import.meta.dirname, "..");
const tmp = mkdtempSync(join(tmpdir(), "pyisolate-cli-run-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err };
}

const common = ["--custom-nodes", join(root, "examples", "custom_nodes"), "--cache-dir", join(tmp, "cache"), "--input", join(root, "examples", "input")];

describe("pyisolate run", () => {
  it("runs the demo workflow and prints ComfyUI events as JSON lines", async () => {
    const r = await cli("run", join(root, "examples", "workflows", "demo.json"), ...common, "--output", join(tmp, "out"), "--json");
    expect(r.code, r.err).toBe(0);
    const events = r.out.trim().split("\n").map((l) => JSON.parse(l) as { type: string; data: Record<string, unknown> });
    expect(events[0]!.type).toBe("execution_start");
    // ComfyUI's order: the outcome, then executing with node null.
    expect(events.at(-2)!.type).toBe("execution_success");
    expect(events.at(-1)).toEqual({ type: "executing", data: { node: null, prompt_id: events[0]!.data.prompt_id } });
    const texts = events.filter((e) => e.type === "executed").flatMap((e) => ((e.data.output as { text?: string[] }).text ?? []));
    expect(texts).toContain("1.26.4");
    expect(texts.some((t) => /^2\.\d+\.\d+$/.test(t) && Number(t.split(".")[1]) >= 1)).toBe(true);
    expect(readdirSync(join(tmp, "out")).filter((f) => f.endsWith(".png"))).toHaveLength(1);
  });

  it("converts the UI-format demo to the API demo, and runs it", async () => {
    const c = await cli("convert", join(root, "examples", "workflows", "demo_ui.json"), ...common.slice(0, 4));
    expect(c.code, c.err).toBe(0);
    expect(JSON.parse(c.out)).toEqual(JSON.parse(readFileSync(join(root, "examples", "workflows", "demo.json"), "utf8")));
    const r = await cli("run", join(root, "examples", "workflows", "demo_ui.json"), ...common, "--output", join(tmp, "out-ui"));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain("11 executed");
    expect(readdirSync(join(tmp, "out-ui")).filter((f) => f.endsWith(".png"))).toHaveLength(1);
    const bad = await cli("convert", join(root, "examples", "workflows", "nope.json"), ...common.slice(0, 4));
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("Cannot read the workflow");
  });

  it("shows a table with every node, its pack and kind, and the outputs", async () => {
    const r = await cli("run", join(root, "examples", "workflows", "demo.json"), ...common, "--output", join(tmp, "out2"));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/NumpyLegacyInvert\s+NumpyLegacyNode\s+isolated\s+executed/);
    expect(r.out).toMatch(/MakeGradient\s+ImageTools\s+shared\s+executed/);
    expect(r.out).toContain("11 executed, 0 cached");
    expect(r.err).toContain("][ NumpyLegacyNode loaded from cache");
  });

  it("reports validation problems per node and exits 1; --json adds a prompt_error line", async () => {
    const wf = join(tmp, "bad.json");
    writeFileSync(wf, JSON.stringify({ "1": { class_type: "NoSuchNode", inputs: {} }, "2": { class_type: "ShowText", inputs: {} } }));
    const r = await cli("run", wf, ...common, "--output", join(tmp, "out3"));
    expect(r.code).toBe(1);
    expect(r.err).toContain("node 1 (NoSuchNode): Cannot execute because node NoSuchNode does not exist");
    const j = await cli("run", wf, ...common, "--output", join(tmp, "out3"), "--json");
    expect(j.code).toBe(1);
    const last = JSON.parse(j.out.trim().split("\n").at(-1)!) as { type: string; data: { node_errors: Record<string, unknown> } };
    expect(last.type).toBe("prompt_error");
    expect(Object.keys(last.data.node_errors)).toEqual(["1"]);
  });

  it("names the unknown node of a UI-format workflow; refuses files that are not JSON, and an output path that is a file", async () => {
    const ui = join(tmp, "ui.json");
    writeFileSync(ui, JSON.stringify({ nodes: [{ id: 3, type: "NoSuchNode", inputs: [], outputs: [], widgets_values: [] }], links: [] }));
    const a = await cli("run", ui, ...common);
    expect(a.code).toBe(1);
    expect(a.err).toContain('Node 3 of the workflow is a "NoSuchNode", which no pack provides');
    const notJson = join(tmp, "x.json");
    writeFileSync(notJson, "{ nope");
    const b = await cli("run", notJson, ...common);
    expect(b.code).toBe(1);
    expect(b.err.trim().split("\n")).toHaveLength(1);
    expect(b.err).toMatch(/^error: .*not valid JSON/);
    const c = await cli("run", join(root, "examples", "workflows", "demo.json"), ...common, "--output", notJson);
    expect(c.code).toBe(2);
    expect(c.err).toContain("is a file");
  });
});
