import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { commands, main } from "../src/cli/main.ts";
import { planManifest } from "../src/cli/init_plan.ts";
import { discoverPacks } from "../src/manifest/manifest.ts";
import { RUNTIME_VERSION } from "../src/version.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");

let root: string;
let nodes: string;
let cacheDir: string;

/** Runs the CLI in-process and captures what it writes. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
  });
  return { code, out, err };
}

/** The global flags that point a command at the temp folders. */
const at = () => ["--custom-nodes", nodes, "--cache-dir", cacheDir, "--python", hostPython];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-cli-"));
  nodes = join(root, "custom_nodes");
  cacheDir = join(root, "cache");
  mkdirSync(nodes);
  cpSync(join(repo, "test", "fixtures", "packs", "BrokenManifestNode"), join(nodes, "BrokenManifestNode"), { recursive: true });
  mkdirSync(join(nodes, "TinyNode"));
  writeFileSync(join(nodes, "TinyNode", "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
  writeFileSync(join(nodes, "TinyNode", "pyisolate.yaml"), "isolated: true\nshare_torch: true\ndependencies: []\n");
  writeFileSync(join(nodes, "shared_one.py"), "NODE_CLASS_MAPPINGS = {}\n");
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("help and usage", () => {
  it("prints global help and the version", async () => {
    const help = await cli("--help");
    expect(help.code).toBe(0);
    for (const name of ["list", "nodes", "build", "doctor", "init"]) expect(help.out).toContain(`  ${commands[name]!.usage}`);
    expect(help.out).toContain("--custom-nodes DIR");
    expect(help.out).toContain("--cache-dir DIR");
    const version = await cli("--version");
    expect(version).toEqual({ code: 0, out: `${RUNTIME_VERSION}\n`, err: "" });
    expect(JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).version).toBe(RUNTIME_VERSION);
  });

  it("has --help for every command", async () => {
    for (const name of Object.keys(commands)) {
      const r = await cli(name, "--help");
      expect(r.code).toBe(0);
      expect(r.out).toContain(`Usage: pyisolate ${commands[name]!.usage}`);
      for (const f of commands[name]!.flags) expect(r.out).toContain(f.name);
      expect((await cli("help", name)).out).toBe(r.out);
    }
  });

  it("is documented in docs/cli.md, command by command and flag by flag", () => {
    const doc = readFileSync(join(repo, "docs", "cli.md"), "utf8");
    for (const [name, c] of Object.entries(commands)) {
      expect(doc, name).toContain(`## \`pyisolate ${c.usage}\``);
      expect(doc, name).toContain(c.summary.charAt(0).toUpperCase() + c.summary.slice(1));
      if (c.description) expect(doc, name).toContain(c.description);
      for (const f of c.flags) expect(doc, `${name} ${f.name}`).toContain(`\`${f.name}${f.value ? ` ${f.value}` : ""}\``);
    }
    for (const flag of ["--custom-nodes DIR", "--cache-dir DIR", "--python PATH", "--comfyui DIR", "--comfyui-args ARGS", "--verbose", "--help", "--version"]) expect(doc).toContain(flag);
  });

  it("answers usage errors with one line and exit code 2", async () => {
    const none = await cli();
    expect(none.code).toBe(2);
    expect(none.err).toContain("Usage: pyisolate <command>");
    for (const argv of [["frobnicate"], ["list", "--frob"], ["build", "--concurrency"], ["build", "--concurrency", "0"], ["init"]]) {
      const r = await cli(...argv);
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.err.trim().split("\n")).toHaveLength(1);
      expect(r.err).toMatch(/^error: /);
    }
  });
});

describe("argument parsing", () => {
  it("suggests the closest command or flag for a typo", async () => {
    const cmd = await cli("bulid");
    expect(cmd).toEqual({ code: 2, out: "", err: 'error: Unknown command "bulid". Did you mean "build"? Commands: run, list, nodes, build, doctor, init.\n' });
    const flag = await cli("list", "--jsn");
    expect(flag.code).toBe(2);
    expect(flag.err).toBe('error: Unknown option --jsn for "list". Did you mean "--json"? Run "pyisolate list --help" for the options.\n');
    const global = await cli("list", "--custom-node", "x");
    expect(global.err).toContain('Did you mean "--custom-nodes"?');
    const far = await cli("list", "--zzzzzzzz");
    expect(far.err).not.toContain("Did you mean");
    const help = await cli("help", "lst");
    expect(help.err).toContain('Unknown command "lst". Did you mean "list"?');
  });

  it("takes values inline or as the next argument, anywhere after the command, and positionals after --", async () => {
    const r = await cli("build", "--concurrency=0");
    expect(r.err).toBe('error: --concurrency must be a positive integer, got "0".\n');
    expect((await cli("build", "--concurrency", "0")).err).toBe(r.err);
    expect((await cli("build", "--json=1")).err).toMatch(/^error: Unknown option --json for "build"/);
    expect((await cli("list", "--json=yes")).err).toBe("error: Option --json takes no value.\n");
    expect((await cli("list", "--custom-nodes")).err).toBe("error: Option --custom-nodes needs a value (DIR).\n");
    const init = await cli("init", "--", "--force");
    expect(init.err).toMatch(/--force is not a folder/);
  });
});

