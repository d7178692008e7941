/**
 * The worker the Runtime-contract suite starts: it finds its parent through
 * `runtime.workerSelf()` and exposes a small API with Comlink, the way the broker worker does.
 * It awaits before exposing, so a call posted right after start-up must wait for it.
 * @module
 */
import * as Comlink from "comlink";
import { getRuntime } from "../../src/runtime/detect.ts";

const rt = await getRuntime();
const self = rt.workerSelf();
if (!self) throw new Error("contract_worker.ts runs as a worker started with runtime.startWorker().");
const { endpoint, data } = self;

// Start-up work that is still going on when the first call arrives.
await new Promise((resolve) => setTimeout(resolve, 50));

let echoPort: MessagePort | undefined;

const api = {
  /** Which adapter runs the worker, the start-up data, and whether it sees itself as a worker. */
  info(): { runtime: string; data: unknown; inWorker: boolean } {
    return { runtime: rt.name, data, inWorker: rt.workerSelf() !== null };
  },
  add(a: number, b: number): number {
    return a + b;
  },
  /** Answers every buffer posted on `port` with its bytes reversed, transferred back. */
  echoOn(port: MessagePort): void {
    echoPort = port;
    port.onmessage = (ev: MessageEvent) => {
      const bytes = new Uint8Array(ev.data as ArrayBuffer).reverse();
      port.postMessage(bytes.buffer, [bytes.buffer]);
    };
  },
  closeEcho(): void {
    echoPort?.close();
    echoPort = undefined;
  },
};

/** The API the contract suite calls. */
export type ContractWorkerApi = typeof api;

Comlink.expose(api, endpoint as unknown as Comlink.Endpoint);
