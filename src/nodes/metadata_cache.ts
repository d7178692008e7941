/**
 * The metadata cache: what a pack registers (node schemas, routes, web directory), stored
 * so that a later start can register every node without starting any process.
 *
 * One JSON file per pack, `<cacheDir>/metadata/<pack>.json`, holding `{key, data, createdAt}`.
 * The key is a sha256 over the pack's `.py` files (relative path, size, mtime), the
 * manifest's bytes and the environment fingerprint; any change gives a new key, and a stored
 * entry with another key is a miss. The data's shape belongs to the caller.
 * @module
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { atomicWriteFile, safeComponent } from "../util/fs.ts";
import { log as defaultLog, type Logger } from "../log.ts";
import type { PackInfo } from "../manifest/manifest.ts";

/** What the cache holds for a pack. */
export type CacheState = "hit" | "stale" | "none";

/** A stored entry. */
export interface CacheEntry<T = unknown> {
  key: string;
  data: T;
  createdAt: string;
}

// v2: entries hold the routes a pack registers.
const KEY_FORMAT = "pyisolate-metadata-v2";
/** Directories never part of a pack's code: caches, VCS data, environments, JS dependencies. */
function skipDir(name: string): boolean {
  return name === "__pycache__" || name === "node_modules" || name.startsWith(".");
}

/** Every `.py` file of a pack directory as `[relative path, size, mtimeMs]`, sorted by path. */
export function packPythonFiles(root: string): Array<[string, number, number]> {
  const out: Array<[string, number, number]> = [];
  const seen = new Set<string>();
  const walk = (dir: string) => {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      return;
    }
    if (seen.has(real)) return;
    seen.add(real);
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const ent of entries) {
      const full = join(dir, ent.name);
      let isDir = ent.isDirectory();
      let isFile = ent.isFile();
      if (ent.isSymbolicLink()) {
        try {
          const st = statSync(full);
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch {
          continue;
        }
      }
      if (isDir) {
        if (!skipDir(ent.name)) walk(full);
      } else if (isFile && ent.name.endsWith(".py")) {
        const st = statSync(full);
        out.push([relative(root, full).split(sep).join("/"), st.size, Math.floor(st.mtimeMs)]);
      }
    }
  };
  const st = statSync(root);
  if (st.isFile()) {
    out.push([root.split(sep).pop() ?? root, st.size, Math.floor(st.mtimeMs)]);
  } else {
    walk(root);
  }
  out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return out;
}

/**
 * Stores each pack's metadata under a key derived from its files and environment.
 * @example
 * const cache = new MetadataCache(".pyisolate");
 * const key = cache.key(pack, envs.fingerprint(pack));
 * const nodes = cache.get(pack, key);
 * if (nodes) logCacheHit(pack); else await cache.put(pack, key, await discoverNodes(pack));
 */
export class MetadataCache {
  /** `<cacheDir>/metadata`. */
  readonly dir: string;

  constructor(cacheDir: string) {
    this.dir = join(resolve(cacheDir), "metadata");
  }

  /**
   * The cache key of a pack: sha256 over its path, every `.py` file's relative path, size and
   * mtime (skipping `__pycache__`, `node_modules` and dot-directories such as `.git`), the
   * manifest file's bytes, and the environment fingerprint.
   */
  key(pack: PackInfo, envFingerprint: string): string {
    const h = createHash("sha256");
    h.update(`${KEY_FORMAT}\0${pack.path}\0${envFingerprint}\0`);
    for (const [rel, size, mtime] of packPythonFiles(pack.path)) h.update(`${rel}\0${size}\0${mtime}\n`);
    h.update("\0manifest\0");
    if (pack.manifestFile) {
      try {
        h.update(readFileSync(pack.manifestFile));
      } catch {
        h.update("\0missing\0");
      }
    }
    return h.digest("hex");
  }

  /** The file that holds a pack's entry. */
  file(pack: PackInfo | string): string {
    return join(this.dir, `${safeComponent(typeof pack === "string" ? pack : pack.name)}.json`);
  }

  #read<T>(pack: PackInfo | string): CacheEntry<T> | null {
    try {
      const entry = JSON.parse(readFileSync(this.file(pack), "utf8")) as CacheEntry<T>;
      return typeof entry?.key === "string" && "data" in entry ? entry : null;
    } catch {
      return null;
    }
  }

  /** The stored data when its key is `key`; null on a miss (absent, other key, or unreadable). */
  get<T = unknown>(pack: PackInfo | string, key: string): T | null {
    const entry = this.#read<T>(pack);
    return entry !== null && entry.key === key ? entry.data : null;
  }

  /** Stores `data` (JSON-serializable) for the pack under `key`, atomically, replacing any older entry. */
  async put(pack: PackInfo | string, key: string, data: unknown): Promise<void> {
    const entry: CacheEntry = { key, data, createdAt: new Date().toISOString() };
    await atomicWriteFile(this.file(pack), JSON.stringify(entry));
  }

  /** `hit` when an entry with `key` is stored, `stale` when one with another key is, else `none`. */
  state(pack: PackInfo | string, key: string): CacheState {
    const entry = this.#read(pack);
    if (entry === null) return "none";
    return entry.key === key ? "hit" : "stale";
  }

  /** Forgets the pack's entry. */
  async invalidate(pack: PackInfo | string): Promise<void> {
    await rm(this.file(pack), { force: true });
  }
}

/** Logs the cache-hit line, `][ <Pack> loaded from cache`. */
export function logCacheHit(pack: PackInfo | string, logger: Logger = defaultLog): void {
  logger.pack(typeof pack === "string" ? pack : pack.name, "loaded from cache");
}
