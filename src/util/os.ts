/**
 * Small process and timer helpers the core shares (private to pyisolate).
 * @module
 */
import process from "node:process";

/** Whether a process with this pid exists (one we may not signal counts as existing). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}

/** Lets the host exit while `handle` (a timer, port or worker) is still pending, where the runtime supports it. */
export function unref(handle: unknown): void {
  (handle as { unref?: () => void } | undefined)?.unref?.();
}

/** A timer that does not keep the host alive. */
export function unrefTimeout(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
  const t = setTimeout(fn, ms);
  unref(t);
  return t;
}

/** Holds the host's event loop open while work is pending: one `hold()` per `release()`. */
export class KeepAlive {
  #n = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Keeps the loop alive until the matching {@link KeepAlive.release}. */
  hold(): void {
    if (this.#n++ === 0) this.#timer = setInterval(() => {}, 1 << 30);
  }

  /** Ends one {@link KeepAlive.hold}. */
  release(): void {
    if (--this.#n === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
