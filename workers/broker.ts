/**
 * The broker worker's entry: one worker per Python process. It runs a {@link BrokerCore} and
 * talks to the main thread through one {@link Channel} on the worker's endpoint: control calls
 * (`start`, `stop`, `kill`), events back (child output lines, `spawned`, the exit report) and
 * the frames as binary data (see `broker_api.ts`). The values inside frames are encoded and
 * decoded only once, on the main thread.
 *
 * From source it runs as `workers/broker.ts` (Deno, Bun, Node with TypeScript support, or
 * Node through `broker_node_dev.mjs`); bundled, as `dist/broker.js`.
 * @module
 */
import { getRuntime } from "../src/runtime/detect.ts";
import { Channel } from "../src/rpc/channel.ts";
import { BrokerCore } from "./broker_core.ts";
import type { BrokerWorkerHandlers } from "./broker_api.ts";

const rt = await getRuntime();
const self = rt.workerSelf();
if (!self) throw new Error("workers/broker.ts is the broker worker's entry; start it with runtime.startWorker().");

let core: BrokerCore | undefined;

const handlers: BrokerWorkerHandlers = {
  async start(opts) {
    if (core) return { ok: false, code: "USAGE", message: "This broker worker already runs a process." };
    core = new BrokerCore(rt, {
      frames(payloads) {
        channel.send(payloads.length === 1 ? (payloads[0]!.buffer as ArrayBuffer) : payloads.map((p) => p.buffer as ArrayBuffer));
      },
      lines: (stream, lines) => channel.event("lines", [stream, lines]),
      spawned: (pid, socketDir) => channel.event("spawned", [pid, socketDir]),
      exit: (info) => channel.event("exit", [info]),
    });
    return core.start(opts);
  },
  stop: async (graceMs) => (core ? core.stop(graceMs) : null),
  kill(signal) {
    core?.kill(signal);
  },
};

const channel: Channel = new Channel(self.endpoint, {
  name: "the host",
  handlers: handlers as unknown as Record<string, (...args: any[]) => unknown>,
  defaultTimeoutMs: 0,
  onData: (data) => {
    if (data instanceof ArrayBuffer) core?.send(new Uint8Array(data));
  },
});
