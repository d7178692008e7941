#!/usr/bin/env node
// Makes a fresh clone ready to run: npm dependencies, the build, and the host Python
// environment (.venv, with torch, numpy, uv, pytest and ComfyUI's requirements). Idempotent: each step is skipped
// when its result is already up to date. Used by `npm run demo`, `npm test` and `.ci/run`.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync, readdirSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const quiet = process.argv.includes("--quiet");
const say = (msg) => quiet || process.stderr.write(`[bootstrap] ${msg}\n`);

function run(cmd, args, opts = {}) {
  say(`$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", ...opts });
  if (r.status !== 0) {
    process.stderr.write(`[bootstrap] failed: ${cmd} ${args.join(" ")} (exit ${r.status ?? r.signal})\n`);
    process.exit(1);
  }
}

function newestMtime(dir) {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (ent.name.endsWith(".ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

// 1. npm dependencies
const lock = join(root, "package-lock.json");
const stamp = join(root, "node_modules", ".bootstrap-lock-hash");
const lockHash = createHash("sha256").update(readFileSync(lock)).digest("hex");
if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== lockHash) {
  run("npm", ["ci", "--no-audit", "--no-fund"]);
  writeFileSync(stamp, lockHash);
}

// 2. the build (dist/), when any TypeScript source is newer than it
const built = join(root, "dist", "cli.js");
const srcNewest = Math.max(
  ...["src", "adapters", "workers", "bench", "codegen"].map((d) => newestMtime(join(root, d))),
  statSync(join(root, "tsup.config.ts")).mtimeMs,
);
if (!existsSync(built) || statSync(built).mtimeMs < srcNewest) run("npx", ["tsup", "--silent"]);

// 3. the host Python environment, unless the user points at their own
if (!process.env.PYISOLATE_PYTHON) {
  const venv = join(root, ".venv");
  const py = join(venv, "bin", "python");
  const reqs = join(root, "scripts", "host-requirements.txt");
  const reqHash = createHash("sha256").update(readFileSync(reqs)).digest("hex");
  const okStamp = join(venv, ".bootstrap-requirements-hash");
  if (!existsSync(okStamp) || readFileSync(okStamp, "utf8") !== reqHash) {
    const base = process.env.PYISOLATE_BASE_PYTHON ?? "python3";
    if (!existsSync(py)) run(base, ["-m", "venv", venv]);
    say("installing the host Python environment (torch, numpy, uv, pytest and what a ComfyUI environment gives packs); this takes a few minutes the first time");
    run(py, ["-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", reqs]);
    writeFileSync(okStamp, reqHash);
  }
}

// 4. the Ray backend's driver environment (.ray-venv, Ray alone), for the Ray suite; skipped
// with PYISOLATE_NO_RAY=1 or when PYISOLATE_RAY_PYTHON names one. A failed install is said in
// one line: that suite then says it did not run.
if (!process.env.PYISOLATE_RAY_PYTHON && process.env.PYISOLATE_NO_RAY !== "1") {
  const venv = join(root, ".ray-venv");
  const py = join(venv, "bin", "python");
  const reqs = join(root, "scripts", "ray-requirements.txt");
  const reqHash = createHash("sha256").update(readFileSync(reqs)).digest("hex");
  const okStamp = join(venv, ".bootstrap-requirements-hash");
  if (!existsSync(okStamp) || readFileSync(okStamp, "utf8") !== reqHash) {
    const base = process.env.PYISOLATE_BASE_PYTHON ?? "python3";
    say("installing the Ray backend's driver environment (.ray-venv: ray)");
    const ok = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: "inherit" }).status === 0;
    if ((existsSync(py) || ok(base, ["-m", "venv", venv])) && ok(py, ["-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", reqs])) writeFileSync(okStamp, reqHash);
    else say("could not install ray into .ray-venv; the Ray backend suite will not run");
  }
}
