/**
 * Web-`Worker` plumbing shared by the Deno and Bun adapters (private to `adapters/`).
 *
 * Deno and Bun drop a message that reaches a worker before the worker has a `message`
 * listener — and a module worker usually awaits (loading its runtime adapter, say) before it
 * can listen. Node queues such messages. To give all three the same behaviour, both sides hold
 * messages back:
 *
 * - the parent's {@link WorkerHandle} queues what it posts until the worker says it is ready;
 * - the worker says so when it calls `runtime.workerSelf()`; from then its endpoint buffers
 *   what arrives until a listener is added, then hands it over in order.
 *
 * So a worker started with `runtime.startWorker()` must call `runtime.workerSelf()` to receive
 * anything (the broker worker does, first thing).
 * @module
 */
import type { MessageEndpoint, WorkerHandle } from "../src/runtime/contract.ts";

type Listener = (ev: { data: unknown }) => void;

/** The message a worker sends once, from `workerSelf()`; never reaches a listener. */
const READY_KEY = "__pyisolateWorkerReady";

function isReady(data: unknown): boolean {
  return typeof data === "object" && data !== null && (data as Record<string, unknown>)[READY_KEY] === true;
}

/** A started web worker as a {@link WorkerHandle}, holding posts back until the worker is ready. */
export function wrapWebWorker(w: Worker, ops: { terminate(): Promise<void>; unref(): void }): WorkerHandle {
  const listeners = new Set<Listener>();
  let pending: [unknown, Transferable[]][] | null = [];
  w.addEventListener("message", (ev: MessageEvent) => {
    if (pending !== null && isReady(ev.data)) {
      const queued = pending;
      pending = null;
      for (const [m, t] of queued) w.postMessage(m, t);
      return;
    }
    for (const l of [...listeners]) l(ev);
  });
  return {
    postMessage(message, transfer) {
      const t = (transfer ?? []) as Transferable[];
      if (pending !== null) pending.push([message, t]);
      else w.postMessage(message, t);
    },
    addEventListener: (_type, l) => void listeners.add(l),
    removeEventListener: (_type, l) => void listeners.delete(l),
    terminate: () => {
      pending = null;
      listeners.clear();
      return ops.terminate();
    },
    unref: () => ops.unref(),
    onError(cb) {
      w.addEventListener("error", (ev: Event) => {
        ev.preventDefault?.(); // reported here, not as an uncaught error of the host
        const e = ev as ErrorEvent;
        if (e.error instanceof Error) return cb(e.error);
        // Bun's message leads with a source excerpt; its "error: …" line is the error itself.
        const text = e.message || "the worker failed";
        cb(new Error(/^error: (.*)$/m.exec(text)?.[1] ?? text));
      });
    },
  };
}

let selfEndpoint: MessageEndpoint | undefined;

/**
 * Inside a web worker: the endpoint to the parent. The first call tells the parent the worker
 * is ready and starts buffering what arrives until a listener is added.
 */
export function webWorkerEndpoint(): MessageEndpoint {
  if (selfEndpoint) return selfEndpoint;
  const scope = globalThis as unknown as {
    postMessage(m: unknown, t?: Transferable[]): void;
    addEventListener(type: "message", l: (ev: MessageEvent) => void): void;
  };
  const listeners = new Set<Listener>();
  let buffered: MessageEvent[] = [];
  let flushing = false;
  const flush = (): void => {
    flushing = false;
    const events = buffered;
    buffered = [];
    for (const ev of events) for (const l of [...listeners]) l(ev);
  };
  scope.addEventListener("message", (ev) => {
    if (listeners.size === 0 || flushing) buffered.push(ev);
    else for (const l of [...listeners]) l(ev);
  });
  selfEndpoint = {
    postMessage: (m, t) => scope.postMessage(m, (t ?? []) as Transferable[]),
    addEventListener(_type, l) {
      listeners.add(l);
      if (buffered.length > 0 && !flushing) {
        // Hand the held messages over after the caller has finished setting up.
        flushing = true;
        queueMicrotask(flush);
      }
    },
    removeEventListener: (_type, l) => void listeners.delete(l),
  };
  scope.postMessage({ [READY_KEY]: true });
  return selfEndpoint;
}
