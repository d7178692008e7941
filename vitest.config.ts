import { defineConfig } from "vitest/config";

export default defineConfig({
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
