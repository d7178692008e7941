/**
 * The server's log for `/internal/logs`: the last lines the host logged, with their time,
 * as ComfyUI's `app.logger` keeps what it prints (300 entries of `{t, m}`). Clients that
 * subscribed (`PATCH /internal/logs/subscribe`) get each new line as a `logs` message.
 * @module
 */
import type { Logger, LogSink } from "../log.ts";

/** One log entry: ISO time and the text (ending in a newline). */
export interface LogEntry {
  t: string;
  m: string;
}

/** A ring of the last log lines, fed by a {@link Logger}'s sink. */
export class LogBuffer {
  readonly capacity: number;
  #entries: LogEntry[] = [];
  #listeners = new Set<(entry: LogEntry) => void>();

  constructor(capacity = 300) {
    this.capacity = capacity;
  }

  /** Records every line `logger` writes from now on (its sink is wrapped); returns the undo. */
  attach(logger: Logger): () => void {
    const sink: LogSink = logger.sink;
    const wrapped: LogSink = (level, line) => {
      if (level !== "debug") this.push(`${level === "warn" ? "warning: " : level === "error" ? "error: " : ""}${line}`);
      sink(level, line);
    };
    logger.sink = wrapped;
    return () => {
      if (logger.sink === wrapped) logger.sink = sink;
    };
  }

  push(line: string): void {
    const entry = { t: new Date().toISOString(), m: `${line}\n` };
    this.#entries.push(entry);
    if (this.#entries.length > this.capacity) this.#entries.shift();
    for (const l of this.#listeners) l(entry);
  }

  entries(): LogEntry[] {
    return [...this.#entries];
  }

  /** Calls `listener` with each new entry; returns the function that stops it. */
  onEntry(listener: (entry: LogEntry) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
