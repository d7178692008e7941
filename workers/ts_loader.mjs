/**
 * Module hooks that let Node versions without built-in TypeScript support run pyisolate's
 * `.ts` sources (development and tests only; the published package runs `dist/`). Each `.ts`
 * file is stripped of its types with amaro in strip-only mode — the transform Node ≥ 22.18
 * applies itself — so code that runs through these hooks also runs under Node's own type
 * stripping: syntax that needs more than erasing (enums, parameter properties, namespaces)
 * fails here too.
 */
import { readFile } from "node:fs/promises";

let amaro;

/** Loads `.ts` modules with their types stripped. */
export async function load(url, context, nextLoad) {
  if (!url.startsWith("file:") || !url.endsWith(".ts")) return nextLoad(url, context);
  amaro ??= (await import("amaro")).default;
  const source = await readFile(new URL(url), "utf8");
  const { code } = amaro.transformSync(source, { mode: "strip-only", filename: new URL(url).pathname });
  return { format: "module", source: code, shortCircuit: true };
}
