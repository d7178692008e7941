/**
 * Entry of the contract worker on a Node that cannot run TypeScript itself: installs the
 * transpiling hooks the broker worker uses in development, then runs `contract_worker.ts`.
 */
import { register } from "node:module";

register("../../workers/ts_loader.mjs", import.meta.url);
await import("./contract_worker.ts");
