/**
 * `node --import ./workers/ts_register.mjs file.ts`: runs pyisolate's TypeScript sources on a
 * Node without built-in TypeScript support (development only), with the hooks of
 * `ts_loader.mjs`.
 */
import { register } from "node:module";

register("./ts_loader.mjs", import.meta.url);
