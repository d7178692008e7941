import { defineConfig } from "tsup";

// dist/ is what Node runs: the CLI, the library entries (`pyisolate`, `pyisolate/internals`),
// the broker worker and the benchmarks.
export default defineConfig({
  entry: {
    mod: "src/mod.ts",
    internals: "src/internals.ts",
    cli: "src/cli/bin.ts",
    broker: "workers/broker.ts",
    bench: "bench/main.ts",
  },
  format: ["esm"],
  target: "node20",
  platform: "node",
  dts: { entry: { mod: "src/mod.ts", internals: "src/internals.ts" } },
  sourcemap: true,
  clean: true,
  splitting: true,
  shims: false,
  banner: ({ format }) => ({ js: "" }),
});
