/**
 * What crosses the broker worker's {@link Channel} (see `broker.ts`), shared by both ends.
 * Frames are the channel's binary data: main → worker, one whole frame (length prefix
 * included) per `ArrayBuffer`; worker → main, frame payloads (`ArrayBuffer`, or an array of
 * them when one read held several). Everything is transferred, never copied.
 * @module
 */
import type { BrokerExit, BrokerStartFailed, BrokerStartOptions, BrokerStarted } from "./broker_core.ts";

/** Calls the main thread makes to the worker. */
export interface BrokerWorkerHandlers {
  /** Spawns the process and waits for `ready` (or for it to fail). */
  start(opts: BrokerStartOptions): Promise<BrokerStarted | BrokerStartFailed>;
  /** `bye`, then SIGTERM, then SIGKILL; resolves once the process has exited. */
  stop(graceMs: number): Promise<BrokerExit | null>;
  /** Sends a signal to the process group (an event: no answer). */
  kill(signal: string): void;
}

/** Events the worker sends to the main thread. */
export interface BrokerMainHandlers {
  /** Complete lines the child printed. */
  lines(stream: "stdout" | "stderr", lines: string[]): void;
  /** The process was spawned. */
  spawned(pid: number, socketDir: string): void;
  /** The process exited. */
  exit(info: BrokerExit): void;
}

/** How long a `stop` may take on the channel beyond its own two grace periods. */
export const STOP_MARGIN_MS = 5_000;

/** How long a `start` may take on the channel beyond the start timeout the broker enforces itself. */
export const START_MARGIN_MS = 10_000;
