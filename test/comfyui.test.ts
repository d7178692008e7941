// Core mode's host side, without a real ComfyUI: finding and checking a checkout, its
// environment as the default host Python, its metadata-cache key, the CLI flags.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "../src/cli/args.ts";
import { commands, main } from "../src/cli/main.ts";
import { checkoutPython, COMFYUI_REQUIRED_FILES, comfyuiArgsFromEnv, coreCacheKey, resolveComfyUI, splitArgs } from "../src/env/comfyui.ts";
import { resolveHostPython } from "../src/env/host_python.ts";
import { PyisolateError } from "../src/errors.ts";
import { createHost } from "../src/mod.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");
let root: string;

/** A folder with the files core mode checks for (empty: only the check is under test here). */
function checkoutLike(name: string, skip: string[] = []): string {
  const dir = join(root, name);
  for (const f of COMFYUI_REQUIRED_FILES) {
    if (skip.includes(f)) continue;
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    writeFileSync(join(dir, f), "");
  }
  mkdirSync(join(dir, "comfy"), { recursive: true });
  writeFileSync(join(dir, "comfyui_version.py"), '__version__ = "0.8.0"\n');
  return dir;
}

function thrown(fn: () => unknown): PyisolateError {
  try {
    fn();
  } catch (e) {
    return e as PyisolateError;
  }
  throw new Error("did not throw");
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-comfyui-"));
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("resolveComfyUI", () => {
  it("accepts a checkout with what core mode imports, and reads its version", () => {
    const dir = checkoutLike("ok");
    expect(resolveComfyUI(dir, ["--cpu"])).toEqual({ dir, version: "0.8.0", args: ["--cpu"] });
  });

  it("names the missing folder, or the first missing file of a too-old checkout, or says it is no checkout", () => {
    const none = thrown(() => resolveComfyUI(join(root, "nope")));
    expect(none.code).toBe("NOT_FOUND");
    expect(none.message).toMatch(/The ComfyUI checkout .*nope does not exist\. Pass --comfyui DIR/);
    const old = checkoutLike("old", ["comfy_execution/progress.py", "comfy_api/latest/_io.py"]);
    const e = thrown(() => resolveComfyUI(old));
    expect(e.code).toBe("VALIDATION");
    expect(e.file).toBe(join(old, "comfy_api/latest/_io.py"));
    expect(e.message).toContain("comfy_api/latest/_io.py is missing (and 1 more: comfy_execution/progress.py)");
    expect(e.message).toContain("too old or incomplete for core mode");
    mkdirSync(join(root, "empty"));
    expect(thrown(() => resolveComfyUI(join(root, "empty"))).message).toContain("This is not a ComfyUI checkout");
  });

  it("createHost refuses a bad checkout before starting anything", async () => {
    mkdirSync(join(root, "nodes"), { recursive: true });
    const e = await createHost({ customNodes: join(root, "nodes"), cacheDir: join(root, "cache"), python: hostPython, comfyui: join(root, "empty") }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PyisolateError);
    expect((e as PyisolateError).file).toBe(join(root, "empty", "nodes.py"));
  });
});

describe("the checkout's environment", () => {
  it("is the default host Python (after --python and PYISOLATE_PYTHON): .venv, then venv", async () => {
    const dir = checkoutLike("withenv");
    expect(checkoutPython(dir)).toBeNull();
    mkdirSync(join(dir, "venv", "bin"), { recursive: true });
    symlinkSync(hostPython, join(dir, "venv", "bin", "python"));
    expect(checkoutPython(dir)).toBe(join(dir, "venv", "bin", "python"));
    mkdirSync(join(dir, ".venv", "bin"), { recursive: true });
    symlinkSync(hostPython, join(dir, ".venv", "bin", "python"));
    expect(checkoutPython(dir)).toBe(join(dir, ".venv", "bin", "python"));
    const env = { PATH: process.env.PATH };
    const found = await resolveHostPython({ comfyui: dir, env, cwd: root });
    expect(found.source).toBe("comfyui");
    const fromEnv = await resolveHostPython({ comfyui: dir, env: { ...env, PYISOLATE_PYTHON: hostPython }, cwd: root });
    expect(fromEnv.source).toBe("env");
    const fromOption = await resolveHostPython({ comfyui: dir, python: hostPython, env, cwd: root });
    expect(fromOption.source).toBe("option");
  });
});

describe("the built-in nodes' cache key", () => {
  it("changes with the checkout's node sources and its arguments, not with other files", () => {
    const dir = checkoutLike("keyed");
    const checkout = resolveComfyUI(dir);
    const key = coreCacheKey(checkout, "fp");
    expect(coreCacheKey(checkout, "fp")).toBe(key);
    expect(coreCacheKey(checkout, "other-env")).not.toBe(key);
    expect(coreCacheKey(resolveComfyUI(dir, ["--disable-api-nodes"]), "fp")).not.toBe(key);
    mkdirSync(join(dir, "models"), { recursive: true });
    writeFileSync(join(dir, "models", "x.py"), "# not a node source\n");
    expect(coreCacheKey(checkout, "fp")).toBe(key);
    const file = join(dir, "comfy_extras", "nodes_latent.py");
    writeFileSync(file, "# changed\n");
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect(coreCacheKey(checkout, "fp")).not.toBe(key);
  });
});

describe("CLI flags", () => {
  it("--comfyui and --comfyui-args reach every command; PYISOLATE_COMFYUI_ARGS splits the same way", async () => {
    const p = parseArgs(["list", "--comfyui", "/srv/ComfyUI", "--comfyui-args", "--cpu  --lowvram"], commands);
    expect(p.opts.comfyui).toBe("/srv/ComfyUI");
    expect(p.opts.comfyuiArgs).toEqual(["--cpu", "--lowvram"]);
    expect(parseArgs(["nodes", "--comfyui-args=--cpu"], commands).opts.comfyuiArgs).toEqual(["--cpu"]);
    expect(comfyuiArgsFromEnv({ PYISOLATE_COMFYUI_ARGS: " --cpu --fp16-vae " })).toEqual(["--cpu", "--fp16-vae"]);
    expect(splitArgs("")).toEqual([]);
    let err = "";
    const code = await main(["list", "--custom-nodes", join(root, "nodes"), "--comfyui", join(root, "empty")], {
      stdout: { write: () => true },
      stderr: { write: (s: string) => (err += s) },
    });
    expect(code).toBe(1);
    expect(err).toContain("nodes.py is missing");
  });
});
