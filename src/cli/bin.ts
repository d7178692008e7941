#!/usr/bin/env node
/**
 * The `pyisolate` executable (`dist/cli.js`, `deno task isolate`): runs {@link main} with the
 * process arguments and exits with its code.
 * @module
 */
import process from "node:process";
import { main } from "./main.ts";

// Output piped into a reader that stops early (`pyisolate list | head`): stop quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await main(process.argv.slice(2));
