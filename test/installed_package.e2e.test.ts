// The package as a new user meets it: `npm pack`, installed into an empty folder, then
// `pyisolate setup` (the user-level host environment, from the tarball's own requirement list)
// and the demo workflow through the installed CLI and library, under Node, Deno and Bun.
//
// Setup must not download torch: it is pointed at the torch 2.13.0 wheel pip finds on this
// disk (`pip install --dry-run --report`); without one the suite says so and runs only the
// tarball checks.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(import.meta.dirname, "..");
const bin = join(repo, "node_modules", ".bin");
const TORCH = "torch==2.13.0";

let root: string;
let app: string;
let tarball: string;
let packed: string[] = [];
let torchWheel: string | null = null;
/** Without PYISOLATE_PYTHON (the test runner sets it): the installed package finds the host Python itself. */
let env: Record<string, string>;

/** Runs a command to completion, with its output. */
function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? app, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 280_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

/** The torch 2.13.0 wheel pip would install from this disk, or null. */
function localTorchWheel(): string | null {
  const r = spawnSync("python3", ["-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet", "--report", "-", TORCH], { encoding: "utf8", timeout: 120_000 });
  try {
    const url = (JSON.parse(r.stdout) as { install: { download_info: { url: string } }[] }).install[0]?.download_info.url ?? "";
    return url.startsWith("file:") ? fileURLToPath(url) : null;
  } catch {
    return null;
  }
}

