/**
 * Benchmark entry: `npm run bench [name…]` (after the build: `node dist/bench.js [name…]`).
 * Each benchmark prints a table and writes JSON under `bench/results/`.
 * @module
 */
const benches: Record<string, () => Promise<{ run: (opts?: Record<string, unknown>) => Promise<unknown> }>> = {
  rpc: () => import("./rpc_latency.ts"),
  tensors: () => import("./tensor_pass.ts"),
  nodes: () => import("./node_overhead.ts"),
  startup: () => import("./startup.ts"),
  runtimes: () => import("./runtimes.ts"),
  scale: () => import("./workflow_scale.ts"),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const names = wanted.length > 0 ? wanted : Object.keys(benches);
for (const name of names) {
  const load = benches[name];
  if (!load) {
    process.stderr.write(`error: unknown benchmark "${name}"; known: ${Object.keys(benches).join(", ")}\n`);
    process.exit(2);
  }
  process.stdout.write(`\n## ${name}\n`);
  const mod = await load();
  await mod.run();
}
