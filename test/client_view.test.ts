// ClientView: a run's events in the order a ComfyUI client sees them — one node at a time,
// progress_state around each, the events of nodes running beside it held until its turn.
import { describe, expect, it } from "vitest";
import { ClientView } from "../src/executor/client_view.ts";
import type { ExecutionEvent } from "../src/executor/types.ts";

function view() {
  const out: ExecutionEvent[] = [];
  const v = new ClientView((e) => out.push(e));
  const short = () =>
    out.map((e) => {
      const d = e.data;
      if (e.type === "progress_state") return `state(${Object.entries(d.nodes as Record<string, { state: string; value: number }>).map(([id, s]) => `${id}:${s.state[0]}${s.value}`).join(",")})`;
      if (e.type === "executing" || e.type === "executed") return `${e.type}(${String(d.node)})`;
      if (e.type === "progress") return `progress(${String(d.node)}:${String(d.value)})`;
      if (typeof e.type === "number") return `bin${e.type}(${e.sid ?? "all"})`;
      return String(e.type);
    });
  return { v, out, short };
}

const exec = (node: string | null) => ({ type: "executing", data: { node, display_node: node, prompt_id: "p" } });

describe("ClientView", () => {
  it("shows parallel nodes one at a time, in start order, each with what it sent", () => {
    const { v, short } = view();
    v.executor({ type: "execution_start", data: { prompt_id: "p" } });
    v.executor({ type: "execution_cached", data: { nodes: [] } });
    v.executor(exec("1"));
    v.executor(exec("2")); // runs beside 1
    v.node({ type: "progress", data: { value: 1, max: 2, node: "2" }, sid: "c" });
    v.node({ type: 3, data: new Uint8Array([1]), sid: "c", node: "2" });
    v.node({ type: "progress", data: { value: 1, max: 2, node: "1" }, sid: "c" });
    v.node({ type: "my.event", data: {}, sid: null }); // no node: shown at once
    v.finished("2", true); // 2 finishes first, but the client still sees 1 running
    v.executor({ type: "executed", data: { node: "1", output: { text: ["a"] } } });
    v.finished("1", true);
    v.executor({ type: "execution_success", data: { prompt_id: "p" } });
    v.executor(exec(null));
    expect(short()).toEqual([
      "execution_start",
      "execution_cached",
      "state(1:r0)",
      "executing(1)",
      "state(1:r1)",
      "progress(1:1)",
      "my.event",
      "executed(1)",
      "state(1:f2)",
      "state(1:f2,2:r0)",
      "executing(2)",
      "state(1:f2,2:r1)",
      "progress(2:1)",
      "bin3(c)",
      "state(1:f2,2:f2)",
      "execution_success",
      "executing(null)",
    ]);
  });

  it("shows a cached output node's output and marks it finished; a failed node is not marked finished", () => {
    const { v, short } = view();
    v.executor({ type: "execution_start", data: { prompt_id: "p" } });
    v.executor({ type: "execution_cached", data: { nodes: ["1"] } });
    v.executor({ type: "executed", data: { node: "1", output: null } });
    v.executor(exec("2"));
    v.finished("2", false);
    v.executor({ type: "execution_error", data: { node_id: "2" } });
    v.executor(exec(null));
    expect(short()).toEqual(["execution_start", "execution_cached", "executed(1)", "state(1:f1)", "state(1:f1,2:r0)", "executing(2)", "execution_error", "executing(null)"]);
  });
});