describe("list", () => {
  it("shows packs, their kind, manifest, environment and cache state", async () => {
    const r = await cli("list", ...at());
    expect(r.code).toBe(0);
    const lines = r.out.trim().split("\n");
    expect(lines[0]).toMatch(/^PACK\s+KIND\s+MANIFEST\s+ENV\s+CACHE$/);
    expect(lines.find((l) => l.startsWith("TinyNode"))).toMatch(/^TinyNode\s+isolated\s+pyisolate\.yaml\s+missing\s+none$/);
    expect(lines.find((l) => l.startsWith("shared_one"))).toMatch(/^shared_one\s+shared\s+-\s+shared\s+none$/);
    expect(lines.find((l) => l.startsWith("BrokenManifestNode"))).toMatch(/invalid/);
    expect(r.err).toContain(`"dependencies[1]" must be a string`);

    const json = await cli("list", "--json", ...at());
    const rows = JSON.parse(json.out) as Array<{ name: string; kind: string; env?: string; error?: string }>;
    expect(rows.map((x) => [x.name, x.kind]).sort()).toEqual([
      ["BrokenManifestNode", "invalid"],
      ["TinyNode", "isolated"],
      ["shared_one", "shared"],
    ]);
    expect(rows.find((x) => x.name === "TinyNode")?.env).toBe("missing");
  });

  it("fails with one line when the custom nodes folder is missing", async () => {
    const r = await cli("list", "--custom-nodes", join(root, "nope"), "--cache-dir", cacheDir);
    expect(r.code).toBe(1);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toContain("does not exist");
    expect(r.err).not.toContain("    at ");
  });
});

