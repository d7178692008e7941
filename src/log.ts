/**
 * Host log lines. Lines about a pack follow pyisolate's format, `][ <Pack> <message>`
 * (e.g. `][ MyAwesomeNode loaded from cache`); a child's own prints become
 * `][ <Pack> | <line>` (stdout) or `][ <Pack> ! <line>` (stderr). The sink is replaceable so that embedders and tests can capture lines.
 * An embedding program may pass its own logger instead — anything with `debug`, `info`, `warn`
 * and `error` methods (`console`, pino, winston): {@link asLogger} adapts it.
 * @module
 */
import { PyisolateError } from "./errors.ts";

/** Severity of a log line. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Receives every log line. */
export type LogSink = (level: LogLevel, line: string) => void;

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * A sink writing lines to `write` at `info` and above (`PYISOLATE_LOG=debug` shows more),
 * with `warning: ` / `error: ` prefixes.
 */
export function streamSink(write: (text: string) => unknown): LogSink {
  return (level, line) => {
    const min = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.PYISOLATE_LOG;
    const threshold = order[(min as LogLevel) ?? "info"] ?? order.info;
    if (order[level] < threshold) return;
    const prefix = level === "warn" ? "warning: " : level === "error" ? "error: " : "";
    write(`${prefix}${line}\n`);
  };
}

/** Writes lines to stderr at `info` and above (`PYISOLATE_LOG=debug` shows more). */
export const stderrSink: LogSink = streamSink((text) => (globalThis as { process?: { stderr?: { write(s: string): void } } }).process?.stderr?.write(text));

/** A logger bound to a sink. */
export class Logger {
  sink: LogSink;

  constructor(sink: LogSink = stderrSink) {
    this.sink = sink;
  }

  /** A line about a pack, in pyisolate's `][ <Pack> <message>` format. */
  pack(pack: string, message: string, level: LogLevel = "info"): void {
    this.sink(level, `][ ${pack} ${message}`);
  }

  /** A line the child process printed, prefixed with its pack (or process) name. */
  child(pack: string, stream: "stdout" | "stderr", line: string): void {
    this.sink("info", stream === "stderr" ? `][ ${pack} ! ${line}` : `][ ${pack} | ${line}`);
  }

  debug(line: string): void {
    this.sink("debug", line);
  }
  info(line: string): void {
    this.sink("info", line);
  }
  warn(line: string): void {
    this.sink("warn", line);
  }
  error(line: string): void {
    this.sink("error", line);
  }
}

/** The default logger. Replace `log.sink` to capture lines. */
export const log: Logger = new Logger();

/**
 * A logger of the embedding program: `console`, a pino or winston logger, or any object with
 * these four methods. Each receives one line; its own level filter applies (pyisolate sends
 * every level, `debug` included).
 */
export interface LoggerLike {
  debug(message: string): unknown;
  info(message: string): unknown;
  warn(message: string): unknown;
  error(message: string): unknown;
}

const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/**
 * A {@link Logger} for what an option received: the default logger for nothing, a Logger as it
 * is, any {@link LoggerLike} wrapped (its methods are called on it, so `this` stays bound).
 * @throws {PyisolateError} `USAGE` for an object that lacks one of the four methods.
 * @example
 * asLogger(console).pack("MyPack", "loaded from cache"); // console.info("][ MyPack loaded from cache")
 */
export function asLogger(logger: Logger | LoggerLike | undefined): Logger {
  if (logger === undefined) return log;
  if (logger instanceof Logger) return logger;
  const missing = LEVELS.filter((l) => typeof (logger as unknown as Record<string, unknown> | null)?.[l] !== "function");
  if (missing.length > 0) {
    throw new PyisolateError(
      "USAGE",
      `The logger option must have debug, info, warn and error methods (like console or a pino logger); it has no ${missing.join(", ")}. Pass such an object, or a Logger.`,
    );
  }
  return new Logger((level, line) => void logger[level](line));
}
