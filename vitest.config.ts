import { defineConfig, type Plugin } from "vitest/config";

/**
 * Lowers standard (TC39) decorators, which the default transform leaves in place and Node 20
 * cannot parse. esbuild does it the same way tsup does for `dist/`.
 */
function tc39Decorators(): Plugin {
  return {
    name: "tc39-decorators",
    enforce: "pre",
    async transform(code, id) {
      if (!id.endsWith(".ts") || !/^\s*@[\w$]/m.test(code)) return null;
      const { transform } = await import("esbuild");
      const r = await transform(code, { loader: "ts", target: "es2022", sourcemap: true, sourcefile: id });
      return { code: r.code, map: r.map };
    },
  };
}

export default defineConfig({
  plugins: [tc39Decorators()],
  test: {
    include: ["test/**/*.test.ts"],
    // e2e suites start real Python processes and build real environments: give them room,
    // and keep files sequential so two suites do not fight over the 2 cores.
    testTimeout: 120_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    pool: "forks",
  },
});
