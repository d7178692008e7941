/**
 * `RunGuard`: every node call in flight, and what ends one that does not end by itself. A node
 * over its time limit is asked to stop (the interrupt flag of its process only), and after a
 * grace period its process is killed — it starts again on the next call — and the node fails
 * with `TIMEOUT`. An interrupt of the whole prompt escalates the same way: cooperative first
 * (every node that checks the flag stops), then the processes of the nodes still running are
 * killed, and the prompt ends `execution_interrupted`. An interrupt of one prompt among
 * several that run at once ({@link RunGuard.interruptPrompt}) does the same for that
 * prompt's calls only: the interrupt flag goes to their processes, and is taken back when
 * each call ends.
 * @module
 */
import { PyisolateError } from "../errors.ts";
import { RemoteError } from "../protocol/remote_error.ts";
import type { PythonProcess } from "../process/python_process.ts";
import { MODEL_MANAGEMENT_SERVICE } from "../node_api/model_management.ts";
import { unref } from "../util/os.ts";

/** How long a node has to stop after an interrupt (or its time limit) before its process is killed. */
export const DEFAULT_INTERRUPT_GRACE_MS = 10_000;

/** One node call in flight. */
interface Running {
  proc: PythonProcess;
  pack: string;
  classType: string;
  nodeId: string;
  promptId: string | undefined;
  timedOut: boolean;
  /** Its prompt was interrupted on its own ({@link RunGuard.interruptPrompt}). */
  interrupted: boolean;
  timers: ReturnType<typeof setTimeout>[];
}

/** What a guarded node call needs to know. */
export interface GuardedCall {
  proc: PythonProcess;
  pack: string;
  classType: string;
  nodeId: string;
  /** The node's time limit; `0` for none. It starts once the process is ready (its start-up does not count). */
  timeoutMs: number;
  /** The prompt it belongs to, for {@link RunGuard.interruptPrompt}. */
  promptId?: string;
}

const seconds = (ms: number) => `${+(ms / 1000).toFixed(3)} s`;

/** Watches node calls; see the module's description. */
export class RunGuard {
  readonly graceMs: number;
  #running = new Set<Running>();
  #interruptTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether the whole prompt is being interrupted (a timed-out node's process keeps its flag set then). */
  #interrupting: () => boolean;

  constructor(opts: { graceMs?: number; interrupting?: () => boolean } = {}) {
    this.graceMs = opts.graceMs ?? DEFAULT_INTERRUPT_GRACE_MS;
    this.#interrupting = opts.interrupting ?? (() => false);
  }

  /** Node calls in flight. */
  get running(): number {
    return this.#running.size;
  }