describe("build", () => {
  it("builds what it can, reports the broken manifest, exits 1; the next run is cached", { timeout: 240_000 }, async () => {
    const first = await cli("build", ...at());
    expect(first.code).toBe(1);
    expect(first.out).toMatch(/^TinyNode\s+built\s+/m);
    expect(first.out).toMatch(/^BrokenManifestNode\s+failed\s+/m);
    expect(first.out).toMatch(/^shared_one\s+shared\s+/m);
    expect(first.out).toContain("1 built, 0 cached, 1 failed, 1 shared");
    expect(first.err).toContain(`"dependencies[1]" must be a string`);

    const second = await cli("build", "TinyNode", ...at());
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/^TinyNode\s+cached\s+/m);
    expect(second.out).toContain("0 built, 1 cached, 0 failed, 0 shared");

    const list = await cli("list", ...at());
    expect(list.out).toMatch(/^TinyNode\s+isolated\s+pyisolate\.yaml\s+ready\s+hit$/m);
  });

  it("rejects unknown pack names, listing the known ones; stack traces only with --verbose", async () => {
    const r = await cli("build", "NoSuchPack", ...at());
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: Unknown pack "NoSuchPack" in ${nodes}. Known packs: BrokenManifestNode, TinyNode, shared_one.\n`);
    const v = await cli("build", "NoSuchPack", "--verbose", ...at());
    expect(v.code).toBe(1);
    expect(v.err).toContain("    at ");
  });
});

describe("doctor", () => {
  it("checks the host Python, torch, uv, /dev/shm and the runtime", async () => {
    const r = await cli("doctor", ...at());
    expect(r.out).toMatch(/^✓ host Python: \d+\.\d+\.\d+ at .* \(from --python\)$/m);
    expect(r.out).toMatch(/^✓ torch: \S+ in the host environment/m);
    expect(r.out).toMatch(/^✓ uv: uv \d+\.\d+\.\d+/m);
    expect(r.out).toMatch(/^✓ \/dev\/shm: [\d.]+ GiB free$/m);
    expect(r.out).toMatch(/^✓ JavaScript runtime: node \d+/m);
    expect(r.code).toBe(0);
  });

  it("says what is missing and exits 1", async () => {
    const r = await cli("doctor", "--custom-nodes", nodes, "--cache-dir", cacheDir, "--python", join(root, "no-python"));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^✗ host Python: .*no-python.* not an executable file/m);
    expect(r.out).toContain("→ ");
  });
});

describe("init", () => {
  it("writes a starter pyisolate.yaml from requirements.txt and imports", async () => {
    const dir = join(root, "custom_nodes", "ImportsNode");
    mkdirSync(join(dir, "lib"), { recursive: true });
    writeFileSync(join(dir, "__init__.py"), "from .nodes import NODE_CLASS_MAPPINGS\n");
    writeFileSync(
      join(dir, "nodes.py"),
      [
        "import os, sys, json",
        "import numpy as np",
        "from PIL import Image",
        "import cv2",
        "import yaml",
        "import torch, torchvision",
        "import comfy.model_management",
        "import folder_paths",
        "from comfy_api.latest import io",
        "from . import helpers",
        "from lib import util",
        "import helpers",
        "from skimage import filters  # scikit-image",
        "",
      ].join("\n"),
    );
    writeFileSync(join(dir, "helpers.py"), "import einops\n");
    writeFileSync(join(dir, "lib", "util.py"), "");
    writeFileSync(join(dir, "requirements.txt"), "scikit-learn>=1.3  # for clustering\n-r more.txt\n--extra-index-url https://x\ntorch==2.1\nnumpy<2\n\n# comment\n");

    const r = await cli("init", dir, ...at());
    expect(r.code).toBe(0);
    expect(r.out).toContain("pyisolate.yaml");
    const text = readFileSync(join(dir, "pyisolate.yaml"), "utf8");
    const doc = parseYaml(text);
    expect(doc).toEqual({
      isolated: true,
      share_torch: true,
      dependencies: ["einops", "numpy<2", "opencv-python", "pillow", "pyyaml", "scikit-image", "scikit-learn>=1.3"],
    });
    expect(text).toContain("torch, torchvision");
    // the written manifest is valid
    const found = discoverPacks(nodes);
    expect(found.packs.find((p) => p.name === "ImportsNode")?.kind).toBe("isolated");

    const again = await cli("init", dir, ...at());
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already exists; pass --force/);
    const forced = await cli("init", "ImportsNode", "--force", ...at());
    expect(forced.code).toBe(0);
  });

  it("refuses a folder that does not exist", async () => {
    const r = await cli("init", join(root, "missing-pack"), ...at());
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: .*missing-pack is not a folder/);
  });
});

describe("the built executable", () => {
  it("runs --help as a real process", { timeout: 120_000 }, () => {
    // The project's full build writes dist/cli.js; build just the CLI aside so this test
    // does not depend on (or disturb) the rest of dist/.
    const outDir = join(repo, "node_modules", ".cache", "pyisolate-cli-test");
    const build = spawnSync("npx", ["tsup", "src/cli/bin.ts", "--no-config", "--format", "esm", "--platform", "node", "--target", "node20", "--out-dir", outDir, "--silent"], {
      cwd: repo,
      encoding: "utf8",
    });
    expect(build.status, build.stderr).toBe(0);
    const bins = [join(outDir, "bin.js")];
    const dist = join(repo, "dist", "cli.js");
    if (existsSync(dist) && statSync(dist).mtimeMs >= statSync(join(repo, "src", "cli", "main.ts")).mtimeMs) bins.push(dist);
    for (const bin of bins) {
      const r = spawnSync("node", [bin, "--help"], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain("Usage: pyisolate <command>");
      const bad = spawnSync("node", [bin, "build", "--custom-nodes", join(root, "nope")], { encoding: "utf8" });
      expect(bad.status).toBe(1);
      expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});

describe("init's plan", () => {
  it("keeps one distribution per import family and reports lines that name no package", () => {
    const dir = mkdtempSync(join(tmpdir(), "pyisolate-init-plan-"));
    writeFileSync(join(dir, "__init__.py"), "import cv2\nimport PIL\nimport yaml\n");
    writeFileSync(join(dir, "requirements.txt"), "opencv-python-headless==4.10.0.84\ngit+https://example.invalid/x/y.git\n");
    const plan = planManifest(dir, ["os", "sys"]);
    expect(plan.dependencies).toEqual(["opencv-python-headless==4.10.0.84", "pillow", "pyyaml"]);
    expect(plan.skipped).toEqual(["git+https://example.invalid/x/y.git"]);
    rmSync(dir, { recursive: true, force: true });
  });
});
