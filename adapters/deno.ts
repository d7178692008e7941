/**
 * The Deno adapter. Deno implements the `node:` modules the Node adapter uses, so for now it
 * reuses that implementation under its own name; the native Deno APIs replace it in the
 * Deno/Bun issue.
 * @module
 */
import type { Runtime } from "../src/runtime.ts";
import { runtime as nodeRuntime } from "./node.ts";

/** The Deno {@link Runtime}. */
export const runtime: Runtime = { ...nodeRuntime, name: "deno" };
