/**
 * The health check of a running Python process: a ping (`$rt.ping`, which the child's I/O
 * thread answers even while a node runs) every `intervalMs`; a ping unanswered for
 * `timeoutMs` means the process is stopped or deadlocked (a node holding the GIL in C code),
 * and it is declared failed.
 * @module
 */
import { PyisolateError } from "../errors.ts";
import type { RpcEndpoint } from "../rpc/endpoint.ts";
import { unref } from "../util/os.ts";

/** How often a running process is pinged (`$rt.ping`, answered by its I/O thread). */
export const DEFAULT_HEALTH_INTERVAL_MS = 5_000;

/** How long a ping may go unanswered before the process is declared stopped or deadlocked and killed. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 30_000;

/** The health check of a running process: a ping every `intervalMs`, failed after `timeoutMs` without an answer. */
export interface HealthCheckOptions {
  /** @default {@link DEFAULT_HEALTH_INTERVAL_MS} */
  intervalMs?: number;
  /** @default {@link DEFAULT_HEALTH_TIMEOUT_MS} */
  timeoutMs?: number;
}

/**
 * Pings through `ep` while `running()` holds; calls `fail(reason)` once a ping goes unanswered
 * for the timeout. Returns the function that stops it.
 */
export function startHealthCheck(ep: RpcEndpoint, opts: HealthCheckOptions, running: () => boolean, fail: (reason: string) => void): () => void {
  const interval = opts.intervalMs ?? DEFAULT_HEALTH_INTERVAL_MS;
  const timeout = opts.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
  let inFlight = false;
  const timer = setInterval(() => {
    if (!running() || inFlight || ep.closed) return;
    inFlight = true;
    ep.call("$rt", "ping", [], { timeoutMs: timeout }).then(
      () => (inFlight = false),
      (err: unknown) => {
        inFlight = false;
        if (err instanceof PyisolateError && err.code === "TIMEOUT" && running()) {
          fail(`it did not answer the health check within ${timeout / 1000} s: it is stopped or deadlocked`);
        }
      },
    );
  }, interval);
  unref(timer);
  return () => clearInterval(timer);
}
