/**
 * `/ws?clientId=…`: ComfyUI's WebSocket. A client gets `status` (with its `sid`) on connect,
 * the server's `feature_flags` in answer to its own, and from then on the messages meant for
 * it: the events of its prompts, what nodes send to it or to everyone, queue status. JSON
 * messages are `{type, data}` with every integer exact; binary events are frames of a 4-byte
 * big-endian event type and the payload, as ComfyUI sends them (a preview goes as
 * `PREVIEW_IMAGE_WITH_METADATA` to clients that said they support it, else as
 * `PREVIEW_IMAGE`).
 * @module
 */
import type { Hooks, Peer } from "crossws";
import type { ExecutionEvent } from "../executor/types.ts";
import { BinaryEventTypes } from "../node_api/prompt_server.ts";
import { stringifyExactJson } from "../util/exact_json.ts";

/** What the server tells clients in `feature_flags` and `/features`. */
export interface ServerFeatures {
  supports_preview_metadata: boolean;
  max_upload_size: number;
  [flag: string]: unknown;
}

interface Client {
  peer: Peer;
  flags: Record<string, unknown>;
  firstMessage: boolean;
}

/** Executor events ComfyUI sends to every client when the prompt came without a client id. */
const BROADCAST_WITHOUT_CLIENT = new Set(["execution_interrupted", "progress_state"]);

/** The connected clients, by sid. */
export class WsHub {
  readonly #clients = new Map<string, Client>();
  readonly #features: () => ServerFeatures;
  readonly #onConnect: (sid: string) => void;
  #closed = false;

  /**
   * @param features the server's feature flags.
   * @param onConnect called after a client got its `status`, to send what else it needs (the running node).
   */
  constructor(features: () => ServerFeatures, onConnect: (sid: string) => void) {
    this.#features = features;
    this.#onConnect = onConnect;
  }

