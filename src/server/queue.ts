/**
 * The prompt queue and history, as ComfyUI's `PromptQueue` keeps them: prompts wait ordered
 * by their number (`front` puts one first), run through `host.run` (which runs independent
 * branches in parallel inside one prompt), and end in an in-memory history capped at
 * {@link MAXIMUM_HISTORY_SIZE} entries. Every change of the queue sends `status` to every
 * client; a finished prompt sends `status`, then `executing` with node null to its client.
 *
 * By default one prompt runs at a time, as in ComfyUI. With `maxConcurrent` N > 1, up to N
 * prompts run at once, started in queue order, each on its own lane of the host (its own
 * executor and output cache, over the same processes; see `HostRunOptions.lane`): a prompt
 * goes to the free lane whose cache holds most of its nodes, the lowest such lane on a tie.
 * @module
 */
import type { Host } from "../host.ts";
import type { Logger } from "../log.ts";
import type { ExecutionEvent, Prompt } from "../executor/types.ts";
import type { WsHub } from "./ws.ts";
import { PyisolateError } from "../errors.ts";

/** How many prompts the history keeps, as ComfyUI's `MAXIMUM_HISTORY_SIZE`. */
export const MAXIMUM_HISTORY_SIZE = 10000;

/** `extra_data` keys kept out of the queue and the history (ComfyUI's `SENSITIVE_EXTRA_DATA_KEYS`). */
const SENSITIVE_EXTRA_DATA_KEYS = ["auth_token_comfy_org", "api_key_comfy_org"];

/** Events ComfyUI records in a history entry's `status.messages`. */
const STATUS_MESSAGES = new Set(["execution_start", "execution_cached", "execution_success", "execution_error", "execution_interrupted"]);

/** A queued prompt: ComfyUI's `(number, prompt_id, prompt, extra_data, outputs_to_execute)`. */
export interface QueueItem {
  number: number;
  promptId: string;
  prompt: Prompt;
  extraData: Record<string, unknown>;
  outputs: string[];
}

/** One history entry, in ComfyUI's shape. */
export interface HistoryEntry {
  prompt: [number, string, Prompt, Record<string, unknown>, string[]];
  outputs: Record<string, Record<string, unknown>>;
  status: { status_str: "success" | "error"; completed: boolean; messages: Array<[string, Record<string, unknown>]> };
  meta: Record<string, { node_id: string; display_node: string; parent_node: null; real_node_id: string }>;
}

function tuple(item: QueueItem): [number, string, Prompt, Record<string, unknown>, string[]] {
  return [item.number, item.promptId, item.prompt, item.extraData, item.outputs];
}

/** A prompt that runs: its client, the node its client sees running, its lane. */
export interface RunningPrompt {
  promptId: string;
  clientId: string | null;
  node: string | null;
  lane: number;
}

interface Running extends RunningPrompt {
  item: QueueItem;
}

/** Options of a {@link PromptQueue}. */
export interface PromptQueueOptions {
  /** The history's cap. @default {@link MAXIMUM_HISTORY_SIZE} */
  maxHistory?: number;
  /** How many prompts run at once. @default 1 (ComfyUI's behaviour) */
  maxConcurrent?: number;
}

/** The queue, its worker and the history. */
export class PromptQueue {
  readonly #host: Host;
  readonly #hub: WsHub;
  readonly #log: Logger;
  #pending: QueueItem[] = [];
  /** The running prompts, in the order they started. */
  #running = new Map<string, Running>();
  /** Lanes no prompt runs on. */
  #freeLanes: number[];
  /** The runs in progress (the worker waits for them when it stops). */
  #runs = new Set<Promise<void>>();
  #history = new Map<string, HistoryEntry>();
  #counter = 0;
  #flags: { unloadModels?: boolean; freeMemory?: boolean } = {};
  #wake: (() => void) | undefined;
  #closed = false;
  #worker: Promise<void>;

  readonly #maxHistory: number;
  /** How many prompts run at once. */
  readonly maxConcurrent: number;

  /** @param opts the history's cap and how many prompts run at once (a number: the cap alone). */
  constructor(host: Host, hub: WsHub, logger: Logger, opts: PromptQueueOptions | number = {}) {
    const o = typeof opts === "number" ? { maxHistory: opts } : opts;
    const n = o.maxConcurrent ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new PyisolateError("USAGE", `maxConcurrentPrompts must be a whole number from 1, got ${String(n)}.`);
    this.#host = host;
    this.#hub = hub;
    this.#log = logger;
    this.#maxHistory = o.maxHistory ?? MAXIMUM_HISTORY_SIZE;
    this.maxConcurrent = n;
    this.#freeLanes = Array.from({ length: n }, (_, i) => i);
    this.#worker = this.#work();
  }

