/**
 * `ClientView`: a run's events as a ComfyUI client expects them. ComfyUI executes one node at
 * a time, so its clients see, per node, `progress_state` (running) → `executing` →
 * `progress`… → `executed` → `progress_state` (finished), and never two nodes at once. The
 * executor here runs independent branches in different processes at the same time; the view
 * keeps that parallelism and shows it one node at a time: the first node that started is
 * announced, the events of nodes that run beside it (their progress, previews, texts, what
 * they `send_sync`) wait, in order, until the announced node finishes, and then each
 * waiting node is announced and its events replayed. The sequence a client sees is the one
 * ComfyUI would have sent had the nodes run one after the other, in the order they started.
 *
 * It also writes ComfyUI's `progress_state` messages (every node the client has seen start,
 * with its state and last progress) and puts the `executing` node `null` after the
 * run's last event.
 * @module
 */
import type { ExecutionEvent } from "./types.ts";

/** An event a node sent while it ran (the host's event bus: progress, `send_sync`, binary events). */
export interface NodeEvent {
  type: string | number;
  data: unknown;
  /** The client it is for; `null` for every client. */
  sid: string | null;
  /** The prompt node that sent it, when known (progress reports name theirs in `data.node`). */
  node?: string | null;
}

interface Shown {
  state: "running" | "finished";
  value: number;
  max: number;
}

/**
 * Orders a run's events for a ComfyUI client (see the module doc).
 *
 * @example
 * ```ts
 * const view = new ClientView((e) => ws.send(JSON.stringify(e)));
 * bus.on((e) => view.node(e));
 * await executor.run(prompt, { onEvent: view.executor, onNode: (r) => view.finished(r.id, r.status === "executed") });
 * ```
 */
export class ClientView {
  readonly #emit: (event: ExecutionEvent) => void;
  #promptId: string | null = null;
  #current: string | null = null;
  /** Nodes that started and wait to be announced, in start order. */
  #waiting: string[] = [];
  /** What each waiting node sent, to replay when it is announced. */
  #held = new Map<string, Array<() => void>>();
  /** Waiting nodes that already finished, with whether they succeeded. */
  #ended = new Map<string, boolean>();
  #shown = new Map<string, Shown>();

  constructor(emit: (event: ExecutionEvent) => void) {
    this.#emit = emit;
  }

  /** The node the client sees running, or null. */
  get current(): string | null {
    return this.#current;
  }

  /** Takes an event of the executor. */
  readonly executor = (e: ExecutionEvent): void => {
    const d = e.data;
    switch (e.type) {
      case "execution_start":
        this.#promptId = typeof d.prompt_id === "string" ? d.prompt_id : null;
        this.#current = null;
        this.#waiting = [];
        this.#held.clear();
        this.#ended.clear();
        this.#shown.clear();
        return this.#emit(e);
      case "executing": {
        const node = d.node;
        if (typeof node !== "string") {
          this.#flush();
          return this.#emit(e);
        }
        if (this.#current === null) return this.#announce(node, e);
        this.#waiting.push(node);
        this.#held.set(node, [() => this.#announce(node, e)]);
        return;
      }
      case "executed": {
        const node = String(d.node);
        if (node === this.#current || this.#held.has(node)) return this.#route(node, () => this.#emit(e));
        // A cached output node: ComfyUI shows its cached output and marks it finished.
        this.#emit(e);
        this.#shown.set(node, { state: "finished", value: 1, max: 1 });
        return this.#progressState();
      }
      case "execution_success":
      case "execution_error":
      case "execution_interrupted":
        this.#flush();
        return this.#emit(e);
      default:
        return this.#emit(e);
    }
  };

  /** Takes an event a node sent (progress, `send_sync`, a binary event). */
  node(e: NodeEvent): void {
    const data = e.data instanceof Uint8Array ? { bytes: e.data } : ((e.data ?? {}) as Record<string, unknown>);
    const event: ExecutionEvent = { type: e.type, data, sid: e.sid };
    if (e.type === "progress") {
      const node = typeof data.node === "string" ? data.node : null;
      return this.#route(node, () => {
        if (node !== null) {
          this.#shown.set(node, { state: "running", value: Number(data.value ?? 0), max: Number(data.max ?? 1) });
          this.#progressState();
        }
        this.#emit(event);
      });
    }
    this.#route(e.node ?? null, () => this.#emit(event));
  }

  /** A node finished (`ok`: it succeeded; a failed or interrupted node is not marked finished, as in ComfyUI). */
  finished(node: string, ok: boolean): void {
    if (node !== this.#current) {
      if (this.#held.has(node)) this.#ended.set(node, ok);
      return;
    }
    if (ok) {
      const s = this.#shown.get(node);
      this.#shown.set(node, { state: "finished", value: s?.max ?? 1, max: s?.max ?? 1 });
      this.#progressState();
    }
    this.#current = null;
    this.#next();
  }

  #announce(node: string, executing: ExecutionEvent): void {
    this.#current = node;
    this.#shown.set(node, { state: "running", value: 0, max: 1 });
    this.#progressState();
    this.#emit(executing);
  }

  /** Shows an event of `node` now if the client sees it running (or it is no node), else keeps it for later. */
  #route(node: string | null, show: () => void): void {
    const held = node === null ? undefined : this.#held.get(node);
    if (held && node !== this.#current) held.push(show);
    else show();
  }

  /** Announces the waiting nodes in order, each with what it sent, until one is still running. */
  #next(): void {
    while (this.#current === null && this.#waiting.length > 0) {
      const node = this.#waiting.shift()!;
      const held = this.#held.get(node) ?? [];
      this.#held.delete(node);
      for (const show of held) show();
      const ended = this.#ended.get(node);
      if (ended !== undefined) {
        this.#ended.delete(node);
        this.finished(node, ended);
      }
    }
  }

  /** Shows everything still held (the run is ending). */
  #flush(): void {
    if (this.#current !== null) this.#current = null;
    this.#next();
    this.#current = null;
  }

  #progressState(): void {
    const nodes: Record<string, unknown> = {};
    for (const [id, s] of this.#shown) {
      nodes[id] = {
        value: s.value,
        max: s.max,
        state: s.state,
        node_id: id,
        prompt_id: this.#promptId,
        display_node_id: id,
        parent_node_id: null,
        real_node_id: id,
      };
    }
    this.#emit({ type: "progress_state", data: { prompt_id: this.#promptId, nodes } });
  }
}
