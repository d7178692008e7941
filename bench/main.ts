/**
 * Benchmark entry: `npm run bench [name…]` (after the build: `node dist/bench.js [name…]`).
 * Without a name it runs `compare`, the side-by-side table with the Python pyisolate; `all`
 * runs every benchmark. Each prints a table and writes JSON under `bench/results/`.
 * @module
 */
const benches: Record<string, () => Promise<{ run: (opts?: Record<string, unknown>) => Promise<unknown> }>> = {
  compare: () => import("./compare.ts"),
  rpc: () => import("./rpc_latency.ts"),
  tensors: () => import("./tensor_pass.ts"),
  nodes: () => import("./node_overhead.ts"),
  startup: () => import("./startup.ts"),
  runtimes: () => import("./runtimes.ts"),
  scale: () => import("./workflow_scale.ts"),
  handles: () => import("./handle_call.ts"),
  ray: () => import("./ray_backend.ts"),
  concurrent: () => import("./concurrent_prompts.ts"),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const names = wanted.length === 0 ? ["compare"] : wanted.includes("all") ? Object.keys(benches) : wanted;
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
