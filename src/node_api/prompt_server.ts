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
  /** The client of each prompt running now (prompts may run at the same time). */
  #clients = new Map<string, string | null>();

  constructor(events: EventBus = defaultEventBus) {
    this.events = events;
  }

  /** Sets the client whose prompt runs now, `null` when none (host-side only: Python cannot call it). */
  readonly setClientId = (clientId: string | null): void => {
    this.#clientId = clientId;
  };

  /** The client whose prompt runs now (the last one set). */
  get clientId(): string | null {
    return this.#clientId;
  }

  /** Prompt `promptId` starts running for client `clientId` (host-side only). */
  readonly beginPrompt = (promptId: string, clientId: string | null): void => {
    this.#clients.set(promptId, clientId);
    this.#clientId = clientId;
  };

  /** Prompt `promptId` ended (host-side only). */
  readonly endPrompt = (promptId: string): void => {
    this.#clients.delete(promptId);
  };

  /**
   * The client of prompt `promptId` while it runs; for an unknown or absent id, the client
   * of the only prompt running, else the last one set.
   */
  clientFor(promptId: string | null | undefined): string | null {
    if (promptId != null && this.#clients.has(promptId)) return this.#clients.get(promptId) ?? null;
    if (this.#clients.size === 1) return this.#clients.values().next().value ?? null;
    return this.#clientId;
  }

  // --- what Python calls (ComfyUI's names) -----------------------------------------------------

  /**
   * `PromptServer.instance.send_sync(event, data, sid)` (and `await send(...)`): an event for
   * client `sid` (every client when null). A number as `event` with bytes as `data` is a
   * binary event (ComfyUI's `BinaryEventTypes`: the runtime encodes preview images and
   * progress texts before they cross). `node` and `promptId` are the prompt node that was
   * executing when it was sent and its prompt, which the Python side adds.
   */
  send_sync(event: string | number, data: unknown, sid: string | null = null, node: string | null = null, promptId: string | null = null): void {
    const caller = currentCall()?.caller;
    if (caller !== undefined && caller !== "host" && typeof event === "string" && EXECUTOR_EVENTS.has(event)) {
      throw new PyisolateError("DENIED", `Pack "${caller}" may not send the executor's own event "${event}" (PromptServer.send_sync); it was dropped. Send an event of the pack's own name instead.`, { pack: caller });
    }
    this.events.emit({ type: event, data, sid: sid ?? null, node: node ?? null, ...(promptId != null ? { promptId } : {}) });
  }

  /** `PromptServer.instance.client_id`: the client of prompt `promptId` (the node's, which the Python side passes). */
  client_id(promptId: string | null = null): string | null {
    return this.clientFor(promptId);
  }
}

/** A progress report, in ComfyUI's `progress` event shape. */
export interface ProgressUpdate {
  value: number;
  max: number;
  node: string | null;
  prompt_id: string | null;
}

/** ComfyUI's binary WebSocket event types (`protocol.BinaryEventTypes`). */
export const BinaryEventTypes: { readonly PREVIEW_IMAGE: 1; readonly UNENCODED_PREVIEW_IMAGE: 2; readonly TEXT: 3; readonly PREVIEW_IMAGE_WITH_METADATA: 4 } = {
  PREVIEW_IMAGE: 1,
  UNENCODED_PREVIEW_IMAGE: 2,
  TEXT: 3,
  PREVIEW_IMAGE_WITH_METADATA: 4,
};

/** A preview image a progress report carries, encoded by the Python side. */
export interface ProgressPreview {
  /** `"JPEG"` or `"PNG"`. */
  format: string;
  /** The encoded image. */
  image: Uint8Array;
}

/**
 * Node progress (`ProgressBar`, `ComfyAPI.execution.set_progress`): each update becomes a
 * `progress` event for the client of the report's prompt, and the last value per node is kept.
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

  /**
   * From Python: one progress report `{value, max, node, prompt_id}`, and the preview image
   * it carries (`preview: {format, image}`), which follows as a binary `PREVIEW_IMAGE`
   * event with the node's metadata (the server sends it as `PREVIEW_IMAGE_WITH_METADATA`
   * to clients that support it, as ComfyUI does).
   */
  update(report: Partial<ProgressUpdate> & { preview?: ProgressPreview | null }): void {
    const data: ProgressUpdate = {
      value: Number(report?.value ?? 0),
      max: Number(report?.max ?? 0),
      node: report?.node === undefined || report?.node === null ? null : String(report.node),
      prompt_id: report?.prompt_id === undefined || report?.prompt_id === null ? null : String(report.prompt_id),
    };
    if (data.node !== null) this.#last.set(data.node, data);
    const sid = this.#server?.clientFor(data.prompt_id) ?? null;
    const promptId = data.prompt_id !== null ? { promptId: data.prompt_id } : {};
    this.events.emit({ type: "progress", data, sid, ...promptId });
    const preview = report?.preview;
    if (preview && preview.image instanceof Uint8Array) {
      const type = String(preview.format).toUpperCase() === "PNG" ? 2 : 1;
      const bytes = new Uint8Array(4 + preview.image.length);
      new DataView(bytes.buffer).setUint32(0, type);
      bytes.set(preview.image, 4);
      const metadata = { node_id: data.node, prompt_id: data.prompt_id, display_node_id: data.node, parent_node_id: null, real_node_id: data.node };
      this.events.emit({ type: BinaryEventTypes.PREVIEW_IMAGE, data: { bytes, metadata }, sid, node: data.node, ...promptId });
    }
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
