#!/usr/bin/env node
// The demo workflow under Node, Deno and Bun, through the CLI each runtime runs
// (`node dist/cli.js`, `deno task isolate`, `bun src/cli/bin.ts`), with `--json`. Compares
// what the runtimes produced — every `executed` event's node and output, and the bytes of
// every file the output nodes saved — and prints one table:
//
//   RUNTIME  COMMAND              EXIT  NODES EXECUTED      WALL TIME  SAME OUTPUTS  EMBED.TS
//   node     node dist/cli.js     0     11 (7 with output)  5.12 s     ✓             ✓
//   …
//
// Then it runs the embedding example, examples/embed.ts, under each runtime (from source; Node
// through workers/ts_register.mjs) and checks both of its runs succeed (column EMBED.TS;
// `--no-embed` skips it).
//
// Exit code: non-zero when a runtime failed, the outputs differ, or embed.ts failed.
//
//   node scripts/demo_runtimes.mjs [--workflow FILE] [--runtimes node,deno,bun] [--cache-dir DIR] [--no-embed]
//
// Environments and the metadata cache are shared by the runtimes (default `.pyisolate`, as
// the CLI's own default): the first run may build environments, which shows in its time.
// Each runtime saves into its own folder under a temporary directory (removed at the end).
// Node runs the build in dist/: run `npm run build` after changing the sources.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "node_modules", ".bin");

const { values: opts } = parseArgs({
  options: {
    workflow: { type: "string", default: join("examples", "workflows", "demo.json") },
    runtimes: { type: "string", default: "node,deno,bun" },
    "cache-dir": { type: "string", default: ".pyisolate" },
    "custom-nodes": { type: "string", default: join("examples", "custom_nodes") },
    input: { type: "string", default: join("examples", "input") },
    "no-embed": { type: "boolean", default: false },
  },
});

/** How each runtime runs the embedding example, `examples/embed.ts`, from source. */
const EMBED = {
  node: { cmd: process.execPath, pre: ["--import", "./workers/ts_register.mjs"] },
  deno: { cmd: tool("deno"), pre: ["run", "-A"] },
  bun: { cmd: tool("bun"), pre: [] },
};

/** How each runtime runs the CLI. */
const COMMANDS = {
  node: { cmd: process.execPath, pre: [join("dist", "cli.js")], show: "node dist/cli.js" },
  deno: { cmd: tool("deno"), pre: ["task", "isolate"], show: "deno task isolate" },
  bun: { cmd: tool("bun"), pre: [join("src", "cli", "bin.ts")], show: "bun src/cli/bin.ts" },
};

function tool(name) {
  const local = join(bin, name);
  return existsSync(local) ? local : name;
}

const names = opts.runtimes.split(",").map((s) => s.trim()).filter(Boolean);
for (const n of names) {
  if (!(n in COMMANDS)) {
    process.stderr.write(`Unknown runtime "${n}"; choose from: ${Object.keys(COMMANDS).join(", ")}.\n`);
    process.exit(2);
  }
}
if (names.includes("node")) warnIfStale();

/** Warns when dist/ is missing or older than the sources Node would otherwise run. */
function warnIfStale() {
  const cli = join(root, "dist", "cli.js");
  if (!existsSync(cli)) {
    process.stderr.write("dist/cli.js is missing: run `npm run build` first (Node runs the build).\n");
    process.exit(2);
  }
  const built = statSync(cli).mtimeMs;
  const newest = Math.max(...["src", "adapters", "workers"].flatMap((d) => files(join(root, d)).map((f) => statSync(f).mtimeMs)));
  if (newest > built) process.stderr.write("warning: dist/ is older than the sources; Node runs the build (`npm run build` refreshes it).\n");
}

/** Every file under `dir`, recursively. */
function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

const scratch = mkdtempSync(join(tmpdir(), "pyisolate-demo-runtimes-"));