  /** The next number for a prompt (ComfyUI's `self.number`); negative with `front`. */
  nextNumber(front: boolean): number {
    const n = this.#counter++;
    return front ? -n : n;
  }

  /** Queues a validated prompt. */
  put(item: QueueItem): void {
    // Kept ordered by number; equal numbers keep their order.
    let i = this.#pending.length;
    while (i > 0 && this.#pending[i - 1]!.number > item.number) i--;
    this.#pending.splice(i, 0, item);
    this.#queueUpdated();
    this.#wake?.();
  }

  /**
   * `extra_data` without its sensitive keys (Comfy.org credentials), which ComfyUI keeps out
   * of the queue and the history; the host's nodes get none.
   */
  static withoutSensitive(extraData: Record<string, unknown>): Record<string, unknown> {
    const kept: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(extraData)) if (!SENSITIVE_EXTRA_DATA_KEYS.includes(k)) kept[k] = v;
    return kept;
  }

  /** `{exec_info: {queue_remaining}}` (`GET /prompt`, and every `status` message). */
  info(): { exec_info: { queue_remaining: number } } {
    return { exec_info: { queue_remaining: this.#pending.length + this.#running.size } };
  }

  /** `GET /queue`'s lists (every running prompt, in the order they started). */
  current(): { queue_running: unknown[]; queue_pending: unknown[] } {
    return { queue_running: [...this.#running.values()].map((r) => tuple(r.item)), queue_pending: this.#pending.map(tuple) };
  }

  /** Whether the queue stopped taking prompts (the server is shutting down). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The running prompts (id, client, the node their client sees running, lane), in the order they started. */
  get running(): RunningPrompt[] {
    return [...this.#running.values()].map(({ promptId, clientId, node, lane }) => ({ promptId, clientId, node, lane }));
  }

  /** Empties the queue (the running prompts go on). */
  wipe(): void {
    this.#pending = [];
    this.#queueUpdated();
  }

  /** Removes a queued prompt; returns whether it was queued. */
  delete(promptId: string): boolean {
    const i = this.#pending.findIndex((p) => p.promptId === promptId);
    if (i < 0) return false;
    this.#pending.splice(i, 1);
    this.#queueUpdated();
    return true;
  }

  /** ComfyUI's `get_history`: one entry by id, or `max_items` entries from `offset` (the last ones when no offset). */
  history(opts: { promptId?: string; maxItems?: number; offset?: number } = {}): Record<string, HistoryEntry> {
    if (opts.promptId !== undefined) {
      const e = this.#history.get(opts.promptId);
      return e ? { [opts.promptId]: e } : {};
    }
    let offset = opts.offset ?? -1;
    const max = opts.maxItems;
    if (offset < 0 && max !== undefined) offset = this.#history.size - max;
    const out: Record<string, HistoryEntry> = {};
    let i = 0;
    for (const [id, e] of this.#history) {
      if (i >= offset) {
        out[id] = e;
        if (max !== undefined && Object.keys(out).length >= max) break;
      }
      i++;
    }
    return out;
  }

  wipeHistory(): void {
    this.#history.clear();
  }

  deleteHistory(promptId: string): void {
    this.#history.delete(promptId);
  }

  /**
   * `POST /free`: applied after the running prompts, or at once when none runs; until then
   * no queued prompt starts.
   */
  setFlags(flags: { unloadModels?: boolean; freeMemory?: boolean }): void {
    if (flags.unloadModels) this.#flags.unloadModels = true;
    if (flags.freeMemory) this.#flags.freeMemory = true;
    this.#wake?.();
  }

  /**
   * Interrupts running prompt `promptId` (the others go on), or, without an id, every running
   * prompt; returns whether one was.
   */
  interrupt(promptId?: string): boolean {
    if (promptId !== undefined) return this.#running.has(promptId) && this.#host.interrupt(promptId);
    if (this.#running.size === 0) return false;
    for (const id of this.#running.keys()) this.#host.interrupt(id);
    return true;
  }

  /** Stops taking prompts: the queue is emptied, the running prompts interrupted; resolves when the worker and they stopped. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#pending = [];
    for (const id of this.#running.keys()) this.#host.interrupt(id);
    this.#wake?.();
    await this.#worker;
  }

  #queueUpdated(): void {
    this.#hub.sendJson(null, "status", { status: this.info() });
  }

  #applyFlags(): void {
    const f = this.#flags;
    this.#flags = {};
    if (f.unloadModels || f.freeMemory) this.#host.free({ unloadModels: f.unloadModels === true, freeMemory: f.freeMemory === true });
  }

  #flagsPending(): boolean {
    return this.#flags.unloadModels === true || this.#flags.freeMemory === true;
  }

  /** The free lane for `item`: the one whose cache holds most of its nodes, the lowest on a tie. */
  #takeLane(item: QueueItem): number {
    let best = 0;
    if (this.#freeLanes.length > 1) {
      let score = -1;
      this.#freeLanes.forEach((lane, i) => {
        const s = this.#host.cacheScore(item.prompt, lane);
        if (s > score || (s === score && lane < this.#freeLanes[best]!)) [score, best] = [s, i];
      });
    }
    return this.#freeLanes.splice(best, 1)[0]!;
  }

  async #work(): Promise<void> {
    for (;;) {
      // `/free` waits for the running prompts; then nothing runs while it is applied.
      if (this.#running.size === 0) this.#applyFlags();
      if (this.#closed) break;
      if (this.#pending.length > 0 && this.#freeLanes.length > 0 && !this.#flagsPending()) {
        const item = this.#pending.shift()!;
        const lane = this.#takeLane(item);
        const run = this.#execute(item, lane).finally(() => {
          this.#runs.delete(run);
          this.#freeLanes.push(lane);
          this.#freeLanes.sort((a, b) => a - b);
          this.#wake?.();
        });
        this.#runs.add(run);
        continue;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
    await Promise.all(this.#runs);
  }

  async #execute(item: QueueItem, lane: number): Promise<void> {
    const clientId = typeof item.extraData.client_id === "string" ? item.extraData.client_id : null;
    const running: Running = { item, promptId: item.promptId, clientId, node: null, lane };
    this.#running.set(item.promptId, running);
    this.#queueUpdated();
    const messages: Array<[string, Record<string, unknown>]> = [];
    const started = performance.now();
    let entry: HistoryEntry;
    try {
      const result = await this.#host.run(item.prompt, {
        promptId: item.promptId,
        lane,
        ...(clientId !== null ? { clientId } : {}),
        ...(item.extraData.extra_pnginfo !== undefined ? { extraPngInfo: item.extraData.extra_pnginfo } : {}),
        onEvent: (e) => this.#onEvent(e, running, messages),
      });
      if (result.status === "invalid") {
        const error = { prompt_id: item.promptId, exception_message: result.validation.error?.message ?? "Prompt failed validation", exception_type: "prompt_outputs_failed_validation", node_errors: result.validation.node_errors, timestamp: Date.now() };
        messages.push(["execution_error", error]);
        this.#hub.sendEvent({ type: "execution_error", data: error }, clientId);
      }
      const meta: HistoryEntry["meta"] = {};
      for (const id of Object.keys(result.outputs)) meta[id] = { node_id: id, display_node: id, parent_node: null, real_node_id: id };
      const ok = result.status === "success";
      entry = { prompt: tuple(item), outputs: result.outputs, status: { status_str: ok ? "success" : "error", completed: ok, messages }, meta };
    } catch (e) {
      this.#log.error(`The prompt ${item.promptId} could not run: ${e instanceof Error ? e.message : String(e)}`);
      const error = { prompt_id: item.promptId, exception_message: e instanceof Error ? e.message : String(e), exception_type: "pyisolate.Error", timestamp: Date.now() };
      messages.push(["execution_error", error]);
      this.#hub.sendEvent({ type: "execution_error", data: error }, clientId);
      entry = { prompt: tuple(item), outputs: {}, status: { status_str: "error", completed: false, messages }, meta: {} };
    }
    // As ComfyUI: the oldest entry goes once there are more than the cap.
    if (this.#history.size > this.#maxHistory) this.#history.delete(this.#history.keys().next().value!);
    this.#history.set(item.promptId, entry);
    this.#running.delete(item.promptId);
    this.#queueUpdated();
    if (clientId !== null) this.#hub.sendJson(clientId, "executing", { node: null, prompt_id: item.promptId });
    const seconds = (performance.now() - started) / 1000;
    this.#log.info(`Prompt executed in ${seconds.toFixed(2)} seconds`);
  }

  #onEvent(e: ExecutionEvent, running: Running, messages: Array<[string, Record<string, unknown>]>): void {
    if (e.sid === undefined && typeof e.type === "string") {
      if (STATUS_MESSAGES.has(e.type)) messages.push([e.type, e.data]);
      if (e.type === "executing") {
        // `executing` with node null follows the history entry and its `status` (see #execute).
        if (e.data.node === null) return;
        running.node = String(e.data.node);
      }
    }
    this.#hub.sendEvent(e, running.clientId);
  }
}
