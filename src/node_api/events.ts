/**
 * The host's event bus for what nodes tell the UI: ComfyUI's `{type, data}` messages
 * (`PromptServer.instance.send_sync(...)`, progress updates), each with the client id
 * (`sid`) it is meant for, `null` for every client.
 * @module
 */

/** One event in ComfyUI's shape, with the client it is for. */
export interface NodeApiEvent {
  /** ComfyUI's event name (`"progress"`, `"executed"`, a pack's own), or a binary event number. */
  type: string | number;
  data: unknown;
  /** The client id the event is for; `null` for every client. */
  sid: string | null;
  /** The node that was executing when it was sent (its prompt node id), when known. */
  node?: string | null;
  /** The prompt of that node, when known (prompts may run at the same time: it tells whose event it is). */
  promptId?: string | null;
}

/** Receives events. */
export type NodeApiListener = (event: NodeApiEvent) => void;

/**
 * A small synchronous event bus. A listener that throws does not stop the others.
 *
 * @example
 * ```ts
 * const bus = new EventBus();
 * const off = bus.on((e) => console.log(e.type, e.data));
 * bus.emit({ type: "progress", data: { value: 1, max: 4 }, sid: null });
 * off();
 * ```
 */
export class EventBus {
  #listeners = new Set<NodeApiListener>();

  /** Adds a listener; returns the function that removes it. */
  on(listener: NodeApiListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Delivers an event to every listener. */
  emit(event: NodeApiEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        // one listener's failure is not the node's problem
      }
    }
  }

  /** How many listeners are attached. */
  get size(): number {
    return this.#listeners.size;
  }
}

/** The bus services use when none is given (the default-registry singletons share it). */
export const defaultEventBus: EventBus = new EventBus();
