/**
 * The prompt executor: runs a validated API-format prompt in dependency order starting from
 * its output nodes, runs independent branches owned by different processes at the same
 * time, caches outputs by input signature across runs, and emits ComfyUI's events. Several
 * executors (each with its own cache) run prompts at the same time over the same processes
 * when they share a {@link ProcessGate}: a process then runs one node at a time across them.
 * @module
 */
import { createHash } from "node:crypto";
import { PyisolateError } from "../errors.ts";
import { isLink, validatePrompt } from "./validate.ts";
import type { ExecutionEvent, HiddenValues, NodeBackend, NodeRunResult, Prompt, ValidationResult } from "./types.ts";
import { MinHeap, formatValue, hiddenKinds, splitTraceback, stableJson, topoOrder } from "./graph.ts";
import type { ProcessGate } from "./process_gate.ts";

/** Options of one {@link PromptExecutor.run}. */
export interface RunOptions {
  /** The prompt id reported in events. @default a random UUID */
  promptId?: string;
  /** Passed to nodes as the `EXTRA_PNGINFO` hidden input. */
  extraPngInfo?: unknown;
  /** Receives every event, in ComfyUI's `{type, data}` shape. */
  onEvent?: (event: ExecutionEvent) => void;
  /** Called as each node finishes (executed, failed or interrupted), for live displays. */
  onNode?: (record: NodeRecord) => void;
  /** Called when the run begins (after the runs queued before it on this executor), with its prompt id. */
  onBegin?: (promptId: string) => void;
}

/** Options of a {@link PromptExecutor}. */
export interface ExecutorOptions {
  /**
   * Turns per process shared with other executors that run prompts at the same time: a node
   * waits for its process's turn before it starts (and before its `executing` event), so
   * that a process runs one node at a time across all of them. @default none (this
   * executor's runs alone use the processes)
   */
  gate?: ProcessGate;
}

/** What happened to one node in a run. */
export interface NodeRecord {
  id: string;
  classType: string;
  status: "executed" | "cached" | "failed" | "interrupted" | "skipped";
  /** Milliseconds the node took (0 when cached). */
  ms: number;
  pack?: string;
  isolated?: boolean;
}

/** The outcome of a run. */
export interface RunResult {
  promptId: string;
  status: "success" | "error" | "interrupted" | "invalid";
  /** Validation result (always present; `ok` false when status is "invalid"). */
  validation: ValidationResult;
  /** `ui` output of each node that produced one. */
  outputs: Record<string, Record<string, unknown>>;
  /** Every node that was needed, in the order they finished. */
  nodes: NodeRecord[];
  /** The `execution_error` / `execution_interrupted` data, when the run did not succeed. */
  error?: Record<string, unknown>;
}

interface CacheEntry {
  signature: string;
  /** The node as the prompt gave it (class and inputs), for {@link PromptExecutor.cacheScore}. */
  node: Prompt[string];
  outputs: unknown[][];
  ui: Record<string, unknown> | null;
}

function isInterrupt(e: unknown): boolean {
  const t = (e as { pythonType?: string })?.pythonType ?? "";
  return t.endsWith("InterruptProcessingException") || (e instanceof PyisolateError && e.code === "INTERRUPTED");
}

/**
 * Runs prompts against a {@link NodeBackend}, keeping an output cache between runs.
 *
 * @example
 * ```ts
 * const executor = new PromptExecutor(backend);
 * const result = await executor.run(prompt, { onEvent: (e) => console.log(e.type) });
 * ```
 */
export class PromptExecutor {
  #cache = new Map<string, CacheEntry>();
  #interrupted = false;
  #running = false;
  #promptId: string | null = null;
  /** A `clearCache` asked for while a run used the cache: done when it ends. */
  #clearAfterRun = false;
  readonly #gate: ProcessGate | undefined;
  /** Settles when the last queued run has finished: runs go one after another, in call order. */
  #tail: Promise<void> = Promise.resolve();
  #queued = 0;

  readonly backend: NodeBackend;

  constructor(backend: NodeBackend, opts: ExecutorOptions = {}) {
    this.backend = backend;
    this.#gate = opts.gate;
  }

  /** The id of the prompt running now, or null. */
  get runningPrompt(): string | null {
    return this.#running ? this.#promptId : null;
  }

