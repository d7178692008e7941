/**
 * `ProcessGate`: one node at a time in each Python process, across every executor that
 * shares the gate. A run already starts at most one node per process; executors that run
 * prompts at the same time share one gate, so that two prompts that need the same process
 * take turns there, node by node, in the order they asked (first come, first served),
 * while nodes in different processes still run at once.
 *
 * Why the turns: a process keeps ComfyUI's per-node objects (one V1 node object per node id
 * and class, which two prompts with the same ids would share), one interrupt flag (set for
 * the node it runs) and whatever models its nodes loaded; ComfyUI's nodes expect to run one
 * at a time there.
 * @module
 */

/** Per-process turns; see the module's description. */
export class ProcessGate {
  readonly #held = new Set<string>();
  readonly #waiting = new Map<string, Array<() => void>>();

  /** Takes `proc`'s turn now when it is free: returns the function that gives it back, or null when it is taken. */
  tryAcquire(proc: string): (() => void) | null {
    if (this.#held.has(proc)) return null;
    this.#held.add(proc);
    return this.#releaser(proc);
  }

  /** Waits for `proc`'s turn (after the callers before); resolves with the function that gives it back. */
  acquire(proc: string): Promise<() => void> {
    const now = this.tryAcquire(proc);
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => {
      let q = this.#waiting.get(proc);
      if (!q) this.#waiting.set(proc, (q = []));
      q.push(() => resolve(this.#releaser(proc)));
    });
  }

  /** Whether a node holds `proc`'s turn. */
  busy(proc: string): boolean {
    return this.#held.has(proc);
  }

  /** How many wait for `proc`'s turn. */
  waiting(proc: string): number {
    return this.#waiting.get(proc)?.length ?? 0;
  }

  #releaser(proc: string): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const q = this.#waiting.get(proc);
      const next = q?.shift();
      if (q && q.length === 0) this.#waiting.delete(proc);
      // The turn passes straight to the next caller: the process stays held.
      if (next) next();
      else this.#held.delete(proc);
    };
  }
}
