/**
 * The user-level host environment `pyisolate setup` makes: a venv (in {@link setupEnvDir})
 * with the pinned torch build for this platform, uv, and what a ComfyUI environment gives
 * its packs — the pinned list `python/host-requirements.txt`, which ships with the package.
 *
 * Idempotent: each step checks before it acts (the venv exists and was made from the asked-for
 * Python; torch has the wanted version; every pin is installed), so a second run starts no pip.
 * It ends by importing torch in the environment and writing {@link SETUP_STAMP}, which
 * `resolveHostPython` requires before it picks the environment.
 * @module
 */
import { existsSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import process from "node:process";
import { PyisolateError } from "../errors.ts";
import { canonicalName, requirementName } from "../manifest/requirements.ts";
import { packageFile } from "../paths.ts";
import type { Runtime } from "../runtime/contract.ts";
import { acquireLock, atomicWriteFile, isExecutable, which } from "../util/fs.ts";
import { RUNTIME_VERSION } from "../version.ts";
import { pyisolateHome, resolveHostPython, runProcess, SETUP_STAMP, setupEnvDir, uvVersion } from "./host_python.ts";

/** The pinned list, as shipped: `torch==X` and the other pins. */
export interface HostRequirements {
  /** The file read. */
  file: string;
  /** The file's text (what the stamp fingerprints). */
  text: string;
  /** The torch pin's version, e.g. `"2.13.0"`. */
  torchVersion: string;
  /** Every other pin (`name==version`), in file order. */
  pins: string[];
}

/** Reads `python/host-requirements.txt` (or `file`). */
export function readHostRequirements(file: string = packageFile("python/host-requirements.txt")): HostRequirements {
  const text = readFileSync(file, "utf8");
  let torchVersion: string | null = null;
  const pins: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!line) continue;
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)$/.exec(line);
    if (!m) throw new PyisolateError("VALIDATION", `${file}: "${line}" is not a pin (name==version).`, { file });
    if (canonicalName(m[1]!) === "torch") torchVersion = m[2]!;
    else pins.push(line);
  }
  if (!torchVersion) throw new PyisolateError("VALIDATION", `${file} has no torch==<version> line.`, { file });
  return { file, text, torchVersion, pins };
}

/** How torch is installed: what pip gets, and the version that satisfies it. */
export interface TorchPlan {
  /** pip's arguments after `install`. */
  pipArgs: string[];
  /** The version to find installed (a local tag such as `+cpu` must match too); null when unknown (a URL). */
  version: string | null;
  /** For people: `"torch 2.13.0, CPU build (download.pytorch.org/whl/cpu)"`. */
  label: string;
}

/** The PyTorch index of CPU and CUDA builds. */
export const TORCH_INDEX = "https://download.pytorch.org/whl";

/** Whether this machine has an NVIDIA driver (so PyPI's CUDA build of torch is the useful one). */
function hasNvidia(env: Record<string, string | undefined>): boolean {
  return existsSync("/proc/driver/nvidia") || which("nvidia-smi", env.PATH) !== null;
}

/**
 * What `--torch SPEC` asks for. SPEC: `cpu`, `cu<NNN>` (a CUDA build from the PyTorch index),
 * `pypi` (PyPI's build: CUDA on Linux x86-64), a wheel file, a URL, or a requirement
 * (`torch==2.13.0`). Without SPEC: `cpu` on Linux x86-64 without an NVIDIA driver, else `pypi`.
 * @throws {PyisolateError} `USAGE` for anything else.
 */
