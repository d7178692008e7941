/**
 * Small file-system helpers shared by the manifest, environment and cache code: atomic
 * writes, PATH lookup, tree removal, display paths, and an exclusive lock file that works
 * between processes (and between two managers inside one process).
 * @module
 */
import { closeSync, constants, accessSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { mkdir, rename, rm, unlink, utimes, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { delimiter, dirname, isAbsolute, join, relative, sep } from "node:path";
import process from "node:process";
import { permissionError } from "../errors.ts";
import { pidAlive, unref } from "./os.ts";

/** A short random hex string (for temp names and lock tokens). */
export function randomHex(bytes = 6): string {
  return randomBytes(bytes).toString("hex");
}

/**
 * Writes a file atomically: the bytes go to a sibling temp file that is then renamed over
 * `path`, so a reader sees the old content or the new, never half of it.
 */
export async function atomicWriteFile(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomHex()}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Removes a file or directory tree; a missing path is not an error. */
export async function removeTree(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Whether `path` is an existing file the current user may execute.
 * @throws {PyisolateError} `PERMISSION_DENIED` when the runtime may not look (Deno without --allow-read or --allow-sys).
 */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch (err) {
    // Deno without the permission to look (--allow-read, --allow-sys): say so, not "not executable".
    const denied = permissionError(err, `checking whether ${path} is an executable file`);
    if (denied) throw denied;
    return false;
  }
}

/**
 * Looks an executable up on PATH the way a shell does.
 * @returns its absolute path, or null when no PATH entry has it.
 */
export function which(name: string, pathVar: string | undefined = process.env.PATH): string | null {
  if (name.includes("/")) return isExecutable(name) ? name : null;
  for (const dir of (pathVar ?? "").split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

/** A path as a user wants to read it: relative to the working directory when under it. */
export function displayPath(path: string, cwd: string = process.cwd()): string {
  const rel = relative(cwd, path);
  if (rel === "") return ".";
  if (rel.startsWith("..") || isAbsolute(rel)) return path;
  return rel.split(sep).join("/");
}

/** Makes a name safe as one path component (pack names become directory names). */
export function safeComponent(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_");
  return cleaned === "" ? "_" : cleaned;
}

/** Who holds a lock file (its JSON content). */
export interface LockHolder {
  pid: number;
  hostname: string;
  token: string;
  createdAt: string;
}

/** Options for {@link acquireLock}. */
export interface LockOptions {
  /** How often to retry while another process holds the lock. @default 200 */
  pollMs?: number;
  /** Called once when the lock is busy, with its holder (null when unreadable). */
  onWait?: (holder: LockHolder | null) => void;
  /** A lock of another machine whose file was not refreshed for this long is stale. @default 60000 */
  foreignStaleMs?: number;
}

/** Tokens of the locks this process holds: a lock with our pid but an unknown token is a leftover. */
const heldTokens = new Set<string>();
const HEARTBEAT_MS = 10_000;

function readHolder(path: string): LockHolder | null {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as Partial<LockHolder>;
    if (typeof parsed.pid !== "number" || typeof parsed.token !== "string") return null;
    return {
      pid: parsed.pid,
      hostname: String(parsed.hostname ?? ""),
      token: parsed.token,
      createdAt: String(parsed.createdAt ?? ""),
    };
  } catch {
    return null;
  }
}

function mtimeAge(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Whether the lock's holder is gone (dead pid on this machine, or a silent foreign holder). */
function isStale(path: string, holder: LockHolder | null, foreignStaleMs: number): boolean {
  if (holder === null) {
    // Unreadable: a writer between create and write, or a corrupt file. Give it a moment.
    return mtimeAge(path) > 5_000;
  }
  if (holder.hostname !== hostname()) return mtimeAge(path) > foreignStaleMs;
  if (holder.pid === process.pid) return !heldTokens.has(holder.token);
  return !pidAlive(holder.pid);
}

function tryCreate(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o644);
  } catch (err) {
    if ((err as { code?: string }).code === "EEXIST") return false;
    throw err;
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Removes a stale lock, guarded by a second lock so that two stealers cannot both win. */
async function stealStale(path: string, staleToken: string | null): Promise<void> {
  const guard = `${path}.steal`;
  if (!tryCreate(guard, String(process.pid))) {
    if (mtimeAge(guard) > 10_000) await rm(guard, { force: true });
    return;
  }
  try {
    const now = readHolder(path);
    if ((now?.token ?? null) === staleToken) await unlink(path).catch(() => {});
  } finally {
    await rm(guard, { force: true });
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Takes an exclusive lock file (created with `O_EXCL`, holding pid, hostname and a token).
 * Waits while a live holder has it; removes it when its holder is dead. The holder
 * refreshes the file's mtime while it holds the lock, so other machines sharing the
 * directory can tell a live holder from a dead one.
 * @returns a function that releases the lock.
 */
export async function acquireLock(path: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const pollMs = opts.pollMs ?? 200;
  const foreignStaleMs = opts.foreignStaleMs ?? 60_000;
  await mkdir(dirname(path), { recursive: true });
  const token = randomHex(8);
  const content = JSON.stringify({ pid: process.pid, hostname: hostname(), token, createdAt: new Date().toISOString() });
  let told = false;
  for (;;) {
    if (tryCreate(path, content)) break;
    const holder = readHolder(path);
    if (isStale(path, holder, foreignStaleMs)) {
      await stealStale(path, holder?.token ?? null);
      continue;
    }
    if (!told) {
      told = true;
      opts.onWait?.(holder);
    }
    await sleep(pollMs);
  }
  heldTokens.add(token);
  const beat = setInterval(() => {
    const t = new Date();
    utimes(path, t, t).catch(() => {});
  }, HEARTBEAT_MS);
  unref(beat);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    clearInterval(beat);
    heldTokens.delete(token);
    if (readHolder(path)?.token === token) await unlink(path).catch(() => {});
  };
}
