// Packs as they are in the wild, without a ComfyUI checkout: real processes, real venvs.
// - a pack whose import fails is reported with its file, line and exception, remembered in
//   the metadata cache (no process starts for it next time), and retried once its files change;
// - a module only ComfyUI has is an import error that says to pass --comfyui DIR;
// - a pack written against nodes.SaveImage / LoadImage, node_helpers, latent_preview,
//   comfy.samplers and comfy.utils runs on the shims;
// - list, build and nodes show all of it; build warns about imports nothing provides;
// - share_torch never installs a torch-family package, even one a dependency pulls in.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { main } from "../src/cli/main.ts";
import { createHost, Logger } from "../src/mod.ts";
import { EnvManager } from "../src/env/env_manager.ts";
import { discoverPacks } from "../src/manifest/manifest.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");
const fixtures = join(repo, "test", "fixtures", "comfy_packs");

let root: string;

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err };
}

function py(code: string): string {
  const r = spawnSync(hostPython, ["-c", code], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

/** A host over `nodes` whose log lines are kept. */
async function hostOver(nodes: string, cacheDir: string, extra: Record<string, unknown> = {}) {
  const lines: string[] = [];
  const host = await createHost({ customNodes: nodes, cacheDir, python: hostPython, baseDir: root, logger: new Logger((_l, line) => lines.push(line)), ...extra });
  return { host, lines };
}

const spawns = (lines: string[]) => lines.filter((l) => /spawning|starting the shared Python process/.test(l));

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-comfy-packs-"));
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("a pack whose import fails", () => {
  it("is reported with file, line and exception, remembered without respawning, and retried when its files change", { timeout: 240_000 }, async () => {
    const nodes = join(root, "failing");
    const cacheDir = join(root, "failing-cache");
    mkdirSync(nodes);
    for (const name of ["ImportSyntaxError", "NeedsComfyCore"]) cpSync(join(fixtures, name), join(nodes, name), { recursive: true });

    const first = await hostOver(nodes, cacheDir);
    await first.host.close();
    const bad = first.host.packs.find((p) => p.name === "ImportSyntaxError")!;
    expect(bad.source).toBe("failed");
    expect(bad.importError).toMatchObject({ type: "SyntaxError", file: join(nodes, "ImportSyntaxError", "broken.py"), line: 3 });
    expect(bad.error?.message).toContain(`Pack "ImportSyntaxError" failed to import: SyntaxError`);
    expect(bad.error?.message).toContain(`broken.py, line 3`);
    const core = first.host.packs.find((p) => p.name === "NeedsComfyCore")!;
    expect(core.importError).toMatchObject({ type: "ModuleNotFoundError", file: join(nodes, "NeedsComfyCore", "__init__.py"), line: 3 });
    expect(core.error?.message).toContain("No module named 'comfy.sd': it is part of ComfyUI itself");
    expect(core.error?.message).toContain("--comfyui DIR");
    expect(spawns(first.lines)).toHaveLength(2);

    // Remembered: the next start spawns nothing and reports the same errors.
    const second = await hostOver(nodes, cacheDir);
    await second.host.close();
    expect(spawns(second.lines)).toEqual([]);
    const again = second.host.packs.find((p) => p.name === "ImportSyntaxError")!;
    expect(again.source).toBe("failed");
    expect(again.importError).toEqual(bad.importError);
    expect(again.error?.message).toContain("not retried until the pack's files or its environment change");

    // list and build say so, with the file and line.
    const list = await cli("list", "--custom-nodes", nodes, "--cache-dir", cacheDir, "--python", hostPython);
    expect(list.out).toMatch(/^ImportSyntaxError\s+isolated\s+pyisolate\.yaml\s+ready\s+failed$/m);
    expect(list.err).toContain("broken.py, line 3");
    const json = JSON.parse((await cli("list", "--json", "--custom-nodes", nodes, "--cache-dir", cacheDir, "--python", hostPython)).out) as Array<{ name: string; cache: string; importError?: { line: number } }>;
    expect(json.find((r) => r.name === "ImportSyntaxError")).toMatchObject({ cache: "failed", importError: { line: 3 } });
    const build = await cli("build", "--custom-nodes", nodes, "--cache-dir", cacheDir, "--python", hostPython);
    expect(build.code).toBe(1);
    expect(build.out).toMatch(/^ImportSyntaxError\s+failed\s+\S+ s\s+import failed: SyntaxError \(broken\.py:3\)$/m);
    expect(build.out).toMatch(/^NeedsComfyCore\s+failed\s+-\s+import failed: ModuleNotFoundError \(__init__\.py:3\)$/m);
    expect(build.out).toContain("2 failed to import");

    // Fixed: the changed file gives a new key, the pack is imported again and registers.
    writeFileSync(join(nodes, "ImportSyntaxError", "broken.py"), "NODE_CLASS_MAPPINGS = {}\n");
    const third = await hostOver(nodes, cacheDir);
    await third.host.close();
    expect(third.host.packs.find((p) => p.name === "ImportSyntaxError")).toMatchObject({ source: "process", nodes: 0 });
    expect(spawns(third.lines)).toHaveLength(1);
  });
});

describe("a pack written against ComfyUI's modules", () => {
  it("runs on the shims: a SaveImage subclass, LoadImage, node_helpers, latent_preview, samplers' names, tiled_scale", { timeout: 120_000 }, async () => {
    const nodes = join(root, "shimuser");
    mkdirSync(nodes);
    cpSync(join(fixtures, "ShimUser"), join(nodes, "ShimUser"), { recursive: true });
    mkdirSync(join(root, "input"), { recursive: true });
    py(`from PIL import Image\nim = Image.new("RGBA", (6, 4), (255, 64, 0, 128))\nim.save(${JSON.stringify(join(root, "input", "in.png"))})`);
    const { host } = await hostOver(nodes, join(root, "shimuser-cache"));
    try {
      const info = host.nodes();
      expect(Object.keys(info).sort()).toEqual(["LoadAndInvert", "SaveWithSuffix", "TiledDouble"]);
      expect((info.TiledDouble!.input as { required: Record<string, unknown[]> }).required.sampler![0]).toContain("dpmpp_2m");
      // Its import-time route decorator did not raise: the route is recorded with the pack (and served by `pyisolate serve`).
      expect(host.registry.packRoutes()).toEqual({ ShimUser: { routes: [{ method: "GET", path: "/shimuser/status", api: true }], static_routes: [] } });
      const events: string[] = [];
      const r = await host.run(
        {
          "1": { class_type: "LoadAndInvert", inputs: { image: "in.png" } },
          "2": { class_type: "TiledDouble", inputs: { image: ["1", 0], sampler: "euler", scheduler: "karras" } },
          "3": { class_type: "SaveWithSuffix", inputs: { images: ["2", 0], filename_prefix: "shim/out" } },
        },
        { onEvent: (e) => events.push(String(e.type)) },
      );
      expect(r.status).toBe("success");
      const saved = (r.outputs["3"] as { images: Array<{ filename: string; subfolder: string; type: string }> }).images;
      expect(saved).toEqual([{ filename: "out_shimuser_00001_.png", subfolder: "shim", type: "output" }]);
      const pixel = py(`from PIL import Image\nim = Image.open(${JSON.stringify(join(root, "output", "shim", saved[0]!.filename))})\nprint(im.size, im.getpixel((0, 0)))`);
      expect(pixel).toBe("(12, 8) (0, 191, 255)"); // doubled by tiles, inverted
      expect(events.filter((t) => t === "progress").length).toBeGreaterThanOrEqual(2); // latent_preview's callback
    } finally {
      await host.close();
    }
  });
});

describe("pyisolate nodes", () => {
  it("lists each pack's node classes, and as JSON their schemas", { timeout: 120_000 }, async () => {
    const nodes = join(root, "shimuser");
    const cacheDir = join(root, "shimuser-cache");
    const r = await cli("nodes", "--custom-nodes", nodes, "--cache-dir", cacheDir, "--python", hostPython);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^PACK\s+NODE CLASS\s+CATEGORY\s+DISPLAY NAME$/m);
    expect(r.out).toMatch(/^ShimUser\s+TiledDouble\s+sd\s+TiledDouble$/m);
    expect(r.out).toContain("ShimUser (shared): 3 nodes, 1 HTTP route (served by pyisolate serve), from cache");
    const json = JSON.parse((await cli("nodes", "--json", "--custom-nodes", nodes, "--cache-dir", cacheDir, "--python", hostPython)).out) as {
      comfyui: unknown;
      packs: Array<{ name: string; nodes: Record<string, { output: string[] }>; routes: unknown[]; static_routes: unknown[] }>;
    };
    expect(json.comfyui).toBeNull();
    expect(json.packs[0]!.routes).toEqual([{ method: "GET", path: "/shimuser/status", api: true }]); // from the cache
    expect(json.packs[0]!.static_routes).toEqual([]);
    expect(json.packs[0]!.nodes.LoadAndInvert!.output).toEqual(["IMAGE", "MASK"]);
    const failing = await cli("nodes", "--custom-nodes", join(root, "failing"), "--cache-dir", join(root, "failing-cache"), "--python", hostPython, "NeedsComfyCore");
    expect(failing.code).toBe(1);
    expect(failing.out).toContain("NeedsComfyCore (shared): failed");
    expect(failing.err).toContain("--comfyui DIR");
  });
});

describe("pyisolate build", () => {
  it("warns about imports that neither the manifest nor the host environment provide", { timeout: 120_000 }, async () => {
    const nodes = join(root, "imports");
    mkdirSync(join(nodes, "Importer"), { recursive: true });
    writeFileSync(join(nodes, "Importer", "pyisolate.yaml"), "isolated: true\nshare_torch: true\ndependencies: []\n");
    writeFileSync(
      join(nodes, "Importer", "__init__.py"),
      "import os\nimport numpy\nimport PIL\nimport folder_paths\nfrom . import helper\ntry:\n    import pyisolate_surely_absent_module\nexcept ImportError:\n    pass\nNODE_CLASS_MAPPINGS = {}\n",
    );
    writeFileSync(join(nodes, "Importer", "helper.py"), "import yaml\n");
    const r = await cli("build", "--custom-nodes", nodes, "--cache-dir", join(root, "imports-cache"), "--python", hostPython);
    expect(r.code).toBe(0);
    const warnings = r.err.split("\n").filter((l) => l.startsWith("warning: Importer:"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("it imports pyisolate_surely_absent_module, which neither its manifest's dependencies nor the host environment");
    expect(r.out).toMatch(/^Importer\s+built\s+\S+ s\s+0 nodes, /m);
  });
});

describe("share_torch", () => {
  it("never installs a torch-family package a dependency pulls in: the build fails naming it and the fix", { timeout: 240_000 }, async () => {
    const wheels = join(root, "wheels");
    mkdirSync(wheels);
    // Two local wheels: `vision-user` requires a torchvision (also local), which the host lacks.
    py(`
import base64, hashlib, os, zipfile
def wheel(name, version, requires):
    dist = f"{name.replace('-', '_')}-{version}"
    files = {f"{name.replace('-', '_')}/__init__.py": b"",
             f"{dist}.dist-info/METADATA": ("Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\n" % (name, version) + "".join(f"Requires-Dist: {r}\\n" for r in requires)).encode(),
             f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    record = "".join(f"{k},sha256={base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b'=').decode()},{len(v)}\\n" for k, v in files.items())
    files[f"{dist}.dist-info/RECORD"] = (record + f"{dist}.dist-info/RECORD,,\\n").encode()
    path = os.path.join(${JSON.stringify(wheels)}, f"{dist}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
    return path
tv = wheel("torchvision", "0.0.1", ["torch"])
wheel("vision-user", "1.0", [f"torchvision @ file://{tv}"])
wheel("torch-user", "1.0", ["torch"])
`);
    const nodes = join(root, "torchfamily");
    mkdirSync(join(nodes, "VisionPack"), { recursive: true });
    mkdirSync(join(nodes, "TorchPack"), { recursive: true });
    writeFileSync(join(nodes, "VisionPack", "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
    writeFileSync(join(nodes, "VisionPack", "pyisolate.yaml"), `isolated: true\nshare_torch: true\ndependencies:\n  - "vision-user @ file://${join(wheels, "vision_user-1.0-py3-none-any.whl")}"\n`);
    writeFileSync(join(nodes, "TorchPack", "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
    writeFileSync(join(nodes, "TorchPack", "pyisolate.yaml"), `isolated: true\nshare_torch: true\ndependencies:\n  - "torch-user @ file://${join(wheels, "torch_user-1.0-py3-none-any.whl")}"\n`);
    const cacheDir = join(root, "torchfamily-cache");
    const envs = await EnvManager.create({ cacheDir, python: hostPython });
    expect(envs.host.torchPackages.torchvision).toBeUndefined(); // the premise: the host has none
    const results = await envs.build(discoverPacks(nodes).packs);
    const vision = results.find((r) => r.pack === "VisionPack")!;
    expect(vision.status).toBe("failed");
    expect(vision.error?.message).toContain("its dependencies need torchvision, which share_torch takes from the host environment");
    expect(vision.error?.message).toContain("Install the torchvision build that matches torch");
    expect(vision.error?.message).toContain("share_torch: false");
    expect(existsSync(vision.envDir!)).toBe(false);
    // A dependency on torch itself installs without a torch of its own.
    const torch = results.find((r) => r.pack === "TorchPack")!;
    expect(torch.status, torch.error?.message).toBe("built");
    const site = envs.sitePackagesOf(torch.envDir!);
    expect(readdirSync(site).filter((n) => /^(torch|torchvision|triton|nvidia([-_].*)?)$/.test(n))).toEqual([]);
    expect(readdirSync(join(root, "torchfamily-cache", "envs")).filter((n) => n.startsWith(".tmp-"))).toEqual([]);
  });
});
