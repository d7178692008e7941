// Starts a host under whatever permissions Deno was given and prints one JSON line: the
// error's name, code and message, or {"ok": true}. Used by test/embedding.e2e.test.ts.
//   deno run --allow-read --allow-env test/runtimes/deno_permissions.ts <custom_nodes> <cache> <python>
import process from "node:process";
import { createHost } from "../../src/mod.ts";

const [customNodes, cacheDir, python] = process.argv.slice(2);
try {
  const host = await createHost({ customNodes, cacheDir, python });
  await host.close();
  console.log(JSON.stringify({ ok: true }));
} catch (e) {
  const err = e as Error & { code?: string };
  console.log(JSON.stringify({ name: err.name, code: err.code, message: err.message }));
}
