/**
 * What the CLI's commands draw: text tables and live progress lines.
 * @module
 */
import type { BuildProgress } from "../env/env_manager.ts";

/** A stream the CLI writes to. */
export interface CliStream {
  write(text: string): unknown;
  /** Whether it is a terminal (the build shows live progress lines then). */
  isTTY?: boolean;
  /** The terminal's width, when it is one. */
  columns?: number;
}

/** Where the CLI writes. @default process.stdout / process.stderr */
export interface CliIo {
  stdout: CliStream;
  stderr: CliStream;
}

/** Pads columns into a text table. */
export function formatTable(headers: string[], rows: string[][]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

/** Live per-pack progress lines on a terminal; plain lines elsewhere. */
export class ProgressView {
  readonly #io: CliIo;
  readonly #tty: boolean;
  readonly #lines = new Map<string, { phase: BuildProgress["phase"]; message: string; started: number; done?: number }>();
  #drawn = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(io: CliIo, packs: string[]) {
    this.#io = io;
    this.#tty = Boolean(io.stdout.isTTY);
    const now = Date.now();
    for (const p of packs) this.#lines.set(p, { phase: "queued", message: "queued", started: now });
    if (this.#tty) {
      this.#draw();
      this.#timer = setInterval(() => this.#draw(), 250);
    }
  }

  update(p: BuildProgress): void {
    const line = this.#lines.get(p.pack);
    if (!line) return;
    if (line.phase === "queued" && p.phase !== "queued") line.started = Date.now() - p.elapsedMs;
    const phaseChanged = line.phase !== p.phase;
    line.phase = p.phase;
    line.message = p.message;
    if (p.phase === "built" || p.phase === "cached" || p.phase === "failed" || p.phase === "shared") line.done = Date.now();
    if (!this.#tty) {
      if (p.phase === "queued") return;
      // A failure's full text follows separately (the build summary, the host's log line).
      if (p.phase === "failed") this.#io.stdout.write(`][ ${p.pack} environment build failed (the error follows)\n`);
      else if (phaseChanged || p.phase === "install" || p.phase === "venv") this.#io.stdout.write(`][ ${p.pack} ${p.message}\n`);
    }
  }

  #draw(): void {
    const mark: Record<BuildProgress["phase"], string> = {
      queued: "·", waiting: "…", venv: "⠿", install: "⠿", built: "✓", cached: "✓", failed: "✗", shared: "-",
    };
    const width = Math.max(...[...this.#lines.keys()].map((k) => k.length));
    // A line longer than the terminal would wrap and break the cursor-up redraw.
    const columns = Math.max(40, (this.#io.stdout.columns ?? 100) - 1);
    let text = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : "";
    for (const [pack, l] of this.#lines) {
      const secs = l.phase === "queued" ? "" : `${(((l.done ?? Date.now()) - l.started) / 1000).toFixed(1)}s`.padStart(6);
      let line = `${mark[l.phase]} ${pack.padEnd(width)} ${secs}  ${l.message}`;
      if ([...line].length > columns) line = `${[...line].slice(0, columns - 3).join("")}...`;
      text += `\x1b[2K${line}\n`;
    }
    this.#drawn = this.#lines.size;
    this.#io.stdout.write(text);
  }

  /** Whether {@link ProgressView.finish} was called. */
  finished = false;

  /** Stops the live redraw and draws the final state once. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#tty) this.#draw();
  }
}


/** Braille spinner frames. */
export const SPINNER: readonly string[] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/**
 * One live line at the bottom of a terminal: a spinner, a label, the time since it was set and
 * an optional detail, redrawn every 100 ms. Write anything else only after {@link clear}
 * (the next tick draws the line again below it). Off a terminal it draws nothing.
 */
export class StatusLine {
  readonly #stream: CliStream;
  readonly tty: boolean;
  #label = "";
  #detail = "";
  #since = 0;
  #frame = 0;
  #shown = false;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(stream: CliStream) {
    this.#stream = stream;
    this.tty = Boolean(stream.isTTY);
  }

  /** Shows `label` (restarting the clock unless `keepClock`), with an optional detail after the time. */
  set(label: string, detail = "", keepClock = false): void {
    if (!keepClock || this.#label === "") this.#since = performance.now();
    this.#label = label;
    this.#detail = detail;
    if (!this.tty) return;
    this.#timer ??= setInterval(() => this.draw(), 100);
    this.draw();
  }

  /** Changes the detail only. */
  detail(detail: string): void {
    this.#detail = detail;
  }

  /** Seconds since the label was set. */
  get elapsedMs(): number {
    return performance.now() - this.#since;
  }

  draw(): void {
    if (!this.tty || this.#label === "") return;
    const secs = `${(this.elapsedMs / 1000).toFixed(1)}s`;
    const columns = Math.max(40, (this.#stream.columns ?? 100) - 1);
    let line = `${SPINNER[this.#frame++ % SPINNER.length]} ${this.#label} ${secs}${this.#detail ? `  ${this.#detail}` : ""}`;
    if ([...line].length > columns) line = `${[...line].slice(0, columns - 3).join("")}...`;
    this.#stream.write(`\x1b[2K\r${line}`);
    this.#shown = true;
  }

  /** Erases the line (it comes back on the next tick while a label is set). */
  clear(): void {
    if (this.#shown) this.#stream.write("\x1b[2K\r");
    this.#shown = false;
  }

  /** Erases the line and stops redrawing. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#label = "";
    this.clear();
  }
}
