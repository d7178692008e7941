import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { discoverPacks, loadPack } from "../src/manifest/manifest.ts";
import { isHostTorchRequirement, requirementName } from "../src/manifest/requirements.ts";
import { PyisolateError } from "../src/errors.ts";

let root: string;
let nodes: string;

/** Creates a pack directory with an `__init__.py` and the given files. */
function pack(name: string, files: Record<string, string> = {}): string {
  const dir = join(nodes, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-manifest-"));
  nodes = join(root, "custom_nodes");
  mkdirSync(nodes);
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("discoverPacks", () => {
  it("finds package packs and single-file packs the way ComfyUI does", () => {
    pack("Zeta");
    pack("Alpha", { "pyisolate.yaml": "isolated: true\nshare_torch: true\ndependencies:\n  - numpy==2.0.0\n" });
    pack(".hidden");
    pack("__pycache__");
    pack("Old.disabled");
    mkdirSync(join(nodes, "NoInit"));
    writeFileSync(join(nodes, "NoInit", "nodes.py"), "");
    writeFileSync(join(nodes, "single_file.py"), "NODE_CLASS_MAPPINGS = {}\n");
    writeFileSync(join(nodes, "README.md"), "not a pack");
    writeFileSync(join(nodes, "__init__.py"), "");

    const { packs, errors } = discoverPacks(nodes);
    expect(errors).toEqual([]);
    expect(packs.map((p) => [p.name, p.kind, p.layout])).toEqual([
      ["Alpha", "isolated", "package"],
      ["Zeta", "shared", "package"],
      ["single_file", "shared", "module"],
    ]);
    const alpha = packs[0]!;
    expect(alpha.path).toBe(join(nodes, "Alpha"));
    expect(alpha.manifestFile).toBe(join(nodes, "Alpha", "pyisolate.yaml"));
    expect(alpha.manifest).toMatchObject({ source: "pyisolate.yaml", isolated: true, shareTorch: true, dependencies: ["numpy==2.0.0"] });
    expect(packs[1]!.manifest).toBeNull();
    expect(packs[2]!.path).toBe(join(nodes, "single_file.py"));
  });

  it("reports a missing custom_nodes folder as NOT_FOUND", () => {
    try {
      discoverPacks(join(root, "nope"));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PyisolateError);
      expect((err as PyisolateError).code).toBe("NOT_FOUND");
      expect((err as PyisolateError).message).toContain("--custom-nodes");
    }
  });

  it("reports an invalid manifest naming file, key and expectation, and still loads the other packs", () => {
    pack("Good", { "pyisolate.yaml": "dependencies: [numpy==1.26.4]\n" });
    const badDir = pack("Foo", { "pyisolate.yaml": "isolated: true\ndependencies:\n  - numpy==2.0.0\n  - 42\n" });
    pack("Shared");
    const { packs, errors } = discoverPacks(nodes);
    expect(packs.map((p) => p.name)).toEqual(["Good", "Shared"]);
    expect(errors).toHaveLength(1);
    const e = errors[0]!;
    expect(e.code).toBe("MANIFEST_INVALID");
    expect(e.pack).toBe("Foo");
    expect(e.file).toBe(join(badDir, "pyisolate.yaml"));
    expect(e.message).toContain(
      `Foo/pyisolate.yaml: "dependencies[1]" must be a string (a PEP 508 requirement like "numpy==2.0.0"), got 42`,
    );
  });
});

describe("pyisolate.yaml", () => {
  it("applies defaults to an empty manifest: isolated, share_torch, no dependencies", () => {
    const p = loadPack(pack("Empty", { "pyisolate.yaml": "" }));
    expect(p.kind).toBe("isolated");
    expect(p.manifest).toMatchObject({ isolated: true, shareTorch: true, dependencies: [] });
    expect(p.warnings).toEqual([]);
  });

  it("treats isolated: false as a shared pack", () => {
    const p = loadPack(pack("Off", { "pyisolate.yaml": "isolated: false\ndependencies: [pillow]\n" }));
    expect(p.kind).toBe("shared");
    expect(p.manifest?.isolated).toBe(false);
  });

  it("accepts the keys real packs ship, and warns about unknown ones", () => {
    const p = loadPack(
      pack("Real", {
        "pyisolate.yaml": [
          "name: real-pack",
          "can_isolate: true",
          "share_torch: true",
          "share_cuda_ipc: true",
          "sandbox: false",
          "sandbox_mode: disabled",
          "env:",
          "  OMP_NUM_THREADS: 4",
          "  MODE: fast",
          "package_manager: uv",
          "execution_model: host-coupled",
          "dependencies:",
          "  - deepdiff>=8",
          "frobnicate: 3",
          "",
        ].join("\n"),
      }),
    );
    expect(p.kind).toBe("isolated");
    expect(p.manifest).toMatchObject({
      name: "real-pack",
      shareTorch: true,
      shareCudaIpc: true,
      sandbox: false,
      sandboxMode: "disabled",
      env: { OMP_NUM_THREADS: "4", MODE: "fast" },
      dependencies: ["deepdiff>=8"],
    });
    expect(p.manifest?.extras).toEqual({ package_manager: "uv", execution_model: "host-coupled", frobnicate: 3 });
    expect(p.warnings).toEqual(['pyisolate.yaml: unknown key "frobnicate" is ignored.']);
  });

  it("reads the sandbox, time-limit and memory-limit keys", () => {
    const p = loadPack(
      pack("Limits", {
        "pyisolate.yaml": ["sandbox:", "  network: true", "  writable_paths: [cache]", "  colour: red", "can_sandbox: true", "node_timeout: 1.5", "memory_limit: 2GiB", ""].join("\n"),
      }),
    );
    expect(p.manifest).toMatchObject({ sandbox: { network: true, writable_paths: ["cache"] }, canSandbox: true, nodeTimeoutMs: 1500, memoryLimitBytes: 2 * 2 ** 30 });
    expect(p.warnings).toEqual(['pyisolate.yaml: unknown sandbox setting "sandbox.colour" is ignored.']);
    expect(loadPack(pack("Mb", { "pyisolate.yaml": "memory_limit: 512\n" })).manifest?.memoryLimitBytes).toBe(512 * 2 ** 20);
    expect(loadPack(pack("Mb2", { "pyisolate.yaml": "memory_limit: 300MB\n" })).manifest?.memoryLimitBytes).toBe(300 * 2 ** 20);
    expect(() => loadPack(pack("BadLimits", { "pyisolate.yaml": "node_timeout: -1\nmemory_limit: lots\n" }))).toThrow(/"node_timeout" must be a positive number of seconds.*"memory_limit" must be a size such as "4GiB"/);
  });

  it("reads the Ray backend's resources and refuses bad ones, naming the key", () => {
    const p = loadPack(pack("RayRes", { "pyisolate.yaml": ["ray:", "  num_cpus: 2", "  num_gpus: 0.5", "  memory: 1GiB", "  resources:", "    pool_a: 1", ""].join("\n") }));
    expect(p.manifest?.ray).toEqual({ numCpus: 2, numGpus: 0.5, memoryBytes: 2 ** 30, resources: { pool_a: 1 } });
    expect(p.warnings).toEqual([]);
    expect(() => loadPack(pack("RayBad", { "pyisolate.yaml": "ray:\n  num_gpus: -1\n" }))).toThrow(/RayBad.*"ray.num_gpus" must be a number of GPUs, 0 or more/s);
    expect(() => loadPack(pack("RayBad2", { "pyisolate.yaml": "ray:\n  resources:\n    pool_a: zero\n" }))).toThrow(/"ray.resources.pool_a" must be a number/);
    expect(() => loadPack(pack("RayBad3", { "pyisolate.yaml": "ray:\n  gpus: 1\n" }))).toThrow(/RayBad3.*ray/s);
  });

  it("takes can_isolate when isolated is absent", () => {
    expect(loadPack(pack("C", { "pyisolate.yaml": "can_isolate: false\n" })).kind).toBe("shared");
  });

  it("drops torch-family pins under share_torch, with a warning", () => {
    const p = loadPack(pack("T", { "pyisolate.yaml": "share_torch: true\ndependencies: [torch>=2, torchvision, nvidia-cublas-cu12, numpy<2]\n" }));
    expect(p.manifest?.dependencies).toEqual(["numpy<2"]);
    expect(p.warnings[0]).toContain('"torch>=2", "torchvision", "nvidia-cublas-cu12" not installed: share_torch');
  });

  it("keeps torch pins when share_torch is false", () => {
    const p = loadPack(pack("T2", { "pyisolate.yaml": "share_torch: false\ndependencies: [torch==2.5.0]\n" }));
    expect(p.manifest?.dependencies).toEqual(["torch==2.5.0"]);
  });

  it("names every wrong key", () => {
    try {
      loadPack(pack("Bad", { "pyisolate.yaml": 'isolated: "yes"\nshare_torch: 1\ndependencies: numpy\nsandbox_mode: strict\n' }));
      expect.unreachable();
    } catch (err) {
      const msg = (err as PyisolateError).message;
      expect((err as PyisolateError).code).toBe("MANIFEST_INVALID");
      expect(msg).toContain(`"isolated" must be true or false, got "yes"`);
      expect(msg).toContain(`"share_torch" must be true or false, got 1`);
      expect(msg).toContain(`"dependencies" must be a list of requirements`);
      expect(msg).toContain(`got "numpy"`);
      expect(msg).toContain(`"sandbox_mode" must be "required" or "disabled", got "strict"`);
    }
  });

  it("rejects pip options posing as requirements", () => {
    expect(() => loadPack(pack("Opt", { "pyisolate.yaml": "dependencies: ['--index-url=http://evil']\n" }))).toThrow(
      /"dependencies\[0\]" must be a requirement, not a pip option/,
    );
  });

  it("reports YAML syntax errors with their line", () => {
    expect(() => loadPack(pack("Syntax", { "pyisolate.yaml": "isolated: true\ndependencies: [numpy\n" }))).toThrow(/Syntax\/pyisolate\.yaml: is not valid YAML \(line \d+/);
  });

  it("requires a mapping at the top level", () => {
    expect(() => loadPack(pack("List", { "pyisolate.yaml": "- numpy\n" }))).toThrow(/must be a mapping of keys .*, got a list/);
  });

  it("accepts pyisolate.yml too", () => {
    const p = loadPack(pack("Yml", { "pyisolate.yml": "dependencies: [pillow]\n" }));
    expect(p.manifest?.source).toBe("pyisolate.yml");
    expect(p.manifest?.dependencies).toEqual(["pillow"]);
  });
});

describe("pyproject.toml [tool.comfy.isolation]", () => {
  const pyproject = (iso: string, deps = '["deepdiff>=8", "torch>=2.0"]') =>
    `[project]\nname = "my-pack"\nversion = "0.1.0"\ndependencies = ${deps}\n\n[tool.comfy.isolation]\n${iso}\n`;

  it("reads can_isolate, share_torch and [project].dependencies (torch filtered under share_torch)", () => {
    const p = loadPack(pack("Py", { "pyproject.toml": pyproject("can_isolate = true\nshare_torch = true") }));
    expect(p.kind).toBe("isolated");
    expect(p.manifestFile).toBe(join(nodes, "Py", "pyproject.toml"));
    expect(p.manifest).toMatchObject({ source: "pyproject.toml", isolated: true, shareTorch: true, dependencies: ["deepdiff>=8"], name: "my-pack" });
    expect(p.warnings).toEqual(['pyproject.toml: "torch>=2.0" not installed: share_torch uses the host environment\'s torch.']);
  });

  it("defaults can_isolate and share_torch to false, as ComfyUI does", () => {
    const p = loadPack(pack("Py0", { "pyproject.toml": pyproject("") }));
    expect(p.kind).toBe("shared");
    expect(p.manifest).toMatchObject({ isolated: false, shareTorch: false });
  });

  it("ignores a pyproject without the isolation table", () => {
    const p = loadPack(pack("Plain", { "pyproject.toml": '[project]\nname = "x"\ndependencies = ["numpy"]\n' }));
    expect(p.kind).toBe("shared");
    expect(p.manifest).toBeNull();
    expect(p.manifestFile).toBeNull();
  });

  it("lets pyisolate.yaml win over pyproject.toml", () => {
    const p = loadPack(pack("Both", { "pyproject.toml": pyproject("can_isolate = false"), "pyisolate.yaml": "dependencies: [pillow]\n" }));
    expect(p.kind).toBe("isolated");
    expect(p.manifest?.source).toBe("pyisolate.yaml");
    expect(p.manifest?.dependencies).toEqual(["pillow"]);
  });

  it("names the key path of an invalid table", () => {
    expect(() => loadPack(pack("BadPy", { "pyproject.toml": pyproject('can_isolate = "yes"') }))).toThrow(
      `"tool.comfy.isolation.can_isolate" must be true or false, got "yes"`,
    );
    expect(() => loadPack(pack("BadDeps", { "pyproject.toml": pyproject("can_isolate = true", "[1]") }))).toThrow(
      `"project.dependencies[0]" must be a string (a PEP 508 requirement like "numpy==2.0.0"), got 1`,
    );
  });

  it("reports broken TOML that declares isolation, and warns about unknown keys", () => {
    expect(() => loadPack(pack("BadToml", { "pyproject.toml": "[tool.comfy.isolation]\ncan_isolate = \n" }))).toThrow(/is not valid TOML \(line \d+/);
    const p = loadPack(pack("Unknown", { "pyproject.toml": pyproject("can_isolate = true\nstandalone = true\nwhatever = 1") }));
    expect(p.warnings).toContain('pyproject.toml: unknown key "tool.comfy.isolation.whatever" is ignored.');
    expect(p.manifest?.extras).toEqual({ standalone: true, whatever: 1 });
  });
});

describe("requirement names", () => {
  it("finds the canonical distribution name", () => {
    expect(requirementName("Pillow>=10")).toBe("pillow");
    expect(requirementName("ruamel.yaml")).toBe("ruamel-yaml");
    expect(requirementName("opencv_python_headless[extra] ; python_version<'3.12'")).toBe("opencv-python-headless");
    expect(requirementName("./vendored/pkg")).toBeNull();
    expect(isHostTorchRequirement("torch")).toBe(true);
    expect(isHostTorchRequirement("nvidia_cudnn_cu12==9.1")).toBe(true);
    expect(isHostTorchRequirement("torchsde")).toBe(false);
  });
});
