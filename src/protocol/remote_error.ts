/**
 * Exceptions across the wire: {@link RemoteError} is a Python exception (or one of another
 * process) as TypeScript sees it, and {@link exceptionMapOf} turns any thrown value into the
 * exception map the protocol carries (tag 41504, and every `err` answer).
 * @module
 */
import { PyisolateError } from "../errors.ts";
import type { ExceptionMap } from "./messages.ts";

/** Where a {@link RemoteError} was raised: the pack and the `Service.method` called. */
export interface RemoteErrorPlace {
  pack?: string;
  method?: string;
}

/**
 * An exception raised in Python (or in another process) that reached TypeScript: as the
 * answer to a call (then {@link RemoteError.pack} and {@link RemoteError.method} say where),
 * or as a value (tag 41504). The message names the pack, the method and the cause, and ends
 * with the Python traceback.
 */
export class RemoteError extends PyisolateError {
  /** Qualified Python type name, e.g. `"ValueError"`. */
  readonly pythonType: string;
  /** The exception's own message (`str(e)`). */
  readonly pythonMessage: string;
  /** Formatted Python traceback (`""` when the error was raised in TypeScript). */
  readonly traceback: string;
  /** The call that raised, as `Service.method`. */
  readonly method?: string;

  constructor(exc: ExceptionMap, place: RemoteErrorPlace = {}) {
    const type = String(exc.type ?? "Exception");
    const msg = String(exc.message ?? "");
    const tb = String(exc.traceback ?? "");
    const where =
      place.pack !== undefined && place.method !== undefined
        ? `${place.method} in pack "${place.pack}" raised ${type}`
        : place.pack !== undefined
          ? `Pack "${place.pack}" raised ${type}`
          : `Python raised ${type}`;
    super("REMOTE", `${where}: ${msg}${tb ? `\n${tb.trimEnd()}` : ""}`, place.pack !== undefined ? { pack: place.pack } : {});
    this.name = "RemoteError";
    this.pythonType = type;
    this.pythonMessage = msg;
    this.traceback = tb;
    if (place.method !== undefined) this.method = place.method;
  }
}

/**
 * The exception map for any thrown value: a {@link RemoteError} keeps its Python type and
 * traceback; `NOT_CALLABLE` errors become `pyisolate.NotCallable`; other errors carry their
 * JS name and message with an empty traceback.
 */
export function exceptionMapOf(err: unknown): ExceptionMap {
  if (err instanceof RemoteError) return { type: err.pythonType, message: err.pythonMessage, traceback: err.traceback };
  if (err instanceof PyisolateError) {
    const type = err.code === "NOT_CALLABLE" ? "pyisolate.NotCallable" : err.code === "TIMEOUT" ? "TimeoutError" : `pyisolate.${err.name}`;
    return { type, message: err.message, traceback: "" };
  }
  if (err instanceof Error) return { type: err.name || "Error", message: err.message, traceback: "" };
  return { type: "Error", message: String(err), traceback: "" };
}
