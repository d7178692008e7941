import { defineConfig } from "tsup";

// dist/ is what Node runs: the CLI, the library entries (`pyisolate`, `pyisolate/internals`)
// and the broker worker, split into shared chunks; and, as one file of its own, the
// benchmarks (`dist/bench.js`), which the published package leaves out (package.json `files`).
// Source maps are written for work in a clone and left out of the package as well: it ships
// the TypeScript sources, which stack traces under Deno and Bun point at directly.
export default defineConfig([
  {
    entry: {
      mod: "src/mod.ts",
      internals: "src/internals.ts",
      cli: "src/cli/bin.ts",
      broker: "workers/broker.ts",
    },
    format: ["esm"],
    target: "node20",
    platform: "node",
    dts: { entry: { mod: "src/mod.ts", internals: "src/internals.ts" } },
    sourcemap: true,
    // The benchmarks' build below writes into the same folder.
    clean: ["!bench.js"],
    splitting: true,
    shims: false,
  },
  {
    entry: { bench: "bench/main.ts" },
    format: ["esm"],
    target: "node20",
    platform: "node",
    sourcemap: false,
    clean: false,
    // One file: the benchmarks share no chunk with the package.
    splitting: false,
    shims: false,
  },
]);