/** Runs the workflow under one runtime; resolves with its events, saved files and timing. */
function runOne(name) {
  const c = COMMANDS[name];
  const output = join(scratch, name);
  const args = [...c.pre, "run", opts.workflow, "--custom-nodes", opts["custom-nodes"], "--input", opts.input, "--output", output, "--cache-dir", opts["cache-dir"], "--json"];
  process.stderr.write(`\n=== ${name}: ${c.show} ${args.slice(c.pre.length).join(" ")}\n`);
  const started = performance.now();
  return new Promise((resolve) => {
    let out = "";
    const child = spawn(c.cmd, args, {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
      // `deno task isolate` runs `env deno`, found on PATH: put the npm package's binary there.
      env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ""}`, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    });
    child.stdout.on("data", (d) => (out += d.toString()));
    child.on("error", (err) => resolve({ name, show: c.show, code: null, error: err.message, events: [], saved: {}, ms: 0 }));
    child.on("close", (code, signal) => {
      const ms = performance.now() - started;
      const events = [];
      for (const line of out.split("\n")) {
        if (!line.trim()) continue;
        try {
          events.push(JSON.parse(line));
        } catch {
          process.stderr.write(`${name}: not a JSON line on stdout: ${line}\n`);
        }
      }
      const saved = Object.fromEntries(
        files(output).map((f) => [relative(output, f), createHash("sha256").update(readFileSync(f)).digest("hex")]).sort(([a], [b]) => a.localeCompare(b)),
      );
      resolve({ name, show: c.show, code, signal, events, saved, ms });
    });
  });
}

/**
 * Runs examples/embed.ts (two runs of the workflow over one host) under one runtime: "✓" when
 * it exits 0 and both runs report `status success`.
 */
function runEmbed(name) {
  const c = EMBED[name];
  const args = [...c.pre, join("examples", "embed.ts"), opts.workflow];
  process.stderr.write(`\n=== ${name}: examples/embed.ts\n`);
  return new Promise((resolve) => {
    let out = "";
    const child = spawn(c.cmd, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" } });
    child.stdout.on("data", (d) => (out += d.toString()));
    child.stderr.on("data", (d) => (out += d.toString()));
    child.on("error", (err) => resolve(`✗ (${err.message})`));
    child.on("close", (code) => {
      const ok = code === 0 && (out.match(/^status success /gm) ?? []).length === 2;
      if (!ok) process.stderr.write(out);
      resolve(ok ? "✓" : `✗ (exit ${code})`);
    });
  });
}

/** What a run produced, runtime-independent: executed outputs by node, status, saved files. */
function summary(r) {
  const executed = r.events
    .filter((e) => e.type === "executed")
    .map((e) => [e.data.node, e.data.output])
    .sort(([a], [b]) => Number(a) - Number(b) || String(a).localeCompare(String(b)));
  const end = r.events.findLast((e) => e.type.startsWith("execution_") && e.type !== "execution_start" && e.type !== "execution_cached");
  return { executed, status: end?.type ?? "none", saved: r.saved };
}

const results = [];
for (const n of names) results.push(await runOne(n));
if (!opts["no-embed"]) for (const r of results) r.embed = await runEmbed(r.name);
rmSync(scratch, { recursive: true, force: true });

const canonical = results.map((r) => JSON.stringify(summary(r)));
const reference = canonical.find((_, i) => results[i].code === 0) ?? canonical[0];
const rows = results.map((r, i) => {
  const s = summary(r);
  const total = new Set(r.events.filter((e) => e.type === "executing" && e.data.node !== null).map((e) => e.data.node)).size;
  const same = r.code === 0 && s.status === "execution_success" && canonical[i] === reference;
  const row = [r.name, r.show, r.code === null ? `${r.signal ?? "-"}` : String(r.code), `${total} (${s.executed.length} with output)`, `${(r.ms / 1000).toFixed(2)} s`, same ? "✓" : "✗"];
  return r.embed === undefined ? row : [...row, r.embed];
});
const head = ["RUNTIME", "COMMAND", "EXIT", "NODES EXECUTED", "WALL TIME", "SAME OUTPUTS", ...(opts["no-embed"] ? [] : ["EMBED.TS"])];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const fmt = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
process.stdout.write(`\n${opts.workflow} under ${names.join(", ")}\n${fmt(head)}\n${fmt(widths.map((w) => "-".repeat(w)))}\n`);
for (const r of rows) process.stdout.write(`${fmt(r)}\n`);

const ref = results[canonical.indexOf(reference)];
if (ref) {
  const s = summary(ref);
  process.stdout.write(`\nOutputs (${ref.name}):\n`);
  for (const [node, output] of s.executed) process.stdout.write(`  #${node} ${JSON.stringify(output)}\n`);
  for (const [file, sha] of Object.entries(s.saved)) process.stdout.write(`  saved ${file} sha256 ${sha.slice(0, 16)}…\n`);
}
for (let i = 0; i < results.length; i++) {
  if (canonical[i] !== reference) process.stdout.write(`\n${results[i].name} differs:\n  ${canonical[i]}\n`);
}
process.exitCode = rows.every((r) => r[5] === "✓" && (r[6] === undefined || r[6] === "✓")) ? 0 : 1;
