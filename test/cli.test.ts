import { sandboxAvailability } from "../src/process/sandbox.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { commands, main } from "../src/cli/main.ts";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { planManifest, type PackScan } from "../src/cli/init_plan.ts";
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
    for (const name of ["list", "nodes", "build", "doctor", "init", "setup"]) expect(help.out).toContain(`  ${commands[name]!.usage}`);
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
    expect(cmd).toEqual({ code: 2, out: "", err: 'error: Unknown command "bulid". Did you mean "build"? Commands: run, serve, convert, list, nodes, build, doctor, init, setup.\n' });
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
    expect(r.out).toMatch(sandboxAvailability().ok ? /^✓ sandbox: bubblewrap \S+ works/m : /^! sandbox: not available: /m);
    expect(r.out).toMatch(/^✓ JavaScript runtime: node \d+/m);
    expect(r.code).toBe(0);
  });

  it("says what is missing and exits 1", async () => {
    const r = await cli("doctor", "--custom-nodes", nodes, "--cache-dir", cacheDir, "--python", join(root, "no-python"));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^✗ host Python: .*no-python.* not an executable file/m);
    // The fix is the exact command that makes a host environment, never a bare pip install.
    expect(r.out).toContain("    → run `npx pyisolate setup` (a user-level environment with the pinned torch, numpy and uv)");
    expect(r.out).not.toMatch(/pip install torch/);
  });

  it("points a host Python without torch at the setup command", async () => {
    const bare = ["/usr/bin/python3", "/usr/local/bin/python3"].find((p) => existsSync(p) && spawnSync(p, ["-c", "import torch"]).status !== 0);
    if (!bare) {
      console.log("doctor: not checking the no-torch advice: no python3 without torch in /usr/bin or /usr/local/bin");
      return;
    }
    const r = await cli("doctor", "--custom-nodes", nodes, "--cache-dir", cacheDir, "--python", bare);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^✗ torch: not installed in .*'s environment$/m);
    expect(r.out).toContain("    → run `npx pyisolate setup` to make an environment with the pinned torch build");
  });
});

/** A package index (PEP 503 simple API) on loopback that has exactly these projects; it counts what it was asked. */
let index: Server;
let indexUrl: string;
const indexed = new Set(["scikit-learn", "numpy", "einops", "opencv-python", "pillow", "pyyaml", "scikit-image", "colour-science", "deepdiff"]);
const asked: string[] = [];

beforeAll(async () => {
  index = createServer((req, res) => {
    const name = /^\/simple\/([^/]+)\/$/.exec(req.url ?? "")?.[1] ?? "";
    asked.push(name);
    res.writeHead(indexed.has(name) ? 200 : 404, { "content-type": "text/html" }).end(indexed.has(name) ? `<a href="#">${name}-1.0.tar.gz</a>` : "not found");
  });
  await new Promise<void>((r) => index.listen(0, "127.0.0.1", r));
  indexUrl = `http://127.0.0.1:${(index.address() as AddressInfo).port}/simple/`;
});

