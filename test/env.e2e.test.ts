// End to end: real uv, real venvs, real Python processes. Builds environments from the
// example packs into a temp cache directory (uv's own download cache is shared, as usual).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { EnvManager, type BuildResult } from "../src/env/env_manager.ts";
import { discoverPacks, type PackInfo } from "../src/manifest/manifest.ts";
import { resolveHostPython, resolveUv, runProcess, type HostPython } from "../src/env/host_python.ts";
import { PyisolateError } from "../src/errors.ts";
import { getRuntime } from "../src/runtime/detect.ts";
import { acquireLock } from "../src/util/fs.ts";
import { hostname } from "node:os";
import type { Runtime } from "../src/runtime/contract.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const E2E_TIMEOUT = 240_000;

let root: string;
let nodes: string;
let cacheDir: string;
let host: HostPython;
let spawned: string[] = [];
let counting: Runtime;

function packs(): Map<string, PackInfo> {
  return new Map(discoverPacks(nodes).packs.map((p) => [p.name, p]));
}

function byPack(results: BuildResult[]): Record<string, BuildResult> {
  return Object.fromEntries(results.map((r) => [r.pack, r]));
}

function manager(): EnvManager {
  return new EnvManager({ cacheDir, host, runtime: counting });
}

/** What an environment's own Python sees. */
async function inspect(python: string, extraImport = ""): Promise<{ numpy: string; numpyFile: string; torch: string; torchFile: string; prefix: string }> {
  const code = [
    "import json, sys",
    "import numpy, torch",
    extraImport,
    "print(json.dumps({'numpy': numpy.__version__, 'numpyFile': numpy.__file__, 'torch': torch.__version__, 'torchFile': torch.__file__, 'prefix': sys.prefix}))",
  ].join("\n");
  const res = await runProcess(python, ["-c", code]);
  expect(res.stderr.includes("Traceback") ? res.stderr : "").toBe("");
  expect(res.code).toBe(0);
  return JSON.parse(res.stdout.trim().split("\n").pop()!);
}

