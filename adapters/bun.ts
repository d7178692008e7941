/**
 * The Bun adapter. Bun implements the `node:` modules the Node adapter uses, so for now it
 * reuses that implementation under its own name; the native Bun APIs replace it in the
 * Deno/Bun issue.
 * @module
 */
import type { Runtime } from "../src/runtime.ts";
import { runtime as nodeRuntime } from "./node.ts";

/** The Bun {@link Runtime}. */
export const runtime: Runtime = { ...nodeRuntime, name: "bun" };
