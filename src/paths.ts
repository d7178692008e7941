/**
 * Where the package's own files are. This module sits one folder below the package root both
 * as source (`src/paths.ts`) and bundled (`dist/<chunk>.js`), so `../` from it is the root in
 * both cases — unlike modules deeper in `src/`, whose depth the bundle does not keep.
 *
 * Loaded over HTTPS (Deno importing the package from JSR), the package's Python files are not
 * on disk: {@link ensurePackageFiles} copies `python/` once into the user-level folder, checked
 * against the registry's checksums, and {@link packageFile} points there.
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { pyisolateHome } from "./env/host_python.ts";
import { PyisolateError } from "./errors.ts";
import { RUNTIME_VERSION } from "./version.ts";

const here = import.meta.url;

/** Whether this code runs from the TypeScript sources rather than from the `dist/` bundle. */
export const FROM_SOURCE: boolean = here.endsWith(".ts");

/** A file or folder of the package, by its path from the package root (`"python"`, `"workers/broker.ts"`). */
export function packageUrl(rel: string): URL {
  return new URL(`../${rel}`, here);
}

/** Whether the package's files are on disk (not loaded over HTTP(S), as from JSR). */
export const ON_DISK: boolean = here.startsWith("file:");

/** Where {@link ensurePackageFiles} copied `python/`, once it has. */
let copied: string | null = null;

/**
 * The path on disk of a file under the package's `python/` folder (or of the folder itself).
 * @throws {PyisolateError} `INTERNAL` when the package is remote and not yet copied.
 */
export function packageFile(rel: string): string {
  if (ON_DISK) return fileURLToPath(packageUrl(rel));
  if (copied === null || !(rel === "python" || rel.startsWith("python/"))) {
    throw new PyisolateError("INTERNAL", `The package is loaded from ${packageUrl("").href}; await ensurePackageFiles() before using ${rel}.`);
  }
  return join(copied, rel);
}

/** The package's `python/` folder: the Python runtime's import root. */
export function pythonRoot(): string {
  return packageFile("python");
}

/** A JSR version's file list (`<version>_meta.json`): path → size and `sha256-<hex>` checksum. */
interface VersionMeta {
  manifest: Record<string, { size: number; checksum: string }>;
}

/**
 * Copies the `python/` files of a package published at `root` (a JSR version's URL, ending in
 * `/<version>/`) into `target`, each checked against `<root minus slash>_meta.json`. The copy is
 * made aside and renamed into place, so a half-made copy is never used.
 * @throws {PyisolateError} `IO_FAILED` when a file cannot be fetched or its checksum differs.
 */
export async function copyPackagePython(root: URL, target: string): Promise<void> {
  const get = async (url: string): Promise<Uint8Array> => {
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    } catch (err) {
      throw new PyisolateError("IO_FAILED", `Could not fetch ${url}: ${(err as Error).message}.`, { cause: err });
    }
    if (!res.ok) throw new PyisolateError("IO_FAILED", `Could not fetch ${url}: HTTP ${res.status}.`);
    return new Uint8Array(await res.arrayBuffer());
  };
  const metaUrl = `${root.href.replace(/\/$/, "")}_meta.json`;
  const meta = JSON.parse(new TextDecoder().decode(await get(metaUrl))) as VersionMeta;
  const files = Object.entries(meta.manifest ?? {}).filter(([path]) => path.startsWith("/python/"));
  if (files.length === 0) throw new PyisolateError("IO_FAILED", `${metaUrl} lists no python/ files; the package is incomplete.`);
  const aside = `${target}.partial-${process.pid}`;
  rmSync(aside, { recursive: true, force: true });
  for (const [path, info] of files) {
    const bytes = await get(new URL(path.slice(1), root).href);
    const sum = `sha256-${createHash("sha256").update(bytes).digest("hex")}`;
    if (sum !== info.checksum) throw new PyisolateError("IO_FAILED", `${path} from ${root.href} has checksum ${sum}, not the published ${info.checksum}.`);
    const file = join(aside, path.slice(1));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, bytes);
  }
  rmSync(target, { recursive: true, force: true });
  mkdirSync(dirname(target), { recursive: true });
  renameSync(aside, target);
}

/**
 * Makes the package's Python files available on disk: nothing to do when the package is on
 * disk; loaded over HTTP(S), `python/` is copied once per version into
 * `<pyisolateHome>/package/<version>/`. `createHost` and the CLI call it first.
 */
export async function ensurePackageFiles(): Promise<void> {
  if (ON_DISK || copied !== null) return;
  const target = join(pyisolateHome(), "package", RUNTIME_VERSION);
  if (!existsSync(join(target, "python", "pyisolate_runtime", "__init__.py"))) await copyPackagePython(packageUrl(""), target);
  copied = target;
}

/**
 * The broker worker's module. From sources it is `workers/broker.ts` — or, on a Node that
 * cannot run TypeScript itself, `workers/broker_node_dev.mjs`, which transpiles it on load;
 * bundled, it is `dist/broker.js`.
 */
export function brokerWorkerUrl(runtime: "node" | "deno" | "bun"): URL {
  if (!FROM_SOURCE) return new URL("./broker.js", here);
  const nodeStrips = (process as unknown as { features?: { typescript?: unknown } }).features?.typescript;
  if (runtime === "node" && !nodeStrips) return packageUrl("workers/broker_node_dev.mjs");
  return packageUrl("workers/broker.ts");
}