function sha(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

/** The `executed` outputs and final event of a `run --json`. */
function events(out: string): { outputs: Record<string, unknown>; last: string } {
  const evs = out.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as { type: string; data: { node?: string; output?: unknown } });
  const outputs: Record<string, unknown> = {};
  for (const e of evs) if (e.type === "executed") outputs[e.data.node!] = e.data.output;
  return { outputs, last: evs.at(-1)?.type ?? "none" };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-installed-"));
  app = join(root, "app");
  mkdirSync(app);
  const { PYISOLATE_PYTHON: _drop, ...rest } = process.env as Record<string, string>;
  env = { ...rest, PYISOLATE_HOME: join(root, "home"), PATH: `${bin}${delimiter}${process.env.PATH ?? ""}`, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" };
  // The tarball packs dist/: build it when a source is newer (npm test's bootstrap did, normally).
  const cli = join(repo, "dist", "cli.js");
  const newest = Math.max(...["src", "workers", "adapters"].flatMap((d) => files(join(repo, d)).map((f) => statSync(f).mtimeMs)));
  if (!existsSync(cli) || statSync(cli).mtimeMs < newest) expect((await run(join(bin, "tsup"), ["--silent"], { cwd: repo })).code).toBe(0);
  const pack = await run("npm", ["pack", "--json", "--pack-destination", root], { cwd: repo });
  expect(pack.code, pack.err).toBe(0);
  const info = (JSON.parse(pack.out) as { filename: string; files: { path: string }[] }[])[0]!;
  tarball = join(root, info.filename);
  packed = info.files.map((f) => f.path);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "my-app", private: true, type: "module" }));
  torchWheel = localTorchWheel();
}, 300_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("the packed tarball", () => {
  it("holds the package and its documents, and no tests, benchmarks or source maps", () => {
    for (const f of ["LICENSE", "README.md", "package.json", "dist/cli.js", "dist/mod.js", "dist/mod.d.ts", "dist/broker.js", "src/mod.ts", "adapters/deno.ts", "workers/broker.ts"]) expect(packed, f).toContain(f);
    for (const f of ["python/host-requirements.txt", "python/pyisolate_runtime/pack_scan.py", "examples/embed.ts", "examples/workflows/demo.json", "examples/custom_nodes/NumpyLegacyNode/pyisolate.yaml", "docs/cli.md"]) expect(packed, f).toContain(f);
    const unwanted = packed.filter((f) => /^(test|bench|scripts|codegen)\//.test(f) || f.startsWith("python/tests/") || f.endsWith(".map") || f === "dist/bench.js" || f.includes("__pycache__"));
    expect(unwanted).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
    expect(pkg.repository.url).toBe("git+https://github.com/pyisolate/pyisolate.git");
    expect(pkg.bugs.url).toBe("https://github.com/pyisolate/pyisolate/issues");
    expect(pkg.homepage).toBe("https://github.com/pyisolate/pyisolate#readme");
    expect(pkg.keywords).toContain("comfyui");
    expect(readFileSync(join(repo, "LICENSE"), "utf8")).toMatch(/^MIT License/);
    expect(pkg.license).toBe("MIT");
    // Deno users import it by name once published (deno.json's name, version and exports).
    const deno = JSON.parse(readFileSync(join(repo, "deno.json"), "utf8"));
    expect({ name: deno.name, version: deno.version, exports: deno.exports }).toEqual({
      name: "@pyisolate/pyisolate",
      version: pkg.version,
      exports: { ".": "./src/mod.ts", "./internals": "./src/internals.ts" },
    });
  });
});

describe("installed into an empty folder", () => {
  it("installs, sets up the host environment from the tarball, and says so on a second setup", { timeout: 600_000 }, async (t) => {
    const install = await run("npm", ["install", tarball, "--no-audit", "--no-fund", "--prefer-offline"]);
    expect(install.code, install.err).toBe(0);
    expect(existsSync(join(app, "node_modules", "pyisolate", "python", "host-requirements.txt"))).toBe(true);
    if (!torchWheel) {
      console.log(`installed package: not running setup and the workflows: pip finds no local ${TORCH} wheel on this machine (setup would download torch)`);
      t.skip();
      return;
    }
    const first = await run("npx", ["pyisolate", "setup", "--torch", torchWheel]);
    expect(first.code, first.out + first.err).toBe(0);
    expect(first.out).toMatch(/✓ \[5\/5\] check: torch 2\.13\.0\S* imports; uv 0\.13\.9/);
    expect(first.out).toContain(join(root, "home", "host-env"));
    const again = await run("npx", ["pyisolate", "setup"]);
    expect(again.code, again.out + again.err).toBe(0);
    expect(again.out).toContain("nothing was installed");
    expect(again.out).toMatch(/· \[3\/5\] torch: torch 2\.13\.0\S* is installed \(nothing to do\)/);
    const doctor = await run("npx", ["pyisolate", "doctor", "--custom-nodes", "node_modules/pyisolate/examples/custom_nodes"]);
    expect(doctor.out).toContain("(from the environment `pyisolate setup` made)");
  });

  const examples = "node_modules/pyisolate/examples";
  const cli = {
    node: ["npx", ["pyisolate"]],
    deno: [join(bin, "deno"), ["run", "-A", "npm:pyisolate"]],
    bun: [join(bin, "bun"), ["x", "--bun", "pyisolate"]],
  } as const;
  const lib = {
    node: [process.execPath, []],
    deno: [join(bin, "deno"), ["run", "-A"]],
    bun: [join(bin, "bun"), []],
  } as const;
  const saved: Record<string, string> = {};
  const texts: Record<string, unknown> = {};

  for (const rt of ["node", "deno", "bun"] as const) {
    it(`runs the demo workflow through the installed CLI and library under ${rt}`, { timeout: 300_000 }, async (t) => {
      if (!torchWheel) return t.skip();
      const [cmd, pre] = cli[rt];
      const out = join(app, `out-cli-${rt}`);
      const r = await run(cmd, [...pre, "run", `${examples}/workflows/demo.json`, "--custom-nodes", `${examples}/custom_nodes`, "--output-directory", out, "--json"]);
      expect(r.code, r.err).toBe(0);
      const ev = events(r.out);
      expect(ev.last).toBe("execution_success");
      expect(ev.outputs["7"]).toEqual({ text: ["1.26.4"] });
      expect(ev.outputs["8"]).toEqual({ text: [expect.stringMatching(/^NUMPY 2\./)] });
      const pngs = files(out).filter((f) => f.endsWith(".png"));
      expect(pngs).toHaveLength(1);
      saved[`cli-${rt}`] = sha(pngs[0]!);

      const script = join(app, "embed.mjs");
      writeFileSync(
        script,
        [
          'import { readFileSync } from "node:fs";',
          'import process from "node:process";',
          'import { createHost } from "pyisolate";',
          `const ex = ${JSON.stringify(examples)};`,
          "const lines = [];",
          "const logger = { debug() {}, info: (l) => lines.push(l), warn: (l) => lines.push(l), error: (l) => lines.push(l) };",
          "const host = await createHost({ customNodes: `${ex}/custom_nodes`, outputDir: process.argv[2], logger });",
          "const result = await host.run(JSON.parse(readFileSync(`${ex}/workflows/demo.json`, 'utf8')));",
          "await host.close();",
          "console.log(JSON.stringify({ status: result.status, outputs: result.outputs, logged: lines }));",
        ].join("\n"),
      );
      const [lcmd, lpre] = lib[rt];
      const libOut = join(app, `out-lib-${rt}`);
      const l = await run(lcmd, [...lpre, script, libOut]);
      expect(l.code, l.err).toBe(0);
      const res = JSON.parse(l.out.trim().split("\n").at(-1)!) as { status: string; outputs: Record<string, { text?: unknown }>; logged: string[] };
      expect(res.status).toBe("success");
      expect(res.logged.some((x) => /^\]\[ NumpyLegacyNode /.test(x))).toBe(true);
      texts[rt] = Object.fromEntries(Object.entries(res.outputs).map(([id, ui]) => [id, ui.text]));
      const libPngs = files(libOut).filter((f) => f.endsWith(".png"));
      expect(libPngs).toHaveLength(1);
      saved[`lib-${rt}`] = sha(libPngs[0]!);
    });
  }

  it("produced the same image and texts on every runtime, through CLI and library", (t) => {
    if (!torchWheel) return t.skip();
    expect(Object.keys(saved).sort()).toEqual(["cli-bun", "cli-deno", "cli-node", "lib-bun", "lib-deno", "lib-node"]);
    expect(new Set(Object.values(saved)).size).toBe(1);
    expect(texts.deno).toEqual(texts.node);
    expect(texts.bun).toEqual(texts.node);
  });
});