function leftovers(): string[] {
  return readdirSync(join(cacheDir, "envs")).filter((n) => n.startsWith(".tmp-") || n.endsWith(".lock") || n.endsWith(".steal"));
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-env-e2e-"));
  nodes = join(root, "custom_nodes");
  cacheDir = join(root, "cache");
  mkdirSync(nodes);
  for (const name of ["NumpyLegacyNode", "NumpyModernNode", "DeepDiffNode"]) cpSync(join(repo, "examples", "custom_nodes", name), join(nodes, name), { recursive: true });
  for (const name of ["BrokenManifestNode", "UnresolvableDepNode"]) cpSync(join(repo, "test", "fixtures", "packs", name), join(nodes, name), { recursive: true });
  host = await resolveHostPython({ python: process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python"), cacheDir });
  expect(host.torchVersion).not.toBeNull();
  const base = await getRuntime();
  counting = {
    ...base,
    spawn(opts) {
      spawned.push([opts.cmd, ...opts.args].join(" "));
      return base.spawn(opts);
    },
  };
}, E2E_TIMEOUT);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("environments built with uv", () => {
  it("builds conflicting numpy pins side by side, both on the host's torch; bad packs fail alone", async () => {
    const { packs: found, errors } = discoverPacks(nodes);
    expect(errors.map((e) => [e.pack, e.code])).toEqual([["BrokenManifestNode", "MANIFEST_INVALID"]]);
    expect(errors[0]!.message).toContain(`"dependencies[1]" must be a string`);

    const envs = manager();
    const progress: string[] = [];
    const results = byPack(await envs.build(found, { concurrency: 2, onProgress: (p) => progress.push(`${p.pack}:${p.phase}`) }));
    expect(results.NumpyLegacyNode?.status).toBe("built");
    expect(results.NumpyModernNode?.status).toBe("built");
    expect(results.DeepDiffNode?.status).toBe("built");
    expect(results.NumpyLegacyNode?.uvRuns).toBe(3); // uv venv, uv pip install --dry-run (share_torch: no torch-family package in the resolution), uv pip install
    expect(progress).toContain("NumpyLegacyNode:install");

    const failed = results.UnresolvableDepNode!;
    expect(failed.status).toBe("failed");
    expect(failed.error?.code).toBe("ENV_BUILD_FAILED");
    expect(failed.error?.pack).toBe("UnresolvableDepNode");
    expect(failed.error?.message).toContain(`Could not build the environment of pack "UnresolvableDepNode"`);
    // uv's own words
    expect(failed.error?.message).toContain("this-package-does-not-exist-pyisolate");
    expect(failed.error?.message).toMatch(/No solution found|not found in the package registry/);
    // nothing half-made
    const p = packs();
    expect(existsSync(envs.envDir(p.get("UnresolvableDepNode")!))).toBe(false);
    expect(envs.state(p.get("UnresolvableDepNode")!)).toBe("missing");
    expect(leftovers()).toEqual([]);

    const legacy = await inspect(envs.envPython(p.get("NumpyLegacyNode")!));
    const modern = await inspect(envs.envPython(p.get("NumpyModernNode")!));
    expect(legacy.numpy).toBe("1.26.4");
    const [maj, min] = modern.numpy.split(".").map(Number);
    expect(maj! > 2 || (maj === 2 && min! >= 1)).toBe(true);
    // each numpy is the env's own; torch is the host's exact build, from the host's path
    expect(legacy.numpyFile.startsWith(envs.envDir(p.get("NumpyLegacyNode")!))).toBe(true);
    expect(modern.numpyFile.startsWith(envs.envDir(p.get("NumpyModernNode")!))).toBe(true);
    for (const seen of [legacy, modern]) {
      expect(seen.torch).toBe(host.torchVersion);
      expect(host.sitePackages.some((sp) => seen.torchFile.startsWith(`${sp}/torch/`))).toBe(true);
    }
    // no torch inside the pack environments
    for (const name of ["NumpyLegacyNode", "NumpyModernNode", "DeepDiffNode"]) {
      expect(existsSync(join(envs.sitePackagesOf(envs.envDir(p.get(name)!)), "torch"))).toBe(false);
    }
    const dd = await runProcess(envs.envPython(p.get("DeepDiffNode")!), ["-c", "import deepdiff, torch; print(deepdiff.__version__)"]);
    expect(dd.code).toBe(0);
    expect(Number(dd.stdout.trim().split(".")[0])).toBeGreaterThanOrEqual(8);
  }, E2E_TIMEOUT);

  it("a second build of unchanged packs runs no uv process and reports cached", async () => {
    spawned = [];
    const good = [...packs().values()].filter((p) => p.name !== "UnresolvableDepNode");
    const envs = manager(); // a fresh manager: nothing remembered in memory
    expect(good.filter((p) => p.kind === "isolated").map((p) => envs.state(p))).toEqual(["ready", "ready", "ready"]);
    const results = await envs.build(good);
    expect(results.map((r) => [r.pack, r.status, r.uvRuns])).toEqual([
      ["DeepDiffNode", "cached", 0],
      ["NumpyLegacyNode", "cached", 0],
      ["NumpyModernNode", "cached", 0],
    ]);
    expect(spawned).toEqual([]);
  }, E2E_TIMEOUT);

  it("touching a pack's manifest rebuilds only that pack", async () => {
    const before = packs();
    const envs = manager();
    const oldDir = envs.envDir(before.get("NumpyModernNode")!);
    const later = new Date(Date.now() + 120_000);
    utimesSync(join(nodes, "NumpyModernNode", "pyisolate.yaml"), later, later);

    const after = packs();
    expect(envs.state(after.get("NumpyModernNode")!)).toBe("stale");
    expect(envs.state(after.get("NumpyLegacyNode")!)).toBe("ready");
    spawned = [];
    const results = byPack(await envs.build([...after.values()].filter((p) => p.name !== "UnresolvableDepNode")));
    expect(results.NumpyModernNode?.status).toBe("built");
    expect(results.NumpyLegacyNode?.status).toBe("cached");
    expect(results.DeepDiffNode?.status).toBe("cached");
    expect(spawned.length).toBe(3); // uv venv, the share_torch dry run, uv pip install
    expect(envs.envDir(after.get("NumpyModernNode")!)).not.toBe(oldDir);
    expect(existsSync(oldDir)).toBe(false); // the superseded environment is removed
    const modern = await inspect(envs.envPython(after.get("NumpyModernNode")!));
    expect(modern.torch).toBe(host.torchVersion);
  }, E2E_TIMEOUT);

  it("a build leaves another fingerprint's environment that a live process uses; a gone process's mark does not hold it", async () => {
    // Two hosts sharing this cache, each with its own copy of the same pack (manifest mtimes differ).
    const dir = join(nodes, "MarkedNode");
    mkdirSync(dir);
    writeFileSync(join(dir, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
    writeFileSync(join(dir, "pyisolate.yaml"), "isolated: true\nshare_torch: true\n");
    const at = (s: number) => {
      const t = new Date(Date.now() + s * 1000);
      utimesSync(join(dir, "pyisolate.yaml"), t, t);
      return packs().get("MarkedNode")!;
    };
    const first = manager();
    const copyA = at(200);
    expect((await first.build([copyA], { use: true }))[0]!.status).toBe("built");
    const envA = first.envDir(copyA);
    const second = manager();
    const copyB = at(300);
    expect((await second.build([copyB], { use: true }))[0]!.status).toBe("built");
    const envB = second.envDir(copyB);
    expect(envB).not.toBe(envA);
    // The first host still uses its environment: it stays, and its Python still runs.
    expect(existsSync(join(envA, "bin", "python"))).toBe(true);
    expect((await inspect(join(envA, "bin", "python"))).torch).toBe(host.torchVersion);
    expect(readdirSync(`${envA}.users`)).toEqual([expect.stringMatching(new RegExp(`^${process.pid}\\.[0-9a-f]+@`))]);

    // Once the first host let go (its close), the next build of another fingerprint removes it.
    first.releaseUse();
    expect(existsSync(`${envA}.users`)).toBe(false);
    // A mark left by a process that is gone (pid 2^22 + 1 is above Linux's pid limit) holds nothing.
    second.releaseUse();
    mkdirSync(`${envB}.users`, { recursive: true });
    writeFileSync(join(`${envB}.users`, `4194305.deadbeef@${hostname()}`), "");
    const third = manager();
    const copyC = at(400);
    expect((await third.build([copyC])) [0]!.status).toBe("built");
    expect(existsSync(envA)).toBe(false);
    expect(existsSync(envB)).toBe(false);
    expect(existsSync(`${envB}.users`)).toBe(false);
    expect(existsSync(third.envDir(copyC))).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  }, E2E_TIMEOUT);

  it("share_torch: a dependency that requires torch installs without downloading torch", async () => {
    const dir = join(nodes, "TorchDependentNode");
    mkdirSync(dir);
    writeFileSync(join(dir, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
    // rotary-embedding-torch requires torch>=2.0 (and einops); pure Python.
    writeFileSync(join(dir, "pyisolate.yaml"), "isolated: true\nshare_torch: true\ndependencies:\n  - rotary-embedding-torch\n");
    const pack = packs().get("TorchDependentNode")!;
    const envs = manager();
    const [result] = await envs.build([pack]);
    expect(result?.error?.message ?? "").toBe("");
    expect(result?.status).toBe("built");
    const site = envs.sitePackagesOf(envs.envDir(pack));
    expect(readdirSync(site).filter((n) => n === "torch" || n.startsWith("nvidia"))).toEqual([]);
    const res = await runProcess(envs.envPython(pack), [
      "-c",
      "import importlib.metadata as md, rotary_embedding_torch, torch; print(torch.__file__); print(md.version('torch'))",
    ]);
    expect(res.stderr).not.toContain("Traceback");
    const [torchFile, torchMeta] = res.stdout.trim().split("\n");
    expect(host.sitePackages.some((sp) => torchFile!.startsWith(sp))).toBe(true);
    expect(torchMeta).toBe(host.torchVersion);
  }, E2E_TIMEOUT);

  it("without share_torch the environment is plain: no host packages", async () => {
    const dir = join(nodes, "PlainNode");
    mkdirSync(dir);
    writeFileSync(join(dir, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
    writeFileSync(join(dir, "pyisolate.yaml"), "isolated: true\nshare_torch: false\ndependencies: []\n");
    const pack = packs().get("PlainNode")!;
    const envs = manager();
    const [result] = await envs.build([pack]);
    expect(result?.status).toBe("built");
    expect(result?.uvRuns).toBe(1); // uv venv only
    const res = await runProcess(envs.envPython(pack), ["-c", "import importlib.util as u, sys; print(u.find_spec('torch') is None, u.find_spec('numpy') is None, sys.prefix)"]);
    expect(res.stdout.trim().split(" ").slice(0, 2)).toEqual(["True", "True"]);
  }, E2E_TIMEOUT);

  it("two managers building the same environment at once wait for each other; the second reuses the result", async () => {
    const dir = join(nodes, "ConcurrentNode");
    mkdirSync(dir);
    writeFileSync(join(dir, "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
    writeFileSync(join(dir, "pyisolate.yaml"), "isolated: true\nshare_torch: true\ndependencies:\n  - numpy==1.26.4\n  - deepdiff>=8\n");
    const packA = packs().get("ConcurrentNode")!;
    const packB = packs().get("ConcurrentNode")!;
    const a = manager();
    const b = manager();
    expect(a.envDir(packA)).toBe(b.envDir(packB));
    const phases: string[] = [];
    const [[ra], [rb]] = await Promise.all([
      a.build([packA], { onProgress: (p) => phases.push(`a:${p.phase}`) }),
      b.build([packB], { onProgress: (p) => phases.push(`b:${p.phase}`) }),
    ]);
    expect([ra?.status, rb?.status].sort()).toEqual(["built", "cached"]);
    const cached = ra?.status === "cached" ? ra : rb;
    expect(cached?.uvRuns).toBe(0);
    expect(phases.some((p) => p.endsWith(":waiting"))).toBe(true);
    expect(leftovers()).toEqual([]);
    const seen = await inspect(a.envPython(packA), "import deepdiff");
    expect(seen.numpy).toBe("1.26.4");
    expect(seen.torch).toBe(host.torchVersion);
  }, E2E_TIMEOUT);

  it("a build takes over the lock and temp directory of a builder that died", async () => {
    const pack = packs().get("NumpyLegacyNode")!;
    const envs = manager();
    const dir = envs.envDir(pack);
    const tag = dir.split("/").pop()!;
    // A dead builder: its lock (a pid that no longer runs), its half-made temp dir, and no stamp.
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(`${dir}.lock`, JSON.stringify({ pid: 2 ** 22 + 12345, hostname: hostname(), token: "dead", createdAt: new Date().toISOString() }));
    mkdirSync(join(cacheDir, "envs", `.tmp-${tag}-deadbeef0000`, "lib"), { recursive: true });
    expect(envs.state(pack)).toBe("missing");
    const [result] = await envs.build([pack]);
    expect(result?.status).toBe("built");
    expect(leftovers()).toEqual([]);
    expect((await inspect(envs.envPython(pack))).numpy).toBe("1.26.4");
  }, E2E_TIMEOUT);
});

describe("lock files", () => {
  it("are exclusive within a process and across waiters, and a leftover with our own pid is stale", async () => {
    const lock = join(root, "locks", "x.lock");
    const release1 = await acquireLock(lock, { pollMs: 20 });
    let second = false;
    let waited = false;
    const p2 = acquireLock(lock, { pollMs: 20, onWait: () => (waited = true) }).then((rel) => {
      second = true;
      return rel;
    });
    await new Promise((r) => setTimeout(r, 150));
    expect(second).toBe(false);
    expect(waited).toBe(true);
    await release1();
    const release2 = await p2;
    expect(second).toBe(true);
    await release2();
    expect(existsSync(lock)).toBe(false);

    // A lock file naming this very process but a token it does not hold: a leftover of an
    // earlier process that had the same pid.
    writeFileSync(lock, JSON.stringify({ pid: process.pid, hostname: hostname(), token: "not-ours", createdAt: "" }));
    const release3 = await acquireLock(lock, { pollMs: 20 });
    expect(JSON.parse(readFileSync(lock, "utf8")).token).not.toBe("not-ours");
    await release3();
  });
});

describe("host Python and uv", () => {
  it("probes the host Python once and reuses the probe while nothing changed", async () => {
    const python = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");
    const probeDir = join(root, "probe-cache");
    spawned = [];
    const first = await resolveHostPython({ python, cacheDir: probeDir, runtime: counting });
    expect(spawned).toHaveLength(1);
    const second = await resolveHostPython({ python, cacheDir: probeDir, runtime: counting });
    expect(spawned).toHaveLength(1);
    expect(second).toEqual(first);
    expect(first.source).toBe("option");
    expect(first.version).toMatch(/^3\.\d+\.\d+$/);
    expect(first.torchVersion).toBe(first.torchPackages.torch);
    expect(first.stdlibModules).toContain("asyncio");
    const fromEnv = await resolveHostPython({ cacheDir: probeDir, env: { PYISOLATE_PYTHON: python, PATH: "" }, runtime: counting });
    expect(fromEnv.source).toBe("env");
    if (existsSync(join(repo, ".venv", "bin", "python"))) {
      const venv = await resolveHostPython({ cwd: repo, cacheDir: probeDir, env: { PATH: "" }, runtime: counting });
      expect(venv.source).toBe("venv");
    }
  });

  it("finds uv through PYISOLATE_UV, PATH, or python -m uv, and says what is missing", () => {
    const uvBin = join(dirname(host.python), "uv");
    if (existsSync(uvBin)) {
      expect(resolveUv(host, { PYISOLATE_UV: uvBin, PATH: "" })).toEqual({ cmd: uvBin, args: [], source: "env" });
      expect(resolveUv(host, { PATH: dirname(uvBin) })).toEqual({ cmd: uvBin, args: [], source: "path" });
    }
    expect(resolveUv({ ...host, hasUvModule: true }, { PATH: "" })).toEqual({ cmd: host.python, args: ["-m", "uv"], source: "python -m uv" });
    try {
      resolveUv({ ...host, hasUvModule: false }, { PATH: "" });
      expect.unreachable();
    } catch (err) {
      expect((err as PyisolateError).code).toBe("UV_NOT_FOUND");
      expect((err as Error).message).toContain("-m pip install uv");
    }
    expect(() => resolveUv(host, { PYISOLATE_UV: join(root, "no-uv"), PATH: "" })).toThrow(/PYISOLATE_UV is .*no-uv.*not an executable/);
  });
});
