/**
 * The messages of the broker worker's data port (see `broker.ts`), shared by both ends.
 * @module
 */
import type { BrokerExit } from "./broker_core.ts";

/** Worker → main on the data port. */
export type DataToMain =
  /** One frame payload. */
  | ArrayBuffer
  /** Several frame payloads, in order. */
  | ArrayBuffer[]
  | { k: "lines"; stream: "stdout" | "stderr"; lines: string[] }
  | { k: "spawned"; pid: number; socketDir: string }
  | { k: "exit"; info: BrokerExit };

/** Main → worker on the data port: one whole frame (length prefix included). */
export type DataToWorker = ArrayBuffer;