  /**
   * Runs `call` under the node's time limit. Any {@link PyisolateError} it fails with (its
   * process died, it timed out) is re-thrown naming the node, its class and its pack.
   */
  async run<T>(c: GuardedCall, call: () => Promise<T>): Promise<T> {
    const r: Running = { proc: c.proc, pack: c.pack, classType: c.classType, nodeId: c.nodeId, promptId: c.promptId, timedOut: false, interrupted: false, timers: [] };
    this.#running.add(r);
    try {
      if (c.proc.state !== "ready") await c.proc.start();
    } catch (e) {
      this.#running.delete(r);
      if (e instanceof PyisolateError && !(e instanceof RemoteError)) {
        throw new PyisolateError(e.code, `Node #${c.nodeId} (${c.classType}) in pack "${c.pack}" failed: ${e.message}`, { pack: c.pack, node: c.classType, cause: e });
      }
      throw e;
    }
    // Its prompt was interrupted while the process started: it gets the flag now.
    if (r.interrupted) sendInterrupt(r.proc, true);
    if (c.timeoutMs > 0) {
      r.timers.push(
        unrefTimer(() => {
          r.timedOut = true;
          try {
            c.proc.event(MODEL_MANAGEMENT_SERVICE, "interrupt", [true]);
          } catch {
            // the process is going away anyway
          }
          r.timers.push(unrefTimer(() => c.proc.terminate(`node #${c.nodeId} (${c.classType}) did not stop within ${seconds(this.graceMs)} of its ${seconds(c.timeoutMs)} time limit`), this.graceMs));
        }, c.timeoutMs),
      );
    }
    try {
      const v = await call();
      if (r.timedOut) throw new PyisolateError("TIMEOUT", timeoutMessage(c, this.graceMs, false), { pack: c.pack, node: c.classType });
      return v;
    } catch (e) {
      if (r.timedOut) {
        const killed = e instanceof PyisolateError && e.code === "PROCESS_EXITED";
        throw new PyisolateError("TIMEOUT", timeoutMessage(c, this.graceMs, killed), { pack: c.pack, node: c.classType, cause: e });
      }
      // The node's own Python error stays as it is (its type and traceback are what ComfyUI shows).
      if (e instanceof PyisolateError && !(e instanceof RemoteError)) {
        throw new PyisolateError(e.code, `Node #${c.nodeId} (${c.classType}) in pack "${c.pack}" failed: ${e.message}`, { pack: c.pack, node: c.classType, cause: e });
      }
      throw e;
    } finally {
      for (const t of r.timers) clearTimeout(t);
      this.#running.delete(r);
      if ((r.timedOut || r.interrupted) && !this.#interrupting()) sendInterrupt(c.proc, false);
    }
  }

  /**
   * The prompt was interrupted (the flag is set everywhere): the nodes running now that are
   * still running after the grace period get their processes killed.
   */
  interrupt(): void {
    this.clearInterrupt();
    const now = [...this.#running];
    if (now.length === 0) return;
    this.#interruptTimer = unrefTimer(() => {
      this.#interruptTimer = undefined;
      for (const r of now) {
        if (this.#running.has(r)) r.proc.terminate(`node #${r.nodeId} (${r.classType}) did not stop within ${seconds(this.graceMs)} of the interrupt`);
      }
    }, this.graceMs);
  }

  /**
   * Interrupts one prompt's calls in flight, and only those: each one's process gets the
   * interrupt flag (once it is ready, for a process still starting), and a call still
   * running after the grace period has its process killed. Each process loses the flag
   * again when the call ends, so that the next node it runs — another prompt's — starts
   * clean. Other prompts' calls are not touched.
   * @returns how many calls were interrupted.
   */
  interruptPrompt(promptId: string): number {
    let n = 0;
    for (const r of this.#running) {
      if (r.promptId !== promptId || r.interrupted) continue;
      r.interrupted = true;
      n++;
      if (r.proc.state === "ready") sendInterrupt(r.proc, true);
      r.timers.push(unrefTimer(() => {
        if (this.#running.has(r)) r.proc.terminate(`node #${r.nodeId} (${r.classType}) did not stop within ${seconds(this.graceMs)} of the interrupt`);
      }, this.graceMs));
    }
    return n;
  }

  /** Forgets a pending escalation (a new prompt starts). */
  clearInterrupt(): void {
    if (this.#interruptTimer !== undefined) clearTimeout(this.#interruptTimer);
    this.#interruptTimer = undefined;
  }
}

function timeoutMessage(c: GuardedCall, graceMs: number, killed: boolean): string {
  const what = killed
    ? `it did not stop within ${seconds(graceMs)} after being asked to, so its process was killed (it starts again on the next call)`
    : "it was stopped";
  return `Node #${c.nodeId} (${c.classType}) in pack "${c.pack}" did not finish within its time limit of ${seconds(c.timeoutMs)}; ${what}. Raise node_timeout in the pack's manifest (or the host's nodeTimeoutMs) if it needs longer.`;
}

function unrefTimer(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
  const t = setTimeout(fn, ms);
  unref(t);
  return t;
}

function sendInterrupt(proc: PythonProcess, value: boolean): void {
  try {
    proc.event(MODEL_MANAGEMENT_SERVICE, "interrupt", [value]);
  } catch {
    // a process going away misses it (it starts clean)
  }
}
