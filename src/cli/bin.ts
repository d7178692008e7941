#!/usr/bin/env node
/**
 * The `pyisolate` executable (`dist/cli.js`, `deno task isolate`): runs {@link main} with the
 * process arguments and exits with its code.
 * @module
 */
import process from "node:process";
import { main } from "./main.ts";

process.exitCode = await main(process.argv.slice(2));
