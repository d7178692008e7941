/**
 * Files in the host's folders: listing a folder tree (with the directories' mtimes, so a
 * listing knows when it is stale), annotated names, and names that cannot leave their folder.
 * Private to `node_api/` (`folder_paths.ts` re-exports the public helpers).
 * @module
 */
import { readdirSync, statSync, type Stats } from "node:fs";
import { isAbsolute, join, normalize, relative, resolve, sep } from "node:path";
import { PyisolateError } from "../errors.ts";

/** A folder tree's files and each visited directory's mtime. */
export interface Listing {
  files: string[];
  dirs: Map<string, number>;
}

/** The stat of `path`, or null. */
export function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

/** Splits `"name.png [output]"` into the bare name and its folder kind. */
export function splitAnnotation(name: string): { name: string; kind: "input" | "output" | "temp" | null } {
  for (const kind of ["output", "input", "temp"] as const) {
    const suffix = `[${kind}]`;
    if (name.endsWith(suffix)) return { name: name.slice(0, -(suffix.length + 1)), kind };
  }
  return { name, kind: null };
}

/**
 * Joins a file name to a folder, refusing names that are absolute or climb out of it.
 * @throws {PyisolateError} `VALIDATION` naming the file and the folder.
 */
export function resolveInside(folder: string, name: string, what = "File name"): string {
  if (typeof name !== "string" || name === "") {
    throw new PyisolateError("VALIDATION", `${what} must be a non-empty file name, got ${JSON.stringify(name)}.`, { file: String(name) });
  }
  const slashed = name.replace(/\\/g, "/");
  if (isAbsolute(name) || slashed.startsWith("/") || /^[A-Za-z]:\//.test(slashed)) {
    throw new PyisolateError("VALIDATION", `${what} "${name}" is an absolute path; give a name relative to ${folder}.`, { file: name });
  }
  const full = resolve(folder, normalize(slashed));
  const rel = relative(resolve(folder), full);
  if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new PyisolateError("VALIDATION", `${what} "${name}" climbs out of ${folder} with ".."; give a name inside the folder.`, { file: name });
  }
  return full;
}

/** Every file under `dir` (relative paths), following symlinks, skipping `.git`; and each visited directory's mtime. */
export function listTree(dir: string): Listing {
  const files: string[] = [];
  const dirs = new Map<string, number>();
  const seen = new Set<string>();
  const walk = (current: string): void => {
    const st = statOrNull(current);
    if (!st?.isDirectory()) return;
    dirs.set(current, st.mtimeMs);
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) return;
    seen.add(key);
    let names: string[];
    try {
      names = readdirSync(current);
    } catch {
      return;
    }
    for (const entry of names) {
      const full = join(current, entry);
      const est = statOrNull(full);
      if (!est) continue;
      if (est.isDirectory()) {
        if (entry !== ".git") walk(full);
      } else {
        files.push(relative(dir, full));
      }
    }
  };
  walk(dir);
  return { files, dirs };
}

