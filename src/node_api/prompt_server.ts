/**
 * `PromptServer` and `Progress`: what nodes tell the UI. `PromptServer.instance.send_sync`
 * in any process and `comfy.utils.ProgressBar` updates become `{type, data}` events on the
 * host's {@link EventBus}, with the client id they are for.
 * @module
 */
import { PyisolateError } from "../errors.ts";
import { currentCall, defaultRegistry } from "../rpc/services.ts";
import { defaultEventBus, type EventBus } from "./events.ts";

/** What packs may call of `PromptServer` and `Progress`. */
export const PROMPT_SERVER_EXPOSED: readonly string[] = ["send_sync", "client_id"];
/** @see PROMPT_SERVER_EXPOSED */
export const PROGRESS_EXPOSED: readonly string[] = ["update"];

/** The executor's own events: a pack's `send_sync` may not send them (it would impersonate the executor). */
export const EXECUTOR_EVENTS: ReadonlySet<string> = new Set([
  "execution_start", "execution_cached", "executing", "executed", "execution_success", "execution_error", "execution_interrupted",
]);

/**
 * The host side of ComfyUI's `server.PromptServer`.
 *
 * @example
 * ```ts
 * const server = new PromptServer(bus);
 * server.setClientId("c1");           // the client whose prompt runs
 * bus.on((e) => ws.send(JSON.stringify({ type: e.type, data: e.data })));
 * ```
 */
export class PromptServer {
  readonly events: EventBus;
  #clientId: string | null = null;

  constructor(events: EventBus = defaultEventBus) {
    this.events = events;
  }

  /** Sets the client whose prompt runs now, `null` when none (host-side only: Python cannot call it). */
  readonly setClientId = (clientId: string | null): void => {
    this.#clientId = clientId;
  };

  /** The client whose prompt runs now. */
  get clientId(): string | null {
    return this.#clientId;
  }

  // --- what Python calls (ComfyUI's names) -----------------------------------------------------

  /** `PromptServer.instance.send_sync(event, data, sid)`: an event for client `sid` (every client when null). */
  send_sync(event: string | number, data: unknown, sid: string | null = null): void {
    const caller = currentCall()?.caller;
    if (caller !== undefined && caller !== "host" && typeof event === "string" && EXECUTOR_EVENTS.has(event)) {
      throw new PyisolateError("DENIED", `Pack "${caller}" may not send the executor's own event "${event}" (PromptServer.send_sync); it was dropped. Send an event of the pack's own name instead.`, { pack: caller });
    }
    this.events.emit({ type: event, data, sid: sid ?? null });
  }

  /** `PromptServer.instance.client_id`. */
  client_id(): string | null {
    return this.#clientId;
  }
}

/** A progress report, in ComfyUI's `progress` event shape. */
export interface ProgressUpdate {
  value: number;
  max: number;
  node: string | null;
  prompt_id: string | null;
}

/**
 * Node progress (`ProgressBar`, `ComfyAPI.execution.set_progress`): each update becomes a
 * `progress` event for the current client, and the last value per node is kept.
 */
export class Progress {
  readonly events: EventBus;
  #server: PromptServer | undefined;
  #last = new Map<string, ProgressUpdate>();

  constructor(events: EventBus = defaultEventBus, server?: PromptServer) {
    this.events = events;
    this.#server = server;
  }

  /** Sends progress events to the client of this server's running prompt (host-side only). */
  readonly bind = (server: PromptServer): void => {
    this.#server = server;
  };

  /** From Python: one progress report `{value, max, node, prompt_id}`. */
  update(report: Partial<ProgressUpdate>): void {
    const data: ProgressUpdate = {
      value: Number(report?.value ?? 0),
      max: Number(report?.max ?? 0),
      node: report?.node === undefined || report?.node === null ? null : String(report.node),
      prompt_id: report?.prompt_id === undefined || report?.prompt_id === null ? null : String(report.prompt_id),
    };
    if (data.node !== null) this.#last.set(data.node, data);
    this.events.emit({ type: "progress", data, sid: this.#server?.clientId ?? null });
  }

  /** The last report of a node, if any. */
  last(node: string): ProgressUpdate | undefined {
    return this.#last.get(node);
  }

  /** Forgets every node's last report, for a new prompt (host-side only). */
  readonly reset = (): void => {
    this.#last.clear();
  };
}

// What `@service("PromptServer")` does; decorator syntax is not used because the test toolchain does not compile it.
defaultRegistry.register("PromptServer", PromptServer, { expose: PROMPT_SERVER_EXPOSED });

// What `@service("Progress")` does; decorator syntax is not used because the test toolchain does not compile it.
defaultRegistry.register("Progress", Progress, { expose: PROGRESS_EXPOSED });
