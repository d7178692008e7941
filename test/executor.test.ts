// Unit tests of the executor's graph logic: validation, ordering, caching, parallel branches,
// failure and interrupt. The node backend here is plain TypeScript arithmetic so that each
// rule can be checked exactly; the e2e suites run the same executor over real processes.
import { describe, expect, it } from "vitest";
import { PromptExecutor } from "../src/executor/executor.ts";
import { ProcessGate } from "../src/executor/process_gate.ts";
import type { ExecutionEvent, NodeBackend, NodeInfo, NodeRunResult, Prompt } from "../src/executor/types.ts";

const infos: Record<string, NodeInfo & { process: string }> = {
  Const: { name: "Const", input: { required: { value: ["INT", { min: 0, max: 100 }] } }, output: ["INT"], process: "p1" },
  Add: { name: "Add", input: { required: { a: ["INT"], b: ["INT"] } }, output: ["INT"], process: "p1" },
  Pick: { name: "Pick", input: { required: { mode: [["x", "y"]] } }, output: ["STRING"], process: "p2" },
  Show: { name: "Show", input: { required: { value: ["INT"] } }, output: [], output_node: true, process: "p1" },
  ShowB: { name: "ShowB", input: { required: { value: ["INT"] } }, output: [], output_node: true, process: "p2" },
  Slow: { name: "Slow", input: { required: { value: ["INT"] } }, output: ["INT"], process: "p2" },
  SlowB: { name: "SlowB", input: { required: { value: ["INT"] } }, output: ["INT"], process: "p3" },
  Fail: { name: "Fail", input: { required: { value: ["INT"] } }, output: ["INT"], process: "p1" },
  Random: { name: "Random", input: { required: {} }, output: ["INT"], process: "p1" },
  Inc: { name: "Inc", input: { required: { value: ["INT"] } }, output: ["INT"], process: "p1" },
  Seen: { name: "Seen", input: { required: { value: ["INT"] }, hidden: { prompt: "PROMPT", info: ["EXTRA_PNGINFO"], id: "UNIQUE_ID" } }, output: [], output_node: true, process: "p2" },
  Fl: { name: "Fl", input: { required: { x: ["FLOAT"] } }, output: [], output_node: true, process: "p1" },
};

class Backend implements NodeBackend {
  calls: string[] = [];
  hidden = new Map<string, unknown>();
  active = 0;
  maxActive = 0;
  info(c: string) {
    return infos[c];
  }
  owner(c: string) {
    const i = infos[c];
    return i ? { pack: `pack_${i.process}`, process: i.process, isolated: true } : undefined;
  }
  hasIsChanged(c: string) {
    return c === "Random";
  }
  hasValidateInputs() {
    return false;
  }
  async isChanged() {
    return Number.NaN;
  }
  async validateInputs(): Promise<true> {
    return true;
  }
  async execute(c: string, inputs: Record<string, unknown[]>, h: unknown, id: string): Promise<NodeRunResult> {
    this.calls.push(id);
    this.hidden.set(id, h);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      const v = (k: string) => inputs[k]![0] as number;
      switch (c) {
        case "Const":
          return { outputs: [[v("value")]], ui: null };
        case "Add":
          return { outputs: [[v("a") + v("b")]], ui: null };
        case "Show":
        case "ShowB":
          return { outputs: [], ui: { value: [v("value")] } };
        case "Slow":
        case "SlowB":
          await new Promise((r) => setTimeout(r, 150));
          return { outputs: [[v("value") * 2]], ui: null };
        case "Random":
          return { outputs: [[this.calls.length]], ui: null };
        case "Inc":
          return { outputs: [[v("value") + 1]], ui: null };
        case "Seen":
          return { outputs: [], ui: { value: [v("value")] } };
        case "Fl":
          return { outputs: [], ui: {} };
        case "Fail":
          throw Object.assign(new Error("boom"), { pythonType: "ValueError", pythonMessage: "boom", traceback: 'Traceback (most recent call last):\n  File "x.py", line 1, in f\n    raise ValueError("boom")\nValueError: boom\n' });
        default:
          throw new Error(c);
      }
    } finally {
      this.active--;
    }
  }
}

const chain: Prompt = {
  "1": { class_type: "Const", inputs: { value: 2 } },
  "2": { class_type: "Const", inputs: { value: "3" } },
  "3": { class_type: "Add", inputs: { a: ["1", 0], b: ["2", 0] } },
  "4": { class_type: "Show", inputs: { value: ["3", 0] } },
};

