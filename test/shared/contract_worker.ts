/**
 * The worker the Runtime-contract suite starts: it finds its parent through
 * `runtime.workerSelf()` and serves a small API over a {@link Channel}, the way the broker
 * worker does. It awaits before serving, so a call posted right after start-up must wait for it.
 *
 * With start-up data `{ role: "dying-broker", dieOn }` it plays a broker worker that dies: it
 * answers `start` (unless `dieOn` is `"start"`) and dies, without answering, on the call named
 * by `dieOn` — to show the main thread's pending calls rejected instead of hanging.
 * @module
 */
import { getRuntime } from "../../src/runtime/detect.ts";
import { Channel } from "../../src/rpc/channel.ts";

const rt = await getRuntime();
const self = rt.workerSelf();
if (!self) throw new Error("contract_worker.ts runs as a worker started with runtime.startWorker().");
const { endpoint, data } = self;

// Start-up work that is still going on when the first call arrives.
await new Promise((resolve) => setTimeout(resolve, 50));

/** Ends the worker with an uncaught error, after the current call has returned. */
function dieSoon(): void {
  setTimeout(() => {
    throw new Error("this worker dies on purpose");
  }, 20);
}

const never = (): Promise<never> => new Promise<never>(() => {});
const role = (data as { role?: string } | null)?.role;
const dieOn = (data as { dieOn?: string } | null)?.dieOn;

const handlers: Record<string, (...args: any[]) => unknown> =
  role === "dying-broker"
    ? {
        start: () => (dieOn === "start" ? (dieSoon(), never()) : { ok: false, code: "PROCESS_FAILED", message: "not a real broker" }),
        stop: () => (dieSoon(), never()),
        kill: () => {},
      }
    : {
        /** Which adapter runs the worker, the start-up data, and whether it sees itself as a worker. */
        info: () => ({ runtime: rt.name, data, inWorker: rt.workerSelf() !== null }),
        add: (a: number, b: number) => a + b,
        /** Never answers. */
        hang: () => never(),
        /** Never answers; the worker dies soon after. */
        hangThenDie: () => (dieSoon(), never()),
      };

const channel: Channel = new Channel(endpoint, {
  name: "the contract suite",
  handlers,
  // Every buffer comes back with its bytes reversed, transferred.
  onData: (d) => {
    if (d instanceof ArrayBuffer) channel.send(new Uint8Array(d).reverse().buffer as ArrayBuffer);
  },
});
