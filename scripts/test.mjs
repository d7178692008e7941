#!/usr/bin/env node
// The whole test suite: typecheck, the TypeScript suites (vitest: unit and e2e with real
// Python processes), and the Python runtime's own tests (pytest). Every step runs even when
// an earlier one fails; the exit code is non-zero when any failed.
import { spawnSync } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const python = process.env.PYISOLATE_PYTHON ?? join(root, ".venv", "bin", "python");
const extra = process.argv.slice(2);

const steps = [
  ["typecheck", "npx", ["tsc", "--noEmit", "-p", "."]],
  ["vitest", "npx", ["vitest", "run", ...extra]],
  ["pytest", python, ["-m", "pytest", "python/tests", "-q"]],
  ["deno and bun", "node", ["scripts/test_runtimes.mjs"]],
];

const results = [];
for (const [name, cmd, args] of steps) {
  process.stderr.write(`\n=== ${name}: ${cmd} ${args.join(" ")}\n`);
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, PYISOLATE_PYTHON: python } });
  results.push({ name, ok: r.status === 0, seconds: (Date.now() - started) / 1000 });
}
process.stderr.write("\n=== summary\n");
for (const r of results) process.stderr.write(`${r.ok ? "ok  " : "FAIL"} ${r.name} (${r.seconds.toFixed(1)} s)\n`);
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