describe("PromptExecutor", () => {
  it("runs in dependency order and reports ui outputs and events", async () => {
    const b = new Backend();
    const ex = new PromptExecutor(b);
    const events: ExecutionEvent[] = [];
    const r = await ex.run(chain, { onEvent: (e) => events.push(e), promptId: "p" });
    expect(r.status).toBe("success");
    expect(r.outputs).toEqual({ "4": { value: [5] } });
    expect(b.calls.indexOf("3")).toBeGreaterThan(b.calls.indexOf("1"));
    expect(b.calls.at(-1)).toBe("4");
    expect(events.map((e) => e.type)).toEqual([
      "execution_start",
      "execution_cached",
      "executing",
      "executing",
      "executing",
      "executing",
      "executed",
      "execution_success",
      "executing",
    ]);
    expect(events.find((e) => e.type === "executed")!.data).toMatchObject({ node: "4", output: { value: [5] }, prompt_id: "p" });
  });

  it("re-runs nothing when nothing changed, and only dependants of a changed input", async () => {
    const b = new Backend();
    const ex = new PromptExecutor(b);
    await ex.run(chain);
    b.calls = [];
    const again = await ex.run(chain);
    expect(b.calls).toEqual([]);
    expect(again.nodes.every((n) => n.status === "cached")).toBe(true);
    expect(again.outputs["4"]).toEqual({ value: [5] });
    const changed = structuredClone(chain);
    changed["2"]!.inputs.value = 10;
    const r = await ex.run(changed);
    expect(b.calls.sort()).toEqual(["2", "3", "4"]);
    expect(r.outputs["4"]).toEqual({ value: [12] });
  });

  it("re-executes a node whose IS_CHANGED is NaN on every run", async () => {
    const b = new Backend();
    const ex = new PromptExecutor(b);
    const p: Prompt = { "1": { class_type: "Random", inputs: {} }, "2": { class_type: "Show", inputs: { value: ["1", 0] } } };
    await ex.run(p);
    b.calls = [];
    await ex.run(p);
    expect(b.calls).toEqual(["1", "2"]);
  });

  it("reports every validation problem together, per node", async () => {
    const b = new Backend();
    const ex = new PromptExecutor(b);
    const r = await ex.run({
      "1": { class_type: "Const", inputs: { value: 500 } },
      "2": { class_type: "Add", inputs: { a: ["1", 0] } },
      "3": { class_type: "Show", inputs: { value: ["2", 0] } },
      "4": { class_type: "Pick", inputs: { mode: "z" } },
      "5": { class_type: "Show", inputs: { value: ["4", 0] } },
    });
    expect(r.status).toBe("invalid");
    expect(b.calls).toEqual([]);
    const types = Object.fromEntries(Object.entries(r.validation.node_errors).map(([id, e]) => [id, e.errors.map((x) => x.type)]));
    expect(types).toEqual({
      "1": ["value_bigger_than_max"],
      "2": ["required_input_missing"],
      "4": ["value_not_in_list"],
      "5": ["return_type_mismatch"],
    });
    expect(r.validation.node_errors["1"]!.dependent_outputs).toEqual(["3"]);
  });

  it("rejects unknown classes, prompts without outputs and cycles", async () => {
    const ex = new PromptExecutor(new Backend());
    const unknown = await ex.run({ "1": { class_type: "Nope", inputs: {} } });
    expect(unknown.validation.error?.type).toBe("invalid_prompt");
    expect(unknown.validation.node_errors["1"]!.errors[0]!.message).toContain("Nope");
    const none = await ex.run({ "1": { class_type: "Const", inputs: { value: 1 } } });
    expect(none.validation.error?.type).toBe("prompt_no_outputs");
    const cycle = await ex.run({
      "1": { class_type: "Add", inputs: { a: ["2", 0], b: ["2", 0] } },
      "2": { class_type: "Add", inputs: { a: ["1", 0], b: ["1", 0] } },
      "3": { class_type: "Show", inputs: { value: ["1", 0] } },
    });
    expect(cycle.status).toBe("invalid");
    expect(cycle.validation.node_errors["1"]!.errors.map((e) => e.type)).toContain("dependency_cycle");
  });

  it("runs independent branches in different processes at the same time", async () => {
    const b = new Backend();
    const ex = new PromptExecutor(b);
    const r = await ex.run({
      "1": { class_type: "Const", inputs: { value: 1 } },
      "2": { class_type: "Slow", inputs: { value: ["1", 0] } },
      "3": { class_type: "SlowB", inputs: { value: ["1", 0] } },
      "4": { class_type: "Show", inputs: { value: ["2", 0] } },
      "5": { class_type: "ShowB", inputs: { value: ["3", 0] } },
    });
    expect(r.status).toBe("success");
    expect(b.maxActive).toBe(2);
    expect(r.outputs).toEqual({ "4": { value: [2] }, "5": { value: [2] } });
  });

  it("turns a failing node into execution_error with its traceback and keeps going afterwards", async () => {
    const b = new Backend();
    const ex = new PromptExecutor(b);
    const events: ExecutionEvent[] = [];
    const r = await ex.run(
      {
        "1": { class_type: "Const", inputs: { value: 1 } },
        "2": { class_type: "Fail", inputs: { value: ["1", 0] } },
        "3": { class_type: "Show", inputs: { value: ["2", 0] } },
      },
      { onEvent: (e) => events.push(e) },
    );
    expect(r.status).toBe("error");
    const err = events.find((e) => e.type === "execution_error")!.data;
    expect(err).toMatchObject({ node_id: "2", node_type: "Fail", exception_type: "ValueError", exception_message: "boom", executed: ["1"] });
    expect((err.traceback as string[])[0]).toContain('File "x.py", line 1');
    // ComfyUI's shapes: the failing node's inputs, and the ids of the outputs cached before the run.
    expect(err.current_inputs).toEqual({ value: [1] });
    expect(err.current_outputs).toEqual([]);
    expect(r.nodes.find((n) => n.id === "3")!.status).toBe("skipped");
    const ok = await ex.run(chain);
    expect(ok.status).toBe("success");
  });

  it("validates and runs a 10,000-node chain and 10,000 independent outputs (no recursion)", async () => {
    for (const shape of ["chain", "wide"] as const) {
      const b = new Backend();
      const ex = new PromptExecutor(b);
      const p: Prompt = { "0": { class_type: "Const", inputs: { value: 0 } } };
      const n = 10_000;
      for (let i = 1; i <= n; i++) p[String(i)] = { class_type: shape === "chain" ? "Inc" : "Show", inputs: { value: [shape === "chain" ? String(i - 1) : "0", 0] } };
      if (shape === "chain") p["end"] = { class_type: "Show", inputs: { value: [String(n), 0] } };
      const r = await ex.run(p);
      expect(r.status).toBe("success");
      if (shape === "chain") expect(r.outputs["end"]).toEqual({ value: [n] });
      else expect(Object.keys(r.outputs)).toHaveLength(n);
    }
    // A cycle deep down a long chain is still found and reported.
    const ex = new PromptExecutor(new Backend());
    const p: Prompt = { "0": { class_type: "Inc", inputs: { value: ["5000", 0] } } };
    for (let i = 1; i <= 5000; i++) p[String(i)] = { class_type: "Inc", inputs: { value: [String(i - 1), 0] } };
    p["end"] = { class_type: "Show", inputs: { value: ["5000", 0] } };
    const r = await ex.run(p);
    expect(r.status).toBe("invalid");
    expect(r.validation.node_errors["0"]!.errors.map((e) => e.type)).toEqual(["dependency_cycle"]);
    expect(r.validation.node_errors["0"]!.dependent_outputs).toEqual(["end"]);
  });

  it("gives the prompt and extra_pnginfo only to nodes that declare them", async () => {
    const b = new Backend();
    const ex = new PromptExecutor(b);
    await ex.run({ "1": { class_type: "Const", inputs: { value: 1 } }, "2": { class_type: "Seen", inputs: { value: ["1", 0] } }, "3": { class_type: "Show", inputs: { value: ["1", 0] } } }, { extraPngInfo: { w: 1 }, promptId: "p" });
    expect(b.hidden.get("1")).toEqual({ unique_id: "1", prompt_id: "p" });
    expect(b.hidden.get("3")).toEqual({ unique_id: "3", prompt_id: "p" });
    const seen = b.hidden.get("2") as { prompt: Prompt; extra_pnginfo: unknown };
    expect(Object.keys(seen.prompt)).toEqual(["1", "2", "3"]);
    expect(seen.extra_pnginfo).toEqual({ w: 1 });
  });

  it("queues prompts given while one runs, and runs them in call order", async () => {
    const b = new Backend();
    const ex = new PromptExecutor(b);
    const slow = (v: number): Prompt => ({ "1": { class_type: "Const", inputs: { value: v } }, "2": { class_type: "Slow", inputs: { value: ["1", 0] } }, "3": { class_type: "ShowB", inputs: { value: ["2", 0] } } });
    const order: number[] = [];
    const runs = [1, 2, 3].map((v) => ex.run(slow(v)).then((r) => (order.push(v), r)));
    expect(ex.queued).toBe(3);
    const results = await Promise.all(runs);
    expect(results.map((r) => r.outputs["3"])).toEqual([{ value: [2] }, { value: [4] }, { value: [6] }]);
    expect(order).toEqual([1, 2, 3]);
    expect(b.maxActive).toBe(1);
  });

  it("rejects NaN and infinity with ComfyUI's wording", async () => {
    const ex = new PromptExecutor(new Backend());
    const r = await ex.run({ "1": { class_type: "Const", inputs: { value: Number.NaN } }, "2": { class_type: "Show", inputs: { value: ["1", 0] } }, "3": { class_type: "Fl", inputs: { x: -Infinity } } });
    expect(r.status).toBe("invalid");
    const [e1] = r.validation.node_errors["1"]!.errors;
    expect(e1).toMatchObject({ type: "invalid_input_type", message: "Failed to convert an input value to a INT value", details: "value, nan, cannot convert float NaN to integer" });
    const [e3] = r.validation.node_errors["3"]!.errors;
    expect(e3!.message).toBe("Failed to convert an input value to a FLOAT value");
    expect(e3!.details).toBe("x, -inf, -inf is not a finite number: NaN and infinity are not allowed");
    const inf = await ex.run({ "1": { class_type: "Const", inputs: { value: Infinity } }, "2": { class_type: "Show", inputs: { value: ["1", 0] } } });
    expect(inf.validation.node_errors["1"]!.errors[0]!.details).toBe("value, inf, cannot convert float infinity to integer");
  });

  it("executors sharing a gate run nodes of different processes at once, and take turns in one process", async () => {
    const b = new Backend();
    const gate = new ProcessGate();
    const [x, y] = [new PromptExecutor(b, { gate }), new PromptExecutor(b, { gate })];
    // Slow runs in p2, SlowB in p3: the two prompts overlap.
    await Promise.all([x.run({ "1": { class_type: "Slow", inputs: { value: 1 } }, "2": { class_type: "ShowB", inputs: { value: ["1", 0] } } }, { promptId: "a" }), y.run({ "1": { class_type: "SlowB", inputs: { value: 2 } }, "2": { class_type: "Show", inputs: { value: ["1", 0] } } }, { promptId: "b" })]);
    expect(b.maxActive).toBe(2);
    // Both in p2: one node at a time there; each prompt gets its own output; executing comes with the turn.
    const c = new Backend();
    const order: string[] = [];
    const [u, v] = [new PromptExecutor(c, { gate }), new PromptExecutor(c, { gate })];
    const on = (id: string) => ({
      onEvent: (e: ExecutionEvent) => void (e.type === "executing" && e.data.node !== null && order.push(`${id}${String(e.data.node)}:executing`)),
      onNode: (r: { id: string }) => void order.push(`${id}${r.id}:done`),
    });
    const slowShow = (value: number): Prompt => ({ "1": { class_type: "Slow", inputs: { value } }, "2": { class_type: "Show", inputs: { value: ["1", 0] } } });
    const [ra, rb] = await Promise.all([u.run(slowShow(3), { promptId: "a", ...on("a") }), v.run(slowShow(4), { promptId: "b", ...on("b") })]);
    expect([ra.outputs, rb.outputs]).toEqual([{ "2": { value: [6] } }, { "2": { value: [8] } }]);
    // b's Slow is announced when it gets p2, after a's Slow left it.
    expect(order.indexOf("b1:executing")).toBeGreaterThan(order.indexOf("a1:done"));
  });

  it("interrupts its own prompt only; a node that waited for its turn does not start", async () => {
    const interrupted: Array<string | undefined> = [];
    const b = Object.assign(new Backend(), { interrupt: (id?: string) => void interrupted.push(id) });
    const gate = new ProcessGate();
    const [x, y] = [new PromptExecutor(b, { gate }), new PromptExecutor(b, { gate })];
    const one = (value: number): Prompt => ({ "1": { class_type: "Slow", inputs: { value } }, "2": { class_type: "ShowB", inputs: { value: ["1", 0] } } });
    const pa = x.run(one(1), { promptId: "a" });
    await new Promise((r) => setTimeout(r, 20));
    const pb = y.run(one(2), { promptId: "b" });
    await new Promise((r) => setTimeout(r, 20));
    expect([x.runningPrompt, y.runningPrompt]).toEqual(["a", "b"]);
    y.interrupt(); // b's node waits for p2, which a's node holds
    const [ra, rb] = await Promise.all([pa, pb]);
    expect(interrupted).toEqual(["b"]);
    expect(ra.status).toBe("success");
    expect(rb.status).toBe("interrupted");
    expect(rb.nodes.find((n) => n.id === "1")!.status).toBe("skipped");
    expect(b.calls).toEqual(["1", "2"]);
  });

  it("drops its cache after the run that uses it, never under it", async () => {
    const released: unknown[] = [];
    const b = Object.assign(new Backend(), { release: (v: unknown) => void released.push(v), retain: () => {} });
    const ex = new PromptExecutor(b);
    const p = ex.run({ "1": { class_type: "Slow", inputs: { value: 5 } }, "2": { class_type: "ShowB", inputs: { value: ["1", 0] } } });
    await new Promise((r) => setTimeout(r, 20));
    ex.clearCache();
    expect(released).toEqual([]);
    expect((await p).outputs).toEqual({ "2": { value: [10] } });
    expect(released.length).toBe(2);
    expect(ex.cachedNodes()).toEqual([]);
  });
});
