#!/usr/bin/env node
// The whole test suite: typecheck, the TypeScript suites (vitest: unit and e2e with real
// Python processes), the Python runtime's own tests (pytest), the shared suites under Deno
// and Bun, and the demo workflow under all three runtimes with its outputs compared. Every
// step runs even when an earlier one fails; the exit code is non-zero when any failed. The
// last line totals the tests of every step: `total: N passed, M failed`.
import { spawn } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const python = process.env.PYISOLATE_PYTHON ?? join(root, ".venv", "bin", "python");
const extra = process.argv.slice(2);

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");
const num = (re, text) => {
  const m = re.exec(text);
  return m ? Number(m[1]) : 0;
};

/** How many tests a step's output reports as passed and failed. */
const counters = {
  typecheck: () => ({ passed: 0, failed: 0 }),
  vitest: (t) => {
    const line = t.split("\n").find((l) => /^\s*Tests\s/.test(l)) ?? "";
    return { passed: num(/(\d+) passed/, line), failed: num(/(\d+) failed/, line) };
  },
  pytest: (t) => {
    const line = t.split("\n").reverse().find((l) => /\d+ (passed|failed)/.test(l)) ?? "";
    return { passed: num(/(\d+) passed/, line), failed: num(/(\d+) failed/, line) + num(/(\d+) error/, line) };
  },
  "demo on node, deno and bun": () => ({ passed: 0, failed: 0 }),
  runtimes: (t) => {
    let passed = 0;
    let failed = 0;
    for (const m of t.matchAll(/^\S*\s*(?:deno|bun): (\d+) passed, (\d+) failed/gm)) {
      passed += Number(m[1]);
      failed += Number(m[2]);
    }
    return { passed, failed };
  },
};

const steps = [
  ["typecheck", "npx", ["tsc", "--noEmit", "-p", "."]],
  ["vitest", "npx", ["vitest", "run", ...extra]],
  ["pytest", python, ["-m", "pytest", "python/tests", "-q"]],
  ["runtimes", "node", ["scripts/test_runtimes.mjs"]],
  ["demo on node, deno and bun", "node", ["scripts/demo_runtimes.mjs"]],
];

function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PYISOLATE_PYTHON: python } });
    let text = "";
    child.stdout.on("data", (c) => {
      process.stdout.write(c);
      text += c;
    });
    child.stderr.on("data", (c) => {
      process.stderr.write(c);
      text += c;
    });
    child.on("error", (e) => resolve({ code: 1, text: String(e) }));
    child.on("close", (code) => resolve({ code, text: stripAnsi(text) }));
  });
}

/** The names of the failed tests a step printed (vitest's `FAIL file > test`, pytest's `FAILED file::test`; else a runner's `✗ name` lines), so the summary at the end of a long log says which failed. */
function failedNames(text) {
  const named = new Set();
  const marked = new Set();
  for (const line of text.split("\n")) {
    const m = /^\s*(?:FAIL\s+(\S+\.test\.ts\s+>.*)|(?:FAILED|ERROR)\s+(\S+::\S+.*))$/.exec(line);
    if (m) named.add((m[1] ?? m[2]).trim());
    const x = /^\s*[✗×]\s+(.+)$/.exec(line);
    if (x) marked.add(x[1].trim());
  }
  return [...(named.size ? named : marked)].slice(0, 20);
}

const results = [];
for (const [name, cmd, args] of steps) {
  process.stdout.write(`\n=== ${name}: ${cmd} ${args.join(" ")}\n`);
  const started = Date.now();
  const r = await run(cmd, args);
  const counts = counters[name](r.text);
  // A step that failed without reporting a failed test still counts as one failure.
  if (r.code !== 0 && counts.failed === 0) counts.failed = 1;
  results.push({ name, ok: r.code === 0, seconds: (Date.now() - started) / 1000, ...counts, failures: r.code === 0 ? [] : failedNames(r.text) });
}
process.stdout.write("\n=== summary\n");
for (const r of results) {
  const tests = r.passed + r.failed === 0 ? "" : `: ${r.passed} passed, ${r.failed} failed`;
  process.stdout.write(`${r.ok ? "ok  " : "FAIL"} ${r.name}${tests} (${r.seconds.toFixed(1)} s)\n`);
  if (!r.ok) for (const f of r.failures) process.stdout.write(`       failed: ${f}\n`);
}
const passed = results.reduce((a, r) => a + r.passed, 0);
const failed = results.reduce((a, r) => a + r.failed, 0);
process.stdout.write(`total: ${passed} passed, ${failed} failed\n`);
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
