// Lets Node 20 run the TypeScript host of test/tensors_host.ts (transpiled on load).
import { register } from "node:module";

register("../workers/ts_loader.mjs", import.meta.url);
