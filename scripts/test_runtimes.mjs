#!/usr/bin/env node
// The shared test suites (test/shared/: the Runtime contract and the end-to-end suite) under
// Deno and Bun — and under Node when asked (`npm test` already runs Node's caller,
// test/runtime_node.test.ts, in its vitest step). Each runtime runs its caller file, which
// registers every shared suite with that runtime's test runner; this script passes their
// output through and ends with one count line per runtime, alone on its line:
//
//   deno: 22 passed, 0 failed
//   bun: 21 passed, 0 failed
//
// Exit code: non-zero when any runtime had a failure, could not start, or printed no count.
//
//   node scripts/test_runtimes.mjs                 # Deno, then Bun
//   node scripts/test_runtimes.mjs node deno bun   # all three (Node through vitest)
//
// The runtimes come from node_modules/.bin (vitest, and the `deno` and `bun` dev
// dependencies), else PATH.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Per runtime: how to run its callers, and how to read the counts from its summary. */
const RUNTIMES = {
  node: {
    bin: "vitest",
    args: (files) => ["run", ...files],
    files: ["test/runtime_node.test.ts"],
    // "      Tests  1 failed | 19 passed (20)" or "      Tests  20 passed (20)"
    counts(out) {
      const line = /^\s*Tests\s+(.*\(\d+\))\s*$/m.exec(out);
      if (!line) return null;
      const passed = /(\d+) passed/.exec(line[1]);
      const failed = /(\d+) failed/.exec(line[1]);
      return { passed: passed ? Number(passed[1]) : 0, failed: failed ? Number(failed[1]) : 0 };
    },
  },
  deno: {
    bin: "deno",
    // `--no-check`: the sources are type-checked by tsc; Deno only runs them.
    args: (files) => ["test", "-A", "--no-check", ...files],
    files: ["test/runtimes/deno_contract.ts"],
    // "ok | 22 passed | 0 failed (4s)" (or "FAILED | …")
    counts(out) {
      const m = /\|\s*(\d+) passed(?: \((\d+) steps?\))?\s*\|\s*(\d+) failed/.exec(out);
      return m ? { passed: Number(m[1]), failed: Number(m[3]) } : null;
    },
  },
  bun: {
    bin: "bun",
    // A path with "./" makes `bun test` run the file although its name has no `.test.`.
    args: (files) => ["test", ...files.map((f) => `./${f}`)],
    files: ["test/runtimes/bun_contract.ts"],
    // " 21 pass\n 0 fail"
    counts(out) {
      const pass = /^\s*(\d+) pass\s*$/m.exec(out);
      const fail = /^\s*(\d+) fail\s*$/m.exec(out);
      return pass && fail ? { passed: Number(pass[1]), failed: Number(fail[1]) } : null;
    },
  },
};

function binary(name) {
  const local = join(root, "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
}

function runOne(name) {
  const rt = RUNTIMES[name];
  const cmd = binary(rt.bin);
  const args = rt.args(rt.files);
  process.stderr.write(`\n=== ${name}: ${rt.bin} ${args.join(" ")}\n`);
  const started = Date.now();
  return new Promise((resolve) => {
    let out = "";
    const child = spawn(cmd, args, {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", DENO_NO_UPDATE_CHECK: "1" },
    });
    const keep = (stream) => (chunk) => {
      out += chunk.toString();
      stream.write(chunk);
    };
    child.stdout.on("data", keep(process.stdout));
    child.stderr.on("data", keep(process.stderr));
    child.on("error", (err) => resolve({ name, ok: false, note: `could not start ${cmd}: ${err.message}` }));
    child.on("close", (code, signal) => {
      // Strip colour codes in case the runner ignores NO_COLOR.
      const counts = rt.counts(out.replace(/\x1b\[[0-9;]*m/g, ""));
      const ok = code === 0 && counts !== null && counts.failed === 0 && counts.passed > 0;
      const how = signal ? `killed by ${signal}` : `exit code ${code}`;
      const note = !counts ? `no test count in the output (${how})` : !ok && counts.failed === 0 ? `the runner failed (${how})` : "";
      resolve({ name, ok, counts, note, seconds: (Date.now() - started) / 1000 });
    });
  });
}

const wanted = process.argv.slice(2);
for (const w of wanted) {
  if (!(w in RUNTIMES)) {
    process.stderr.write(`Unknown runtime "${w}"; choose from: ${Object.keys(RUNTIMES).join(", ")}.\n`);
    process.exit(2);
  }
}
const results = [];
for (const name of wanted.length ? wanted : ["deno", "bun"]) results.push(await runOne(name));

process.stdout.write("\n=== shared suites (Runtime contract + e2e) per runtime\n");
for (const r of results) {
  const line = r.counts ? `${r.name}: ${r.counts.passed} passed, ${r.counts.failed} failed` : `${r.name}: ${r.note}`;
  process.stdout.write(`${line}\n`);
  if (r.counts && r.note) process.stdout.write(`${r.name} FAILED: ${r.note}\n`);
}
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
