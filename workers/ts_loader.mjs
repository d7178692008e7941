/**
 * Module hooks that let Node versions without built-in TypeScript support run the broker
 * worker straight from its `.ts` sources (development and tests only; the published
 * package runs `dist/broker.js`). Each `.ts` file is transpiled on load with esbuild.
 */
import { readFile } from "node:fs/promises";

let esbuild;

/** Loads `.ts` modules as transpiled ESM. */
export async function load(url, context, nextLoad) {
  if (!url.startsWith("file:") || !url.endsWith(".ts")) return nextLoad(url, context);
  esbuild ??= await import("esbuild");
  const source = await readFile(new URL(url), "utf8");
  const { code } = await esbuild.transform(source, {
    loader: "ts",
    format: "esm",
    target: "node20",
    sourcemap: "inline",
    sourcefile: new URL(url).pathname,
  });
  return { format: "module", source: code, shortCircuit: true };
}
