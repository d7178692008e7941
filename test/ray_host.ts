/**
 * A program of its own on the Ray backend, for the test that it runs to its end: it runs one
 * node in a Ray actor, closes its host as its last awaited step, then prints "closed". Nothing
 * else holds its event loop, as in a user's script.
 *
 *   node --import ./test/tensors_host_loader.mjs test/ray_host.ts '{"customNodes", "cacheDir", "python", "address", "rayPython"}'
 */
import process from "node:process";
import { createHost } from "../src/host.ts";
import { Logger } from "../src/log.ts";

const o = JSON.parse(process.argv[2]!) as { customNodes: string; cacheDir: string; python: string; address: string; rayPython: string };
const host = await createHost({
  customNodes: o.customNodes,
  cacheDir: o.cacheDir,
  python: o.python,
  backend: "ray",
  ray: { address: o.address, python: o.rayPython },
  logger: new Logger(() => {}),
});
const r = await host.run({ "1": { class_type: "RaySleep", inputs: { seconds: 0, tag: "script" } } });
console.log(r.status, JSON.stringify(r.outputs["1"] ?? r.error));
await host.close();
console.log("closed");
