/**
 * Ctrl-C for a command that runs a prompt: the first SIGINT asks the command to stop
 * gracefully (the running prompt is interrupted, then the host closes: processes stop and
 * every tensor segment is released) and the command exits 130; a second one exits at once,
 * after killing the processes and unlinking this host's segments synchronously.
 * @module
 */
import process from "node:process";

/** Exit code of a command stopped by Ctrl-C (128 + SIGINT). */
export const INTERRUPTED_EXIT_CODE = 130;

/** Listens for Ctrl-C while a command runs. */
export class CtrlC {
  /** How many SIGINTs arrived. */
  count = 0;
  readonly #onFirst: () => void;
  readonly #say: (line: string) => void;
  readonly #listener = (): void => this.#signal();

  /**
   * @param onFirst what the first Ctrl-C does (interrupt the prompt, or mark start-up as aborted)
   * @param say writes a line for people (stderr)
   */
  constructor(onFirst: () => void, say: (line: string) => void) {
    this.#onFirst = onFirst;
    this.#say = say;
    process.on("SIGINT", this.#listener);
  }

  /** Whether Ctrl-C was pressed. */
  get interrupted(): boolean {
    return this.count > 0;
  }

  #signal(): void {
    this.count++;
    if (this.count === 1) {
      this.#say("^C: interrupting… (press Ctrl-C again to exit at once)");
      this.#onFirst();
      return;
    }
    this.#say("^C again: exiting now.");
    // The host's exit hook kills its processes and removes its segment folder.
    process.exit(INTERRUPTED_EXIT_CODE);
  }

  /** Stops listening. */
  dispose(): void {
    process.off("SIGINT", this.#listener);
  }
}
