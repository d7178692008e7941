/**
 * The few error types pyisolate throws. Every error carries a `code` and the data a caller
 * needs (which pack, which node, which file); messages are sentences that quote the value and
 * say what to do next.
 * @module
 */

/** What went wrong, as a closed set a caller can switch on. */
export type PyisolateErrorCode =
  | "MANIFEST_INVALID"
  | "ENV_BUILD_FAILED"
  | "PYTHON_NOT_FOUND"
  | "UV_NOT_FOUND"
  | "PROCESS_FAILED"
  | "PROCESS_EXITED"
  | "PROTOCOL"
  | "REMOTE"
  | "TIMEOUT"
  | "CANCELLED"
  | "NOT_CALLABLE"
  | "USAGE"
  | "VALIDATION"
  | "NOT_FOUND"
  | "INTERRUPTED"
  | "TYPE"
  | "SANDBOX"
  | "DENIED";

/** Fields an error may carry beyond its message. */
export interface PyisolateErrorDetails {
  /** The node pack concerned. */
  pack?: string;
  /** The node (class name or prompt id) concerned. */
  node?: string;
  /** A file concerned (a manifest, say). */
  file?: string;
  /** The underlying error. */
  cause?: unknown;
}

/** Base class of every error pyisolate throws. */
export class PyisolateError extends Error {
  readonly code: PyisolateErrorCode;
  readonly pack?: string;
  readonly node?: string;
  readonly file?: string;

  constructor(code: PyisolateErrorCode, message: string, details: PyisolateErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "PyisolateError";
    this.code = code;
    if (details.pack !== undefined) this.pack = details.pack;
    if (details.node !== undefined) this.node = details.node;
    if (details.file !== undefined) this.file = details.file;
  }
}
