/**
 * The broker worker's entry: one worker per Python process. It runs a {@link BrokerCore} and
 * talks to the main thread in two ways:
 *
 * - control (`start`, `stop`, `kill`) through Comlink on the worker's own endpoint;
 * - data on a dedicated `MessagePort` handed over in `start`: the main thread posts whole
 *   frames (`ArrayBuffer`, length prefix included, transferred) that go to the socket as they
 *   are; the worker posts each frame payload it receives (`ArrayBuffer`, or an array of them
 *   when one read held several, transferred), child output lines and the exit report. One
 *   message each way per call, and the values inside are encoded and decoded only once, on
 *   the main thread.
 *
 * From source it runs as `workers/broker.ts` (Deno, Bun, Node with TypeScript support, or
 * Node through `broker_node_dev.mjs`); bundled, as `dist/broker.js`.
 * @module
 */
import * as Comlink from "comlink";
import { getRuntime } from "../src/runtime/detect.ts";
import { BrokerCore, type BrokerExit, type BrokerStartFailed, type BrokerStartOptions, type BrokerStarted } from "./broker_core.ts";
import type { DataToMain } from "./broker_api.ts";

const rt = await getRuntime();
const self = rt.workerSelf();
if (!self) throw new Error("workers/broker.ts is the broker worker's entry; start it with runtime.startWorker().");

let core: BrokerCore | undefined;

function post(port: MessagePort, msg: DataToMain, transfer: Transferable[] = []): void {
  port.postMessage(msg, transfer);
}

const api = {
  /** Spawns the process; `port` carries the frames from now on. */
  async start(opts: BrokerStartOptions, port: MessagePort): Promise<BrokerStarted | BrokerStartFailed> {
    if (core) return { ok: false, code: "USAGE", message: "This broker worker already runs a process." };
    const c = new BrokerCore(rt, {
      frames(payloads) {
        if (payloads.length === 1) {
          const b = payloads[0]!.buffer as ArrayBuffer;
          post(port, b, [b]);
        } else {
          const bs = payloads.map((p) => p.buffer as ArrayBuffer);
          post(port, bs, bs);
        }
      },
      lines(stream, lines) {
        post(port, { k: "lines", stream, lines });
      },
      spawned(pid, socketDir) {
        post(port, { k: "spawned", pid, socketDir });
      },
      exit(info: BrokerExit) {
        post(port, { k: "exit", info });
      },
    });
    core = c;
    port.onmessage = (ev: MessageEvent) => c.send(new Uint8Array(ev.data as ArrayBuffer));
    return c.start(opts);
  },
  /** `bye`, then SIGTERM, then SIGKILL; resolves once the process has exited. */
  async stop(graceMs: number): Promise<BrokerExit | null> {
    return core ? core.stop(graceMs) : null;
  },
  /** Sends a signal to the process group. */
  kill(signal: string): void {
    core?.kill(signal);
  },
};

/** The control API the main thread reaches through Comlink. */
export type BrokerApi = typeof api;

Comlink.expose(api, self.endpoint as unknown as Comlink.Endpoint);
