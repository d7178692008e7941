/**
 * Run by the Deno caller without `--allow-ffi`: maps `argv[0]` (`argv[1]` bytes) through the
 * Deno adapter and prints what it got as JSON.
 */
import { runtime } from "../../adapters/deno.ts";

const args = (globalThis as unknown as { Deno: { args: string[] } }).Deno.args;
const m = runtime.mapFile(args[0]!, Number(args[1]));
console.log(JSON.stringify({ zeroCopy: m.zeroCopy, length: m.bytes.length, sum: m.bytes.reduce((s, b) => s + b, 0) }));
m.unmap();
