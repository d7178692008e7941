/**
 * `ModelManagement`: the host side of ComfyUI's `comfy.model_management`. Device questions
 * are answered inside each Python process (they concern its own torch); what crosses
 * processes lives here: the interrupt flag, which the host drives and every live process
 * receives at once as an event (a running node stops at its next check), and freeing
 * memory, fanned out to every live process.
 * @module
 */
import { currentCall, defaultRegistry } from "../rpc/services.ts";

/** The processes a service can reach: the host core's live ones. */
export interface ProcessFanOut {
  /** Running processes, by name, with a way to send them an event. */
  live(): ReadonlyArray<{ readonly name: string; event(service: string, method: string, args?: readonly unknown[]): boolean }>;
}

/** What packs may call of `ModelManagement` (Python's `comfy.model_management`). */
export const MODEL_MANAGEMENT_EXPOSED: readonly string[] = ["interrupt_current_processing", "processing_interrupted", "soft_empty_cache", "unload_all_models"];

/** The service name events to the Python side use (the child's `on_event` handlers). */
export const MODEL_MANAGEMENT_SERVICE = "ModelManagement";

/**
 * Interrupts and memory release across every Python process.
 *
 * @example
 * ```ts
 * const mm = new ModelManagement(core);
 * mm.interrupt();        // the running node raises InterruptProcessingException
 * mm.interrupt(false);   // a new prompt starts clean
 * ```
 */
export class ModelManagement {
  #processes: ProcessFanOut | undefined;
  #interrupted = false;

  constructor(processes?: ProcessFanOut) {
    this.#processes = processes;
  }

  /** Connects the service to the processes it fans out to (host-side only: Python cannot call it). */
  readonly bind = (processes: ProcessFanOut): void => {
    this.#processes = processes;
  };

  #send(method: string, args: readonly unknown[], except?: string): number {
    let sent = 0;
    for (const p of this.#processes?.live() ?? []) {
      if (except !== undefined && p.name === except) continue;
      try {
        if (p.event(MODEL_MANAGEMENT_SERVICE, method, args)) sent++;
      } catch {
        // a process that is going away misses the event
      }
    }
    return sent;
  }

  /**
   * Sets (or, with `false`, clears) the interrupt flag here and in every live process.
   * @returns how many processes were told.
   */
  interrupt(value = true): number {
    this.#interrupted = value;
    return this.#send("interrupt", [value]);
  }

  /** Whether an interrupt is pending on the host. */
  processingInterrupted(): boolean {
    return this.#interrupted;
  }

  /** Releases cached accelerator memory in every live process (but `except`). */
  softEmptyCache(force = false, except?: string): number {
    return this.#send("soft_empty_cache", [force], except);
  }

  /** Drops loaded models in every live process (but `except`). */
  unloadAllModels(except?: string): number {
    return this.#send("unload_all_models", [], except);
  }

  // --- what Python calls (ComfyUI's names) -----------------------------------------------------

  /** From a node: interrupts (or resumes) processing everywhere. */
  interrupt_current_processing(value = true): void {
    this.interrupt(value !== false);
  }

  /** From a node: whether an interrupt is pending. */
  processing_interrupted(): boolean {
    return this.#interrupted;
  }

  /** From a node, after freeing its own: the other live processes free theirs. */
  soft_empty_cache(force = false): void {
    this.softEmptyCache(Boolean(force), currentCall()?.caller);
  }

  /** From a node, after dropping its own: the other live processes drop theirs. */
  unload_all_models(): void {
    this.unloadAllModels(currentCall()?.caller);
  }
}

// What `@service("ModelManagement")` does; decorator syntax is not used because the test toolchain does not compile it.
defaultRegistry.register("ModelManagement", ModelManagement, { expose: MODEL_MANAGEMENT_EXPOSED });
