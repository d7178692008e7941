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
  | "PERMISSION_DENIED"
  | "IO_FAILED"
  | "INTERNAL"
  | "SANDBOX"
  | "DENIED"
  | "RAY";

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

/**
 * The permission a runtime refused, when `err` is such a refusal: Deno without `-A` throws
 * `NotCapable` (or `PermissionDenied`) errors whose message names the flag
 * (`Requires run access to "python3", run again with the --allow-run flag`).
 */
export function deniedPermission(err: unknown): string | null {
  if (!(err instanceof Error)) return null;
  const flag = /--allow-[a-z-]+/.exec(err.message)?.[0];
  if (err.name === "NotCapable" || err.name === "PermissionDenied") return flag ?? "-A";
  return flag && /^Requires \w+ access/.test(err.message) ? flag : null;
}

/**
 * A `PERMISSION_DENIED` error for a refusal {@link deniedPermission} recognizes, saying which
 * permission is missing and what pyisolate needs; `null` for any other error.
 * @param doing what was being done, e.g. `"checking the host Python /usr/bin/python3"`
 */
export function permissionError(err: unknown, doing: string): PyisolateError | null {
  const flag = deniedPermission(err);
  if (!flag) return null;
  return new PyisolateError(
    "PERMISSION_DENIED",
    `The runtime refused ${flag === "-A" ? "a permission" : `the ${flag} permission`} while ${doing}: ${(err as Error).message.replace(/\.?$/, "")}. ` +
      "Under Deno, run with -A (pyisolate starts processes, opens Unix sockets, reads environment variables and maps /dev/shm: --allow-run, --allow-read, --allow-write, --allow-env, --allow-net, --allow-sys and --allow-ffi at least, and -A for /dev/shm).",
    { cause: err },
  );
}

/**
 * `err` as a {@link PyisolateError}: itself when it is one; a runtime's refused permission
 * (`PERMISSION_DENIED`, naming it); a file-system error by its errno (`EACCES` → `PERMISSION_DENIED`,
 * `ENOENT` → `NOT_FOUND`, others `IO_FAILED`); anything else `INTERNAL`. The message says what
 * was being done and keeps the original as `cause`.
 * @param doing what was being done, e.g. `"starting the host"`
 */
export function asPyisolateError(err: unknown, doing: string): PyisolateError {
  if (err instanceof PyisolateError) return err;
  const denied = permissionError(err, doing);
  if (denied) return denied;
  const message = err instanceof Error ? err.message : String(err);
  const errno = (err as { code?: unknown } | null)?.code;
  const path = (err as { path?: unknown } | null)?.path;
  const file = typeof path === "string" ? { file: path } : {};
  if (errno === "EACCES" || errno === "EPERM" || errno === "EROFS") {
    return new PyisolateError("PERMISSION_DENIED", `Permission denied while ${doing}: ${message}. Check the permissions of ${typeof path === "string" ? path : "the file"}, or point pyisolate at a folder it may write.`, { cause: err, ...file });
  }
  if (errno === "ENOENT") return new PyisolateError("NOT_FOUND", `Not found while ${doing}: ${message}.`, { cause: err, ...file });
  if (typeof errno === "string" && /^E[A-Z]+$/.test(errno)) return new PyisolateError("IO_FAILED", `${errno} while ${doing}: ${message}.`, { cause: err, ...file });
  return new PyisolateError("INTERNAL", `Unexpected error while ${doing}: ${message}. This is a bug in pyisolate; please report it with the output of --verbose.`, { cause: err });
}