  /** Asks the running prompt to stop: no new node starts, and its running nodes are interrupted. */
  interrupt(): void {
    if (!this.#running) return;
    this.#interrupted = true;
    this.backend.interrupt?.(this.#promptId ?? undefined);
  }

  /**
   * Drops every cached output (and releases what they hold). While a prompt runs, its
   * inputs come from the cache: the cache is dropped when that run ends, never under it.
   */
  clearCache(): void {
    if (this.#running) {
      this.#clearAfterRun = true;
      return;
    }
    for (const e of this.#cache.values()) this.backend.release?.(e.outputs);
    this.#cache.clear();
  }

  /**
   * How many of the prompt's nodes the cache holds outputs of, computed from the same node
   * (same id, class and inputs): a cheap guess (no `IS_CHANGED`, links not followed) of how
   * much a run of it here would reuse.
   */
  cacheScore(prompt: Prompt): number {
    let n = 0;
    for (const [id, node] of Object.entries(prompt)) {
      const e = this.#cache.get(id);
      if (e && (e.node === node || nodeText(e.node) === nodeText(node))) n++;
    }
    return n;
  }

  /** Node ids whose outputs are cached. */
  cachedNodes(): string[] {
    return [...this.#cache.keys()];
  }

  /** Prompts waiting for the running one to finish. */
  get queued(): number {
    return this.#queued;
  }

  /**
   * Validates and runs a prompt. A prompt given while another runs waits for it: prompts run
   * one at a time, in the order `run` was called. Resolves with the outcome; throws only for
   * misuse. {@link PromptExecutor.interrupt} stops the running prompt, not the queued ones.
   */
  async run(prompt: Prompt, opts: RunOptions = {}): Promise<RunResult> {
    const own = structuredClone(prompt);
    const before = this.#tail;
    let done!: () => void;
    this.#tail = new Promise<void>((r) => (done = r));
    this.#queued++;
    try {
      await before;
    } finally {
      this.#queued--;
    }
    const promptId = opts.promptId ?? crypto.randomUUID();
    this.#running = true;
    this.#interrupted = false;
    this.#promptId = promptId;
    try {
      this.backend.beginPrompt?.(promptId);
      opts.onBegin?.(promptId);
      return await this.#run(own, promptId, opts);
    } finally {
      this.backend.endPrompt?.(promptId);
      this.#running = false;
      this.#promptId = null;
      if (this.#clearAfterRun) {
        this.#clearAfterRun = false;
        this.clearCache();
      }
      done();
    }
  }

  async #run(prompt: Prompt, promptId: string, opts: RunOptions): Promise<RunResult> {
    const emit = (type: string, data: Record<string, unknown>) => opts.onEvent?.({ type, data });
    const validation = await validatePrompt(prompt, this.backend);
    if (!validation.ok) {
      return { promptId, status: "invalid", validation, outputs: {}, nodes: [] };
    }
    const backend = this.backend;
    emit("execution_start", { prompt_id: promptId, timestamp: Date.now() });

    // Every link once: node → the nodes it reads from. Everything below is O(nodes + links).
    const depsOf = new Map<string, string[]>();
    const linksOf = (id: string): string[] => {
      let d = depsOf.get(id);
      if (!d) {
        d = [];
        for (const v of Object.values(prompt[id]!.inputs)) if (isLink(v)) d.push(String(v[0]));
        depsOf.set(id, d);
      }
      return d;
    };

    // Everything the outputs need.
    const needed = new Set<string>();
    const todo = [...validation.outputs];
    while (todo.length > 0) {
      const id = todo.pop()!;
      if (needed.has(id)) continue;
      needed.add(id);
      for (const d of linksOf(id)) if (!needed.has(d)) todo.push(d);
    }

    // Drop cached outputs of nodes no longer in the prompt.
    for (const [id, e] of this.#cache) {
      if (!(id in prompt)) {
        backend.release?.(e.outputs);
        this.#cache.delete(id);
      }
    }

    // Hidden inputs go only to the nodes that declare them: the whole prompt is no small thing.
    const hiddenFor = (id: string): HiddenValues => {
      const kinds = hiddenKinds(backend.info(prompt[id]!.class_type));
      const h: HiddenValues = { unique_id: id, prompt_id: promptId };
      if (kinds.has("PROMPT") || kinds.has("DYNPROMPT")) h.prompt = prompt;
      if (kinds.has("EXTRA_PNGINFO")) h.extra_pnginfo = opts.extraPngInfo;
      return h;
    };

    // Input signatures, from the leaves up; a node whose IS_CHANGED answers NaN is never cached.
    const signatures = new Map<string, string | null>();
    const order = topoOrder(needed, (id) => linksOf(id).filter((d) => needed.has(d)));
    for (const id of order) {
      const node = prompt[id]!;
      const parts: unknown[] = [node.class_type];
      let uncachable = false;
      const inputs: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node.inputs)) {
        if (isLink(v)) {
          const s = signatures.get(String(v[0]));
          if (s === null) uncachable = true;
          inputs[k] = ["link", s, v[1]];
        } else inputs[k] = v;
      }
      parts.push(inputs);
      if (backend.hasIsChanged(node.class_type)) {
        // IS_CHANGED sees widget values only (links are not resolved before execution).
        const constants: Record<string, unknown[]> = {};
        for (const [k, v] of Object.entries(node.inputs)) if (!isLink(v)) constants[k] = [v];
        let changed: unknown;
        try {
          changed = await backend.isChanged(node.class_type, constants, hiddenFor(id), id);
        } catch {
          changed = Number.NaN;
        }
        if (typeof changed === "number" && Number.isNaN(changed)) uncachable = true;
        parts.push(["is_changed", changed]);
      }
      signatures.set(id, uncachable ? null : createHash("sha256").update(stableJson(parts)).digest("hex"));
    }

    const cached: string[] = [];
    const toRun = new Set<string>();
    for (const id of order) {
      const sig = signatures.get(id);
      const entry = this.#cache.get(id);
      if (sig !== null && entry && entry.signature === sig && (backend.usable?.(entry.outputs) ?? true)) cached.push(id);
      else toRun.add(id);
    }
    emit("execution_cached", { nodes: cached, prompt_id: promptId, timestamp: Date.now() });
    // The outputs cached before this run, by node id (ComfyUI's `current_outputs`).
    const cachedBefore = [...this.#cache.keys()];

    const records: NodeRecord[] = cached.map((id) => {
      const owner = backend.owner(prompt[id]!.class_type);
      return { id, classType: prompt[id]!.class_type, status: "cached" as const, ms: 0, pack: owner?.pack, isolated: owner?.isolated };
    });
    const recorded = new Set<string>(cached);
    const finish = (r: NodeRecord) => {
      records.push(r);
      recorded.add(r.id);
      opts.onNode?.(r);
    };
    const uiOutputs: Record<string, Record<string, unknown>> = {};
    const outputNodes = new Set(validation.outputs);
    for (const id of cached) {
      const ui = this.#cache.get(id)!.ui;
      const shown = ui && Object.keys(ui).length > 0 ? ui : null;
      if (shown) uiOutputs[id] = shown;
      // As ComfyUI does, a cached output node shows its cached output again.
      if (outputNodes.has(id)) emit("executed", { node: id, display_node: id, output: shown, prompt_id: promptId });
    }

    // Schedule: a node starts when its inputs are ready and its process is free. Each node
    // counts the inputs it still waits for; a ready node waits in its process's queue, in
    // dependency order.
    const done = new Set<string>(cached);
    const busy = new Set<string>();
    const running = new Map<string, Promise<void>>();
    const executed: string[] = [...cached];
    let failure: { data: Record<string, unknown>; interrupted: boolean } | undefined;

    const rank = new Map<string, number>();
    order.forEach((id, i) => rank.set(id, i));
    const processOf = (id: string) => backend.owner(prompt[id]!.class_type)?.process ?? "?";
    const waiting = new Map<string, number>();
    const dependents = new Map<string, string[]>();
    const queues = new Map<string, MinHeap>();
    const enqueue = (id: string) => {
      const proc = processOf(id);
      let q = queues.get(proc);
      if (!q) queues.set(proc, (q = new MinHeap()));
      q.push(rank.get(id)!, id);
    };
    for (const id of toRun) {
      let n = 0;
      for (const d of new Set(linksOf(id))) {
        if (done.has(d)) continue;
        n++;
        let list = dependents.get(d);
        if (!list) dependents.set(d, (list = []));
        list.push(id);
      }
      waiting.set(id, n);
      if (n === 0) enqueue(id);
    }
    const markDone = (id: string) => {
      done.add(id);
      for (const dep of dependents.get(id) ?? []) {
        const n = waiting.get(dep)! - 1;
        waiting.set(dep, n);
        if (n === 0) enqueue(dep);
      }
    };

    const gate = this.#gate;
    const start = (id: string) => {
      const node = prompt[id]!;
      const owner = backend.owner(node.class_type);
      const proc = owner?.process ?? "?";
      busy.add(proc);
      const inputs: Record<string, unknown[]> = {};
      let t0 = 0;
      const begin = (): Promise<NodeRunResult> => {
        for (const [k, v] of Object.entries(node.inputs)) {
          if (isLink(v)) inputs[k] = this.#cache.get(String(v[0]))!.outputs[v[1]] ?? [];
          else inputs[k] = [v];
        }
        t0 = performance.now();
        emit("executing", { node: id, display_node: id, prompt_id: promptId });
        return backend.execute(node.class_type, inputs, hiddenFor(id), id);
      };
      // The process's turn among the runs sharing the gate: at once when no other run's node
      // is there, else after the nodes that asked before (a node stopped or failed while it
      // waited does not start).
      let release: (() => void) | null = gate ? gate.tryAcquire(proc) : null;
      const started: Promise<NodeRunResult | typeof NOT_STARTED> =
        !gate || release
          ? begin()
          : gate.acquire(proc).then<NodeRunResult | typeof NOT_STARTED>((r) => {
              release = r;
              return !failure && !this.#interrupted ? begin() : NOT_STARTED;
            });
      const p = started
        .then((r) => {
          if (r === NOT_STARTED) return;
          const old = this.#cache.get(id);
          if (old) backend.release?.(old.outputs);
          backend.retain?.(r.outputs);
          const sig = signatures.get(id);
          this.#cache.set(id, { signature: sig ?? `uncachable:${crypto.randomUUID()}`, node, outputs: r.outputs, ui: r.ui });
          markDone(id);
          executed.push(id);
          if (r.ui && Object.keys(r.ui).length > 0) {
            uiOutputs[id] = r.ui;
            emit("executed", { node: id, display_node: id, output: r.ui, prompt_id: promptId });
          }
          finish({ id, classType: node.class_type, status: "executed", ms: performance.now() - t0, pack: owner?.pack, isolated: owner?.isolated });
        })
        .catch((e: unknown) => {
          const interrupted = this.#interrupted || isInterrupt(e);
          finish({ id, classType: node.class_type, status: interrupted ? "interrupted" : "failed", ms: performance.now() - t0, pack: owner?.pack, isolated: owner?.isolated });
          // A node that failed has no valid output any more.
          const old = this.#cache.get(id);
          if (old) {
            backend.release?.(old.outputs);
            this.#cache.delete(id);
          }
          if (failure) return;
          if (interrupted) {
            failure = { interrupted: true, data: { prompt_id: promptId, node_id: id, node_type: node.class_type, executed: [...executed], timestamp: Date.now() } };
            return;
          }
          const ex = e as { pythonType?: string; pythonMessage?: string; traceback?: string; message?: string };
          const currentInputs: Record<string, unknown[]> = {};
          for (const [k, v] of Object.entries(inputs)) currentInputs[k] = v.map(formatValue);
          failure = {
            interrupted: false,
            data: {
              prompt_id: promptId,
              node_id: id,
              node_type: node.class_type,
              executed: [...executed],
              exception_message: ex.pythonMessage ?? ex.message ?? String(e),
              exception_type: ex.pythonType ?? (e instanceof PyisolateError ? `pyisolate.${e.code}` : "Error"),
              traceback: ex.traceback ? splitTraceback(ex.traceback) : [],
              current_inputs: currentInputs,
              current_outputs: cachedBefore,
              timestamp: Date.now(),
            },
          };
        })
        .finally(() => {
          (release as (() => void) | null)?.();
          busy.delete(proc);
          running.delete(id);
        });
      running.set(id, p);
    };

    for (;;) {
      if (!failure && !this.#interrupted) {
        // The first ready node of every free process, in dependency order.
        const heads: string[] = [];
        for (const [proc, q] of queues) if (!busy.has(proc) && q.size > 0) heads.push(q.peek()!);
        heads.sort((a, b) => rank.get(a)! - rank.get(b)!);
        for (const id of heads) {
          queues.get(processOf(id))!.pop();
          start(id);
        }
      }
      if (running.size === 0) break;
      await Promise.race(running.values());
    }

    if (!failure && this.#interrupted) {
      failure = { interrupted: true, data: { prompt_id: promptId, node_id: null, node_type: null, executed: [...executed], timestamp: Date.now() } };
    }
    for (const id of toRun) {
      if (!done.has(id) && !recorded.has(id)) {
        const owner = backend.owner(prompt[id]!.class_type);
        records.push({ id, classType: prompt[id]!.class_type, status: "skipped", ms: 0, pack: owner?.pack, isolated: owner?.isolated });
      }
    }
    // ComfyUI's order: the outcome, then `executing` with node null.
    if (failure) {
      emit(failure.interrupted ? "execution_interrupted" : "execution_error", failure.data);
      emit("executing", { node: null, prompt_id: promptId });
      return { promptId, status: failure.interrupted ? "interrupted" : "error", validation, outputs: uiOutputs, nodes: records, error: failure.data };
    }
    emit("execution_success", { prompt_id: promptId, timestamp: Date.now() });
    emit("executing", { node: null, prompt_id: promptId });
    return { promptId, status: "success", validation, outputs: uiOutputs, nodes: records };
  }
}

/** What {@link PromptExecutor} start gives when a node waited for its process and then did not start. */
const NOT_STARTED = Symbol("not started");

/** A prompt node's class and inputs, as text (what {@link PromptExecutor.cacheScore} compares). */
function nodeText(node: Prompt[string]): string {
  return stableJson([node.class_type, node.inputs]);
}
