/**
 * Where the package's own files are. This module sits one folder below the package root both
 * as source (`src/paths.ts`) and bundled (`dist/<chunk>.js`), so `../` from it is the root in
 * both cases — unlike modules deeper in `src/`, whose depth the bundle does not keep.
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";

const here = import.meta.url;

/** Whether this code runs from the TypeScript sources rather than from the `dist/` bundle. */
export const FROM_SOURCE: boolean = here.endsWith(".ts");

/** A file or folder of the package, by its path from the package root (`"python"`, `"workers/broker.ts"`). */
export function packageUrl(rel: string): URL {
  return new URL(`../${rel}`, here);
}

/** The package's `python/` folder: the Python runtime's import root. */
export function pythonRoot(): string {
  return fileURLToPath(packageUrl("python"));
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