export function torchPlan(spec: string | undefined, pinned: string, env: Record<string, string | undefined> = process.env): TorchPlan {
  const chosen = spec ?? (process.platform === "linux" && process.arch === "x64" && !hasNvidia(env) ? "cpu" : "pypi");
  if (chosen === "cpu" || /^cu\d{2,4}$/.test(chosen) || /^rocm[\d.]+$/.test(chosen)) {
    const index = `${TORCH_INDEX}/${chosen}`;
    const build = chosen === "cpu" ? "CPU" : chosen.startsWith("cu") ? `CUDA ${chosen.slice(2, -1)}.${chosen.slice(-1)}` : chosen.toUpperCase();
    return { pipArgs: ["--index-url", index, `torch==${pinned}+${chosen}`], version: `${pinned}+${chosen}`, label: `torch ${pinned}, ${build} build (${index.replace(/^https:\/\//, "")})` };
  }
  if (chosen === "pypi") return { pipArgs: [`torch==${pinned}`], version: pinned, label: `torch ${pinned} from PyPI` };
  if (/^[a-z+]+:\/\//.test(chosen)) return { pipArgs: [chosen], version: null, label: `torch from ${chosen}` };
  if (chosen.endsWith(".whl")) {
    const file = resolve(chosen);
    if (!existsSync(file)) throw new PyisolateError("USAGE", `--torch ${chosen}: no such wheel file.`, { file });
    // torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl → 2.13.0+cpu
    const version = /^torch-([^-]+)-/.exec(basename(file))?.[1]?.replace(/_/g, "+") ?? null;
    return { pipArgs: [file], version, label: `torch ${version ?? "?"} from ${file}` };
  }
  if (requirementName(chosen) === "torch") {
    const exact = /^torch\s*==\s*([^\s;,]+)$/.exec(chosen.trim())?.[1] ?? null;
    return { pipArgs: [chosen], version: exact, label: chosen };
  }
  throw new PyisolateError(
    "USAGE",
    `--torch ${JSON.stringify(chosen)} is not a torch build: give cpu, cu<NNN> (e.g. cu128), pypi, a torch wheel file, a URL, or a requirement such as torch==${pinned}.`,
  );
}

/** One step's progress. */
export interface SetupProgress {
  /** 1-based. */
  step: number;
  total: number;
  name: string;
  /** `start`, then any number of `line` (pip's output), then `done` or `skipped` (nothing to do). */
  phase: "start" | "line" | "done" | "skipped";
  message: string;
  elapsedMs: number;
}

/** Options of {@link setupHostEnv}. */
export interface SetupOptions {
  /** The interpreter that makes the venv. @default python3 (or python) on PATH */
  base?: string;
  /** `--torch SPEC` (see {@link torchPlan}). */
  torch?: string;
  /** Environment variables (`PYISOLATE_HOME`, `PATH`, pip's own). @default process.env */
  env?: Record<string, string | undefined>;
  onProgress?: (p: SetupProgress) => void;
  runtime?: Runtime;
}

/** What {@link setupHostEnv} did. */
export interface SetupResult {
  /** `created`: a new venv; `updated`: something was installed; `current`: nothing to do. */
  status: "created" | "updated" | "current";
  envDir: string;
  python: string;
  pythonVersion: string;
  torchVersion: string;
  uv: string;
}

interface Stamp {
  pyisolate: string;
  requirements: string;
  torch: string;
  base: string;
}

const STEPS = ["base Python", "environment", "torch", "packages", "check"] as const;

/** Runs pip (or any command) and fails with its last lines. */
async function must(cmd: string, args: string[], what: string, opts: SetupOptions, onLine: (l: string) => void): Promise<void> {
  const env = Object.fromEntries(Object.entries(opts.env ?? process.env).filter((e): e is [string, string] => e[1] !== undefined));
  const res = await runProcess(cmd, args, { env, onLine, ...(opts.runtime ? { runtime: opts.runtime } : {}) });
  if (res.code !== 0) {
    const tail = `${res.stdout}\n${res.stderr}`.trim().split("\n").filter((l) => l.trim()).slice(-8).join("\n");
    throw new PyisolateError("ENV_BUILD_FAILED", `Setting up the host environment failed while ${what} (exit ${res.code ?? res.signal}):\n${tail}`);
  }
}

/** The base interpreter's real path and version; checks it can make a venv with pip. */
async function baseInterpreter(opts: SetupOptions): Promise<{ python: string; version: string }> {
  const env = opts.env ?? process.env;
  const asked = opts.base ?? which("python3", env.PATH) ?? which("python", env.PATH);
  if (!asked) throw new PyisolateError("PYTHON_NOT_FOUND", "No python3 on PATH to make the host environment with: install Python 3.10 or newer, or pass --python PATH.");
  const path = asked.includes("/") ? resolve(asked) : which(asked, env.PATH);
  if (!path || !isExecutable(path)) throw new PyisolateError("PYTHON_NOT_FOUND", `--python ${JSON.stringify(asked)} is not an executable file; give the Python to make the environment with.`);
  const code = "import sys, json, importlib.util as u; print(json.dumps([sys.executable, '.'.join(map(str, sys.version_info[:3])), all(u.find_spec(m) for m in ('venv', 'ensurepip'))]))";
  const res = await runProcess(path, ["-I", "-c", code], opts.runtime ? { runtime: opts.runtime } : {});
  let info: [string, string, boolean];
  try {
    info = JSON.parse(res.stdout.trim()) as [string, string, boolean];
  } catch {
    throw new PyisolateError("PYTHON_NOT_FOUND", `${path} did not run as a Python interpreter: ${(res.stderr || res.stdout).trim().slice(0, 300)}`);
  }
  const [maj, min] = info[1].split(".").map(Number);
  if ((maj ?? 0) < 3 || ((maj ?? 0) === 3 && (min ?? 0) < 10)) {
    throw new PyisolateError("PYTHON_NOT_FOUND", `${path} is Python ${info[1]}; the host environment needs 3.10 or newer (the pinned numpy and torch do). Pass --python with a newer one.`);
  }
  if (!info[2]) {
    throw new PyisolateError("PYTHON_NOT_FOUND", `${path} (Python ${info[1]}) cannot make a venv with pip (no venv/ensurepip module); on Debian or Ubuntu install python3-venv, or pass --python with another interpreter.`);
  }
  return { python: realpathSync(info[0]), version: info[1] };
}

function readStamp(envDir: string): Stamp | null {
  try {
    return JSON.parse(readFileSync(join(envDir, SETUP_STAMP), "utf8")) as Stamp;
  } catch {
    return null;
  }
}

/** The `home` and `version` lines of a venv's pyvenv.cfg. */
function venvOrigin(envDir: string): { home: string; version: string } | null {
  try {
    const cfg = readFileSync(join(envDir, "pyvenv.cfg"), "utf8");
    const get = (k: string) => new RegExp(`^${k}\\s*=\\s*(.*)$`, "m").exec(cfg)?.[1]?.trim() ?? "";
    return { home: get("home"), version: get("version_info") || get("version") };
  } catch {
    return null;
  }
}

/**
 * Makes (or checks, or completes) the user-level host environment.
 * @throws {PyisolateError} `PYTHON_NOT_FOUND` without a usable base Python; `ENV_BUILD_FAILED`
 *   when venv or pip fails (with pip's last lines); `USAGE` for a bad `torch` spec.
 */
export async function setupHostEnv(opts: SetupOptions = {}): Promise<SetupResult> {
  const env = opts.env ?? process.env;
  const reqs = readHostRequirements();
  const plan = torchPlan(opts.torch, reqs.torchVersion, env);
  const envDir = setupEnvDir(env);
  const python = join(envDir, "bin", "python");
  let step = 0;
  let t0 = 0;
  const report = (phase: SetupProgress["phase"], message: string) =>
    opts.onProgress?.({ step, total: STEPS.length, name: STEPS[step - 1]!, phase, message, elapsedMs: performance.now() - t0 });
  const begin = (message: string) => {
    step++;
    t0 = performance.now();
    report("start", message);
  };
  const line = (l: string) => report("line", l.trim());
  let status: SetupResult["status"] = "current";

  const release = await acquireLock(join(pyisolateHome(env), "setup.lock"), {
    onWait: (h) => opts.onProgress?.({ step: 0, total: STEPS.length, name: "waiting", phase: "line", message: `waiting for another setup (pid ${h?.pid ?? "?"}) to finish`, elapsedMs: 0 }),
  });
  try {
    begin("finding the Python that makes the environment");
    const base = await baseInterpreter(opts);
    report("done", `Python ${base.version} at ${base.python}`);

    begin(`checking ${envDir}`);
    const origin = venvOrigin(envDir);
    const stamp = readStamp(envDir);
    // Without --python any existing venv will do; with it, the venv must come from that Python.
    const sameBase = origin !== null && (opts.base === undefined || (origin.version.startsWith(base.version) && (stamp === null || stamp.base === base.python)));
    if (isExecutable(python) && sameBase) {
      report("skipped", `${envDir} exists (Python ${origin!.version})`);
    } else {
      if (existsSync(envDir)) {
        report("line", origin ? `remaking it: it was made from another Python (${origin.home}, ${origin.version})` : "remaking it: it is incomplete");
        rmSync(envDir, { recursive: true, force: true });
      }
      await must(base.python, ["-m", "venv", envDir], "making the venv", opts, line);
      status = "created";
      report("done", `made ${envDir}`);
    }

    const pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"];
    const installed = async () => (await resolveHostPython({ python, env: { ...env }, ...(opts.runtime ? { runtime: opts.runtime } : {}) })).distributions;
    begin(`installing ${plan.label}`);
    const before = await installed();
    const have = before.torch ?? null;
    if (have !== null && plan.version !== null && (have === plan.version || (!plan.version.includes("+") && have.split("+")[0] === plan.version))) {
      report("skipped", `torch ${have} is installed`);
    } else {
      await must(pip[0]!, [...pip.slice(1), ...plan.pipArgs], `installing ${plan.label}`, opts, line);
      if (status === "current") status = "updated";
      report("done", `installed ${plan.label}`);
    }

    begin(`installing ${reqs.pins.length} pinned packages`);
    const now = await installed();
    const missing = reqs.pins.filter((p) => {
      const [name, version] = p.split("==") as [string, string];
      return now[canonicalName(name)] !== version;
    });
    if (missing.length === 0) {
      report("skipped", `${reqs.pins.map((p) => p.split("==")[0]).join(", ")} are installed`);
    } else {
      await must(pip[0]!, [...pip.slice(1), ...missing], `installing ${missing.join(" ")}`, opts, line);
      if (status === "current") status = "updated";
      report("done", `installed ${missing.join(", ")}`);
    }

    begin("importing torch in the environment");
    const check = await runProcess(python, ["-c", "import torch, numpy; print(torch.__version__)"], opts.runtime ? { runtime: opts.runtime } : {});
    if (check.code !== 0) {
      throw new PyisolateError("ENV_BUILD_FAILED", `torch does not import in ${envDir}: ${check.stderr.trim().split("\n").slice(-3).join(" ")} Run setup again with another --torch build.`);
    }
    const host = await resolveHostPython({ python, env: { ...env }, ...(opts.runtime ? { runtime: opts.runtime } : {}) });
    const uv = await uvVersion({ cmd: python, args: ["-m", "uv"], source: "python -m uv" }, opts.runtime);
    const next: Stamp = { pyisolate: RUNTIME_VERSION, requirements: reqs.text, torch: plan.label, base: base.python };
    if (JSON.stringify(stamp) !== JSON.stringify(next)) await atomicWriteFile(join(envDir, SETUP_STAMP), `${JSON.stringify(next, null, 1)}\n`);
    report("done", `torch ${check.stdout.trim()} imports; ${uv}`);
    return { status, envDir, python, pythonVersion: host.version, torchVersion: check.stdout.trim(), uv };
  } finally {
    await release();
  }
}
