// The host environment `pyisolate setup` makes, and how the host Python is found: the pinned
// list, the torch builds `--torch` names, the order of the sources (option, env, a ComfyUI
// install, ./.venv, the setup environment, PATH with torch) and what the error says. The whole
// setup from a packed tarball runs in test/installed_package.e2e.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveHostPython, setupEnvDir, SETUP_STAMP } from "../src/env/host_python.ts";
import { readHostRequirements, setupHostEnv, torchPlan, TORCH_INDEX } from "../src/env/setup_env.ts";
import type { PyisolateError } from "../src/errors.ts";
import { copyPackagePython } from "../src/paths.ts";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const repo = join(import.meta.dirname, "..");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");
let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-setup-"));
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** An executable that runs the host Python (so its probe reports the host's environment). */
function pythonAt(path: string): string {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, `#!/bin/sh\nexec ${hostPython} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

describe("the pinned list", () => {
  it("ships in python/, pins every line, and agrees with the clone's dev environment on torch, numpy and uv", () => {
    const reqs = readHostRequirements();
    expect(reqs.file).toBe(join(repo, "python", "host-requirements.txt"));
    expect(reqs.torchVersion).toBe("2.13.0");
    expect(reqs.pins.map((p) => p.split("==")[0])).toEqual(["numpy", "uv", "pillow", "pyyaml", "safetensors", "einops", "tqdm", "psutil", "comfyui-frontend-package"]);
    const dev = readFileSync(join(repo, "scripts", "host-requirements.txt"), "utf8");
    for (const pin of [`torch==${reqs.torchVersion}`, ...reqs.pins.filter((p) => /^(numpy|uv)==/.test(p))]) expect(dev).toContain(`${pin}\n`);
    const bad = join(root, "bad-reqs.txt");
    writeFileSync(bad, "numpy>=2\n");
    expect(() => readHostRequirements(bad)).toThrow(/"numpy>=2" is not a pin \(name==version\)/);
  });
});

describe("--torch", () => {
  it("names a build: cpu, cu<NNN>, pypi, a wheel, a URL or a requirement", () => {
    expect(torchPlan("cpu", "2.13.0")).toEqual({
      pipArgs: ["--index-url", `${TORCH_INDEX}/cpu`, "torch==2.13.0+cpu"],
      version: "2.13.0+cpu",
      label: "torch 2.13.0, CPU build (download.pytorch.org/whl/cpu)",
    });
    expect(torchPlan("cu128", "2.13.0")).toMatchObject({ pipArgs: ["--index-url", `${TORCH_INDEX}/cu128`, "torch==2.13.0+cu128"], label: "torch 2.13.0, CUDA 12.8 build (download.pytorch.org/whl/cu128)" });
    expect(torchPlan("pypi", "2.13.0")).toEqual({ pipArgs: ["torch==2.13.0"], version: "2.13.0", label: "torch 2.13.0 from PyPI" });
    const wheel = join(root, "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl");
    writeFileSync(wheel, "");
    expect(torchPlan(wheel, "2.13.0")).toMatchObject({ pipArgs: [wheel], version: "2.13.0+cpu" });
    expect(torchPlan("https://example.invalid/torch.whl", "2.13.0")).toMatchObject({ version: null });
    expect(torchPlan("torch==2.12.1", "2.13.0")).toMatchObject({ pipArgs: ["torch==2.12.1"], version: "2.12.1" });
    expect(() => torchPlan(join(root, "torch-9-x.whl"), "2.13.0")).toThrow(/no such wheel file/);
    try {
      torchPlan("gpu", "2.13.0");
      expect.unreachable();
    } catch (e) {
      expect((e as PyisolateError).code).toBe("USAGE");
      expect((e as Error).message).toBe('--torch "gpu" is not a torch build: give cpu, cu<NNN> (e.g. cu128), pypi, a torch wheel file, a URL, or a requirement such as torch==2.13.0.');
    }
  });

  it("defaults to the CPU build on Linux x86-64 without an NVIDIA driver, else PyPI's", () => {
    const plan = torchPlan(undefined, "2.13.0", { PATH: "" });
    const cpuMachine = process.platform === "linux" && process.arch === "x64" && !plan.label.includes("PyPI");
    expect(plan.label).toBe(cpuMachine ? "torch 2.13.0, CPU build (download.pytorch.org/whl/cpu)" : "torch 2.13.0 from PyPI");
  });
});

describe("setup's errors", () => {
  it("names a base Python that is missing, or is no Python", async () => {
    const env = { PYISOLATE_HOME: join(root, "home-err"), PATH: "" };
    await expect(setupHostEnv({ env })).rejects.toThrow(/No python3 on PATH to make the host environment with/);
    await expect(setupHostEnv({ env, base: join(root, "nope") })).rejects.toThrow(/--python ".*nope" is not an executable file/);
    const fake = join(root, "fake-python");
    writeFileSync(fake, "#!/bin/sh\necho hello\n");
    chmodSync(fake, 0o755);
    await expect(setupHostEnv({ env, base: fake, torch: "cpu" })).rejects.toMatchObject({ code: "PYTHON_NOT_FOUND", message: expect.stringMatching(/fake-python did not run as a Python interpreter: hello/) });
  });
});

describe("finding the host Python", () => {
  const probeDir = () => join(root, "probe");

  it("takes the Python of the ComfyUI install around the custom nodes, before ./.venv and the setup environment", async () => {
    const comfy = join(root, "ComfyUI");
    mkdirSync(join(comfy, "custom_nodes"), { recursive: true });
    mkdirSync(join(comfy, "comfy"));
    writeFileSync(join(comfy, "main.py"), "");
    writeFileSync(join(comfy, "folder_paths.py"), "");
    pythonAt(join(comfy, "venv", "bin", "python"));
    const found = await resolveHostPython({ customNodes: join(comfy, "custom_nodes"), cwd: repo, cacheDir: probeDir(), env: { PATH: "" } });
    expect(found.source).toBe("comfyui");
    // Not a ComfyUI install without its files.
    rmSync(join(comfy, "folder_paths.py"));
    const other = await resolveHostPython({ customNodes: join(comfy, "custom_nodes"), cwd: repo, cacheDir: probeDir(), env: { PATH: "" } });
    expect(other.source).toBe("venv");
  });

  it("outside a clone, takes the environment setup made — once setup finished — and never python3 on PATH without torch", async () => {
    const home = join(root, "home");
    const outside = join(root, "project");
    mkdirSync(outside, { recursive: true });
    const env = { PYISOLATE_HOME: home, PATH: "/usr/bin:/bin" };
    const dir = setupEnvDir(env);
    expect(dir).toBe(join(home, "host-env"));
    pythonAt(join(dir, "bin", "python"));
    // Without the stamp setup writes last, the environment is incomplete and not used.
    const e = await resolveHostPython({ cwd: outside, cacheDir: probeDir(), env }).catch((x: unknown) => x as PyisolateError);
    if (e instanceof Error) {
      expect((e as PyisolateError).code).toBe("PYTHON_NOT_FOUND");
      expect(e.message).toContain(`the environment in ${dir} is incomplete (setup did not finish)`);
      expect(e.message).toContain("Run `npx pyisolate setup` to make one");
    } else {
      // /usr/bin/python3 has torch on this machine: it was found on PATH, with torch.
      expect(e.source).toBe("path");
      expect(e.torchVersion).not.toBeNull();
    }
    writeFileSync(join(dir, SETUP_STAMP), "{}");
    const found = await resolveHostPython({ cwd: outside, cacheDir: probeDir(), env });
    expect(found.source).toBe("setup");
    expect(found.torchVersion).not.toBeNull();
    // PYISOLATE_PYTHON still wins.
    expect((await resolveHostPython({ cwd: outside, cacheDir: probeDir(), env: { ...env, PYISOLATE_PYTHON: hostPython } })).source).toBe("env");
  });

  it("says what it skipped when nothing has torch", async () => {
    const bin = join(root, "bin-no-torch");
    const noTorch = join(bin, "python3");
    mkdirSync(bin, { recursive: true });
    // A python3 whose environment has no torch: the host Python with site-packages hidden.
    writeFileSync(noTorch, `#!/bin/sh\nexec ${hostPython} -S "$@"\n`);
    chmodSync(noTorch, 0o755);
    const outside = join(root, "project2");
    mkdirSync(outside, { recursive: true });
    const e = await resolveHostPython({ cwd: outside, cacheDir: probeDir(), env: { PYISOLATE_HOME: join(root, "home-none"), PATH: bin } }).catch((x: unknown) => x as Error);
    expect((e as PyisolateError).code).toBe("PYTHON_NOT_FOUND");
    expect((e as Error).message).toBe(
      `No host Python with torch found (${noTorch} on PATH has no torch). Run \`npx pyisolate setup\` to make one (a user-level environment with the pinned torch), or pass --python (PYISOLATE_PYTHON) with the interpreter whose environment holds torch, such as ComfyUI's.`,
    );
  });
});