  /** Client ids connected now. */
  get sids(): string[] {
    return [...this.#clients.keys()];
  }

  /** Whether client `sid` announced `feature` in its `feature_flags`. */
  supports(sid: string, feature: string): boolean {
    return this.#clients.get(sid)?.flags[feature] === true;
  }

  /** The crossws hooks of `/ws` (and `/api/ws`). */
  hooks(status: () => unknown): Partial<Hooks> {
    return {
      upgrade: (req) => {
        const path = new URL(req.url).pathname;
        if (this.#closed) throw new Response("The server is shutting down.", { status: 503 });
        if (path !== "/ws" && path !== "/api/ws") throw new Response("Not Found", { status: 404 });
      },
      open: (peer) => {
        const asked = new URL(peer.request.url).searchParams.get("clientId");
        const sid = asked ? asked : crypto.randomUUID().replaceAll("-", "");
        // A client that reconnects with its id replaces its old socket.
        this.#clients.set(sid, { peer, flags: {}, firstMessage: true });
        (peer.context as Record<string, unknown>).sid = sid;
        this.sendJson(sid, "status", { status: status(), sid });
        this.#onConnect(sid);
      },
      message: (peer, message) => {
        const sid = (peer.context as Record<string, unknown>).sid as string | undefined;
        const client = sid === undefined ? undefined : this.#clients.get(sid);
        if (!client || client.peer !== peer || !client.firstMessage) return;
        client.firstMessage = false;
        let data: { type?: unknown; data?: unknown };
        try {
          data = JSON.parse(message.text()) as typeof data;
        } catch {
          return; // ComfyUI logs and ignores what is not JSON
        }
        if (data?.type === "feature_flags") {
          client.flags = data.data && typeof data.data === "object" ? (data.data as Record<string, unknown>) : {};
          this.sendJson(sid!, "feature_flags", this.#features());
        }
      },
      close: (peer) => {
        const sid = (peer.context as Record<string, unknown>).sid as string | undefined;
        if (sid !== undefined && this.#clients.get(sid)?.peer === peer) this.#clients.delete(sid);
      },
    };
  }

  #targets(sid: string | null): Client[] {
    if (sid === null) return [...this.#clients.values()];
    const c = this.#clients.get(sid);
    return c ? [c] : [];
  }

  #send(client: Client, payload: string | Uint8Array): void {
    try {
      client.peer.send(payload);
    } catch {
      // a client that went away misses the message, as in ComfyUI (it logs a warning)
    }
  }

  /** A `{type, data}` message to client `sid` (every client when null). */
  sendJson(sid: string | null, type: string, data: unknown): void {
    const text = stringifyExactJson({ type, data });
    for (const c of this.#targets(sid)) this.#send(c, text);
  }

  /** A binary frame: the event type (4 bytes, big-endian), then `payload`. */
  sendBinary(sid: string | null, type: number, payload: Uint8Array): void {
    const frame = binaryFrame(type, payload);
    for (const c of this.#targets(sid)) this.#send(c, frame);
  }

  /**
   * An event of a run, to whom ComfyUI sends it: what a node sent goes to its `sid` (every
   * client when null); the executor's events go to the client whose prompt it is — and,
   * when the prompt came without a client id, only `execution_interrupted` and
   * `progress_state` go out (to every client), as in ComfyUI.
   */
  sendEvent(e: ExecutionEvent, promptClient: string | null): void {
    let sid: string | null;
    if (e.sid !== undefined) sid = e.sid;
    else if (promptClient !== null) sid = promptClient;
    else if (typeof e.type === "string" && BROADCAST_WITHOUT_CLIENT.has(e.type)) sid = null;
    else return;
    if (typeof e.type === "number") return this.#sendBinaryEvent(sid, e);
    this.sendJson(sid, e.type, e.data);
  }

  #sendBinaryEvent(sid: string | null, e: ExecutionEvent): void {
    const bytes = e.data.bytes;
    if (!(bytes instanceof Uint8Array)) return;
    const metadata = e.data.metadata as Record<string, unknown> | undefined;
    if (e.type !== BinaryEventTypes.PREVIEW_IMAGE || !metadata) return this.sendBinary(sid, e.type as number, bytes);
    // A progress preview: the frame each client supports.
    const plain = binaryFrame(BinaryEventTypes.PREVIEW_IMAGE, bytes);
    let withMetadata: Uint8Array | undefined;
    for (const [id, c] of this.#clients) {
      if (sid !== null && id !== sid) continue;
      if (c.flags.supports_preview_metadata === true) {
        withMetadata ??= binaryFrame(BinaryEventTypes.PREVIEW_IMAGE_WITH_METADATA, previewWithMetadata(bytes, metadata));
        this.#send(c, withMetadata);
      } else this.#send(c, plain);
    }
  }

  /** Closes every connection (the server is shutting down). */
  close(): void {
    this.#closed = true;
    for (const c of this.#clients.values()) {
      try {
        c.peer.close(1001, "server shutting down");
      } catch {
        // already gone
      }
    }
    this.#clients.clear();
  }
}

/** A binary WebSocket frame: the event type as 4 bytes, big-endian, then the payload. */
export function binaryFrame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, type);
  out.set(payload, 4);
  return out;
}

/**
 * `PREVIEW_IMAGE_WITH_METADATA`'s payload from a `PREVIEW_IMAGE` payload (image type, then
 * the image): the metadata's length, the metadata as JSON (with `image_type`), the image.
 */
function previewWithMetadata(preview: Uint8Array, metadata: Record<string, unknown>): Uint8Array {
  const type = new DataView(preview.buffer, preview.byteOffset, preview.byteLength).getUint32(0);
  const meta = new TextEncoder().encode(JSON.stringify({ ...metadata, image_type: type === 2 ? "image/png" : "image/jpeg" }));
  const image = preview.subarray(4);
  const out = new Uint8Array(4 + meta.length + image.length);
  new DataView(out.buffer).setUint32(0, meta.length);
  out.set(meta, 4);
  out.set(image, 4 + meta.length);
  return out;
}
