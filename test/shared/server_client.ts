/**
 * The clients of the shared server suite: a real WebSocket client of `/ws` that keeps every
 * message (JSON parsed exactly, binary frames as their type and payload), and small HTTP
 * helpers over the runtime's own `fetch`. Runner-neutral, like the suites.
 * @module
 */
import { parseExactJson, stringifyExactJson } from "../../src/mod.ts";

/** One message a client received. */
export type WsMessage = { type: string; data: Record<string, unknown>; binary?: undefined } | { type: number; data: Record<string, unknown>; binary: Uint8Array };

interface SocketLike {
  binaryType: string;
  onmessage: ((e: { data: unknown }) => void) | null;
  onopen: (() => void) | null;
  onerror: ((e: unknown) => void) | null;
  onclose: ((e: { code: number }) => void) | null;
  send(data: string): void;
  close(): void;
}

type SocketCtor = new (url: string) => SocketLike;

/** The runtime's WebSocket (Deno, Bun, Node 22+), else crossws's bundled client on Node 20. */
async function socketClass(): Promise<SocketCtor> {
  const g = (globalThis as { WebSocket?: SocketCtor }).WebSocket;
  if (g) return g;
  return (await import("crossws/websocket")).default as unknown as SocketCtor;
}

/** Waits up to `ms` for `check` to hold, polling. */
export async function until<T>(what: string, check: () => T | undefined | false, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A connected `/ws` client. */
export class WsClient {
  readonly messages: WsMessage[] = [];
  sid = "";
  closed: number | null = null;
  #ws: SocketLike;

  private constructor(ws: SocketLike) {
    this.#ws = ws;
  }

  /**
   * Connects and waits for the first `status` (with the sid). With `flags`, sends them as
   * ComfyUI's frontend does and waits for the server's `feature_flags`.
   */
  static async open(baseUrl: string, opts: { clientId?: string; flags?: Record<string, unknown>; path?: string } = {}): Promise<WsClient> {
    const Ctor = await socketClass();
    const url = `${baseUrl.replace(/^http/, "ws")}${opts.path ?? "/ws"}${opts.clientId ? `?clientId=${encodeURIComponent(opts.clientId)}` : ""}`;
    const ws = new Ctor(url);
    ws.binaryType = "arraybuffer";
    const c = new WsClient(ws);
    ws.onmessage = (e) => {
      if (typeof e.data === "string") {
        const m = parseExactJson(e.data) as { type: string; data: Record<string, unknown> };
        c.messages.push({ type: m.type, data: m.data });
      } else {
        const bytes = new Uint8Array(e.data as ArrayBuffer);
        const type = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
        c.messages.push({ type, data: {}, binary: bytes.slice(4) });
      }
    };
    ws.onclose = (e) => (c.closed = e.code);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = (e) => reject(new Error(`WebSocket ${url} failed: ${String((e as { message?: string }).message ?? e)}`));
    });
    const status = await c.next((m) => m.type === "status", 0);
    c.sid = String(status.data.sid);
    if (opts.flags) {
      ws.send(JSON.stringify({ type: "feature_flags", data: opts.flags }));
      await c.next((m) => m.type === "feature_flags", 0);
    }
    return c;
  }

  /** The first message from index `from` on that matches (waiting for it). */
  async next(match: (m: WsMessage) => boolean, from = 0, ms = 30_000): Promise<WsMessage> {
    return until(`a matching /ws message (have: ${this.messages.map((m) => m.type).join(", ")})`, () => this.messages.slice(from).find(match), ms);
  }

  /** Waits for `executing` with node null of `promptId`; returns the messages from `from` to it. */
  async prompt(promptId: string, from: number, ms = 60_000): Promise<WsMessage[]> {
    const end = await this.next((m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === promptId, from, ms);
    return this.messages.slice(from, this.messages.indexOf(end, from) + 1);
  }

  send(data: unknown): void {
    this.#ws.send(JSON.stringify(data));
  }

  close(): void {
    this.#ws.close();
  }
}

/** `type` for JSON messages, `type(node)` for node messages, `bin<N>` for binary frames. */
export function shortForm(m: WsMessage): string {
  if (m.binary) return `bin${m.type}`;
  const node = m.data.node;
  if (m.type === "executing" || m.type === "executed") return `${m.type}(${node === null ? "null" : String(node)})`;
  if (m.type === "progress") return `progress(${String(node)})`;
  if (m.type === "progress_state") {
    const nodes = m.data.nodes as Record<string, { state: string }>;
    return `progress_state(${Object.keys(nodes).sort().map((id) => `${id}:${nodes[id]!.state}`).join(",")})`;
  }
  return m.type;
}

/** A JSON request; the answer's status, its raw text and its body parsed exactly. */
export async function call(base: string, path: string, init: { method?: string; body?: unknown; raw?: string | FormData | Uint8Array; headers?: Record<string, string> } = {}): Promise<{ status: number; text: string; body: unknown; headers: Headers }> {
  const body = init.raw !== undefined ? init.raw : init.body !== undefined ? stringifyExactJson(init.body) : undefined;
  const r = await fetch(`${base}${path}`, { method: init.method ?? (body !== undefined ? "POST" : "GET"), ...(body !== undefined ? { body: body as never } : {}), headers: init.headers ?? {} });
  const text = await r.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? parseExactJson(text) : undefined;
  } catch {
    // not JSON
  }
  return { status: r.status, text, body: parsed, headers: r.headers };
}