describe("the package loaded over HTTPS (Deno, from JSR)", () => {
  it("copies python/ from the registry's file list, checking every checksum", async () => {
    const files = ["/python/host-requirements.txt", "/python/pyisolate_runtime/__init__.py", "/src/mod.ts"];
    const sum = (f: string) => `sha256-${createHash("sha256").update(readFileSync(join(repo, f))).digest("hex")}`;
    let manifest: Record<string, { size: number; checksum: string }> = Object.fromEntries(files.map((f) => [f, { size: 0, checksum: sum(f) }]));
    const server = createServer((req, res) => {
      const url = req.url ?? "";
      if (url === "/@pyisolate/pyisolate/0.1.0_meta.json") return void res.end(JSON.stringify({ manifest }));
      const m = /^\/@pyisolate\/pyisolate\/0\.1\.0(\/.*)$/.exec(url);
      if (m && files.includes(m[1]!)) return void res.end(readFileSync(join(repo, m[1]!)));
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const rootUrl = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/@pyisolate/pyisolate/0.1.0/`);
    try {
      const target = join(root, "pkg", "0.1.0");
      await copyPackagePython(rootUrl, target);
      expect(readFileSync(join(target, "python", "host-requirements.txt"), "utf8")).toBe(readFileSync(join(repo, "python", "host-requirements.txt"), "utf8"));
      expect(readFileSync(join(target, "python", "pyisolate_runtime", "__init__.py"), "utf8")).toContain("pyisolate");
      manifest = { ...manifest, "/python/host-requirements.txt": { size: 0, checksum: "sha256-00" } };
      await expect(copyPackagePython(rootUrl, join(root, "pkg", "bad"))).rejects.toMatchObject({ code: "IO_FAILED", message: expect.stringContaining("/python/host-requirements.txt from") });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
