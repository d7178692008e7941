/**
 * Worker entry for Node versions that cannot run TypeScript themselves: installs the
 * type-stripping hooks of `ts_loader.mjs`, then runs the broker from its sources. Only used when
 * pyisolate runs from `src/` (tests); `dist/broker.js` needs none of this.
 */
import { register } from "node:module";

register("./ts_loader.mjs", import.meta.url);
await import("./broker.ts");