afterAll(() => new Promise<void>((r) => index.close(() => r())));

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
        "text = 'import clipseg_in_a_string'  # a string is not an import",
        "def later():",
        "    import clipseg  # inside a function: an import, but not in the index",
        "try:",
        "    import colour  # provided by the colour-science requirement",
        "except ImportError:",
        "    colour = None",
        "",
      ].join("\n"),
    );
    writeFileSync(join(dir, "helpers.py"), "import einops\n");
    writeFileSync(join(dir, "lib", "util.py"), "");
    writeFileSync(join(dir, "requirements.txt"), "scikit-learn>=1.3  # for clustering\n-r more.txt\n--extra-index-url https://x\ntorch==2.1\nnumpy<2\ncolour-science>=0.4\n\n# comment\n");

    asked.length = 0;
    const r = await cli("init", dir, "--index-url", indexUrl, ...at());
    expect(r.code, r.err).toBe(0);
    expect(asked).toContain("clipseg");
    expect(asked).not.toContain("clipseg-in-a-string");
    expect(r.err).toContain(`warning: left out "clipseg" (from nodes.py:16): the package index ${indexUrl} has no such project.`);
    expect(r.out).toContain("pyisolate.yaml");
    const text = readFileSync(join(dir, "pyisolate.yaml"), "utf8");
    const doc = parseYaml(text);
    expect(doc).toEqual({
      isolated: true,
      share_torch: true,
      dependencies: ["colour-science>=0.4", "einops", "numpy<2", "opencv-python", "pillow", "pyyaml", "scikit-image", "scikit-learn>=1.3"],
    });
    expect(text).toContain("torch, torchvision");
    expect(text).toContain("# Not in the package index, left out: clipseg.");
    // the written manifest is valid
    const found = discoverPacks(nodes);
    expect(found.packs.find((p) => p.name === "ImportsNode")?.kind).toBe("isolated");

    const again = await cli("init", dir, ...at());
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already exists; pass --force/);
    const forced = await cli("init", "ImportsNode", "--force", "--no-index-check", ...at());
    expect(forced.code).toBe(0);
    expect(parseYaml(readFileSync(join(dir, "pyisolate.yaml"), "utf8")).dependencies).toContain("clipseg");
  });

  it("writes the names unchecked, and says so, when the index cannot be reached", async () => {
    const dir = join(root, "custom_nodes", "OfflineNode");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "__init__.py"), "import einops\n");
    // A loopback port nothing listens on: the connection is refused at once.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const r = await cli("init", dir, "--index-url", `http://127.0.0.1:${port}/simple/`, ...at());
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/warning: could not ask the package index http:\/\/127\.0\.0\.1:\d+\/simple\/ \(ECONNREFUSED\); 1 name written unchecked: einops\. Pass --index-url, or --no-index-check when offline\./);
    expect(parseYaml(readFileSync(join(dir, "pyisolate.yaml"), "utf8")).dependencies).toEqual(["einops"]);
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
  const scan = (imports: string[], distributions: Record<string, string[]> = {}): PackScan => ({
    python: "3.11.7",
    files: 1,
    imports: Object.fromEntries(imports.map((m, i) => [m, [`__init__.py:${i + 1}`]])),
    own: ["__init__", "Pack"],
    stdlib: ["os", "sys"],
    distributions,
    errors: [],
  });

  it("keeps one distribution per import family and reports lines that name no package", () => {
    const dir = mkdtempSync(join(tmpdir(), "pyisolate-init-plan-"));
    writeFileSync(join(dir, "requirements.txt"), "opencv-python-headless==4.10.0.84\ngit+https://example.invalid/x/y.git\n");
    const plan = planManifest(dir, scan(["cv2", "PIL", "yaml", "os"]));
    expect(plan.dependencies).toEqual(["opencv-python-headless==4.10.0.84", "pillow", "pyyaml"]);
    expect(plan.skipped).toEqual(["git+https://example.invalid/x/y.git"]);
    expect(plan.origin).toEqual({ "opencv-python-headless": "requirements.txt", pillow: "__init__.py:2", pyyaml: "__init__.py:3" });
    rmSync(dir, { recursive: true, force: true });
  });

  it("names an import by the installed distribution that provides it, and leaves declared ones alone", () => {
    const dir = mkdtempSync(join(tmpdir(), "pyisolate-init-plan-"));
    writeFileSync(join(dir, "requirements.txt"), "colour-science\n");
    // Several distributions provide google: the known one (protobuf) wins; colour is colour-science's.
    const plan = planManifest(dir, scan(["google", "colour", "attr", "torchvision"], { google: ["protobuf", "googleapis-common-protos"], attr: ["attrs"], colour: ["colour-science"] }));
    expect(plan.dependencies).toEqual(["attrs", "colour-science", "protobuf"]);
    expect(plan.fromHost).toEqual(["torchvision"]);
    rmSync(dir, { recursive: true, force: true });
  });
});
