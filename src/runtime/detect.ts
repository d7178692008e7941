import type { Runtime } from "./contract.ts";

/** Which JavaScript runtime runs this code. Deno and Bun are checked first: both also set `process.versions.node`. */
export function detectRuntime(): Runtime["name"] {
  const g = globalThis as Record<string, unknown>;
  if (typeof g.Deno === "object" && g.Deno !== null) return "deno";
  if (typeof g.Bun === "object" && g.Bun !== null) return "bun";
  return "node";
}

let current: Promise<Runtime> | undefined;

/** The adapter for the runtime this code runs in, loaded once. */
export function getRuntime(): Promise<Runtime> {
  current ??= (async () => {
    switch (detectRuntime()) {
      case "deno":
        return (await import("../../adapters/deno.ts")).runtime;
      case "bun":
        return (await import("../../adapters/bun.ts")).runtime;
      default:
        return (await import("../../adapters/node.ts")).runtime;
    }
  })();
  return current;
}
