/**
 * The prompt executor: runs a validated API-format prompt in dependency order starting from
 * its output nodes, runs independent branches owned by different processes at the same
 * time, caches outputs by input signature across runs, and emits ComfyUI's events.
 * @module
 */
import { createHash } from "node:crypto";
import { PyisolateError } from "../errors.ts";
import { PyFloat } from "../protocol/py_types.ts";
import { isLink, validatePrompt } from "./validate.ts";
import type { ExecutionEvent, HiddenValues, NodeBackend, Prompt, ValidationResult } from "./types.ts";

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
  outputs: unknown[][];
  ui: Record<string, unknown> | null;
}

function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => {
    if (typeof x === "bigint") return `${x}n`;
    if (typeof x === "number" && !Number.isFinite(x)) return `num:${x}`;
    if (x && typeof x === "object" && !Array.isArray(x)) {
      return Object.fromEntries(Object.keys(x).sort().map((k) => [k, (x as Record<string, unknown>)[k]]));
    }
    return x;
  });
}

/** A value as ComfyUI's `format_value` shows it in `current_inputs`: primitives as they are, anything else as text. */
function formatValue(x: unknown): unknown {
  if (x === null || x === undefined) return null;
  if (typeof x === "number" || typeof x === "string" || typeof x === "boolean" || typeof x === "bigint") return x;
  if (x instanceof PyFloat) return x;
  return Object.prototype.toString.call(x) === "[object Object]" && (x as { constructor?: { name?: string } }).constructor?.name
    ? `<${(x as { constructor: { name: string } }).constructor.name}>`
    : String(x);
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

  readonly backend: NodeBackend;

  constructor(backend: NodeBackend) {
    this.backend = backend;
  }

  /** Asks the running prompt to stop: no new node starts, and running nodes are interrupted. */
  interrupt(): void {
    if (!this.#running) return;
    this.#interrupted = true;
    this.backend.interrupt?.();
  }

  /** Drops every cached output (and releases what they hold). */
  clearCache(): void {
    for (const e of this.#cache.values()) this.backend.release?.(e.outputs);
    this.#cache.clear();
  }

  /** Node ids whose outputs are cached. */
  cachedNodes(): string[] {
    return [...this.#cache.keys()];
  }

  /** Validates and runs a prompt. Resolves with the outcome; throws only for misuse. */
  async run(prompt: Prompt, opts: RunOptions = {}): Promise<RunResult> {
    if (this.#running) throw new PyisolateError("USAGE", "A prompt is already running on this host; wait for it to finish before starting another.");
    this.#running = true;
    this.#interrupted = false;
    try {
      return await this.#run(structuredClone(prompt), opts);
    } finally {
      this.#running = false;
    }
  }

  async #run(prompt: Prompt, opts: RunOptions): Promise<RunResult> {
    const promptId = opts.promptId ?? crypto.randomUUID();
    const emit = (type: string, data: Record<string, unknown>) => opts.onEvent?.({ type, data });
    const validation = await validatePrompt(prompt, this.backend);
    if (!validation.ok) {
      return { promptId, status: "invalid", validation, outputs: {}, nodes: [] };
    }
    const backend = this.backend;
    emit("execution_start", { prompt_id: promptId, timestamp: Date.now() });

    // Everything the outputs need.
    const needed = new Set<string>();
    const visit = (id: string) => {
      if (needed.has(id)) return;
      needed.add(id);
      for (const v of Object.values(prompt[id]!.inputs)) if (isLink(v)) visit(String(v[0]));
    };
    for (const o of validation.outputs) visit(o);

    // Drop cached outputs of nodes no longer in the prompt.
    for (const [id, e] of this.#cache) {
      if (!(id in prompt)) {
        backend.release?.(e.outputs);
        this.#cache.delete(id);
      }
    }

    const hiddenFor = (id: string): HiddenValues => ({ prompt, extra_pnginfo: opts.extraPngInfo, unique_id: id, prompt_id: promptId });

    // Input signatures, from the leaves up; a node whose IS_CHANGED answers NaN is never cached.
    const signatures = new Map<string, string | null>();
    const order = topoOrder(prompt, needed);
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
      if (sig !== null && entry && entry.signature === sig) cached.push(id);
      else toRun.add(id);
    }
    emit("execution_cached", { nodes: cached, prompt_id: promptId, timestamp: Date.now() });
    // The outputs cached before this run, by node id (ComfyUI's `current_outputs`).
    const cachedBefore = [...this.#cache.keys()];

    const records: NodeRecord[] = cached.map((id) => {
      const owner = backend.owner(prompt[id]!.class_type);
      return { id, classType: prompt[id]!.class_type, status: "cached" as const, ms: 0, pack: owner?.pack, isolated: owner?.isolated };
    });
    const finish = (r: NodeRecord) => {
      records.push(r);
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

    // Schedule: a node starts when its inputs are ready and its process is free.
    const done = new Set<string>(cached);
    const busy = new Set<string>();
    const running = new Map<string, Promise<void>>();
    const executed: string[] = [...cached];
    let failure: { data: Record<string, unknown>; interrupted: boolean } | undefined;

    const depsOf = (id: string) => Object.values(prompt[id]!.inputs).filter(isLink).map((l) => String(l[0]));
    const ready = () =>
      [...toRun].filter((id) => !done.has(id) && !running.has(id) && depsOf(id).every((d) => done.has(d)));

    const start = (id: string) => {
      const node = prompt[id]!;
      const owner = backend.owner(node.class_type);
      const proc = owner?.process ?? "?";
      busy.add(proc);
      const inputs: Record<string, unknown[]> = {};
      for (const [k, v] of Object.entries(node.inputs)) {
        if (isLink(v)) inputs[k] = this.#cache.get(String(v[0]))!.outputs[v[1]] ?? [];
        else inputs[k] = [v];
      }
      const t0 = performance.now();
      emit("executing", { node: id, display_node: id, prompt_id: promptId });
      const p = backend
        .execute(node.class_type, inputs, hiddenFor(id), id)
        .then((r) => {
          const old = this.#cache.get(id);
          if (old) backend.release?.(old.outputs);
          backend.retain?.(r.outputs);
          const sig = signatures.get(id);
          this.#cache.set(id, { signature: sig ?? `uncachable:${crypto.randomUUID()}`, outputs: r.outputs, ui: r.ui });
          done.add(id);
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
          busy.delete(proc);
          running.delete(id);
        });
      running.set(id, p);
    };

    for (;;) {
      if (!failure && !this.#interrupted) {
        for (const id of ready()) {
          const proc = backend.owner(prompt[id]!.class_type)?.process ?? "?";
          if (busy.has(proc)) continue;
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
      if (!done.has(id) && !records.some((r) => r.id === id)) {
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

/** Python's traceback text as ComfyUI's list of frames (`traceback.format_tb` style lines). */
function splitTraceback(tb: string): string[] {
  const lines = tb.split("\n");
  const out: string[] = [];
  for (const line of lines) {
    if (line.startsWith("  File ")) out.push(line + "\n");
    else if (out.length > 0 && line.startsWith("    ")) out[out.length - 1] += line + "\n";
  }
  return out.length > 0 ? out : [tb];
}

/** Needed nodes in dependency order (inputs before the nodes that use them). */
function topoOrder(prompt: Prompt, needed: Set<string>): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (id: string) => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const v of Object.values(prompt[id]!.inputs)) if (isLink(v) && needed.has(String(v[0]))) visit(String(v[0]));
    out.push(id);
  };
  for (const id of [...needed].sort()) visit(id);
  return out;
}
