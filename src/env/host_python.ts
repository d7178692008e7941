/**
 * The host Python (the interpreter whose environment holds torch) and `uv`: where they are,
 * what they are, and a helper to run a process to completion through the {@link Runtime}.
 *
 * The host Python is probed once with a single short Python run (no `import torch`: torch's
 * version comes from its installed metadata) and the result is cached in the cache directory,
 * keyed by the interpreter's path and the mtimes of the interpreter and its site-packages.
 * @module
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import process from "node:process";
import { permissionError, PyisolateError } from "../errors.ts";
import { HOST_TORCH } from "../manifest/requirements.ts";
import type { Runtime } from "../runtime/contract.ts";
import { getRuntime } from "../runtime/detect.ts";
import { atomicWriteFile, isExecutable, which } from "../util/fs.ts";
import { checkoutPython } from "./comfyui.ts";

/**
 * Where the host Python was found: the `python` option, `PYISOLATE_PYTHON`, the ComfyUI checkout
 * given as `comfyui` or the ComfyUI install that holds the custom nodes folder, `./.venv`, the
 * user-level environment `pyisolate setup` made, or PATH (only a Python whose environment has
 * torch).
 */
export type HostPythonSource = "option" | "env" | "comfyui" | "venv" | "setup" | "path";

/** What pyisolate knows about the host Python. */
export interface HostPython {
  /** Absolute path of the interpreter (`sys.executable`). */
  python: string;
  /** Its version, e.g. `"3.11.7"`. */
  version: string;
  /** The installed torch version, e.g. `"2.13.0+cpu"`, or null when its environment has no torch. */
  torchVersion: string | null;
  /** Its site-packages directories (existing ones, in `sys.path` order). */
  sitePackages: string[];
  /** How it was found (see {@link HostPythonSource}). */
  source: HostPythonSource;
  /** Installed torch-ecosystem distributions (torch, torchvision, torchaudio, triton, nvidia-*), canonical name → version. */
  torchPackages: Record<string, string>;
  /** `sys.stdlib_module_names`: the standard library's top-level modules. */
  stdlibModules: string[];
  /** Whether its environment has the `uv` package (so `python -m uv` works). */
  hasUvModule: boolean;
  /** Every installed distribution, canonical name → version. */
  distributions: Record<string, string>;
}

/** Options for {@link resolveHostPython}. */
export interface ResolvePythonOptions {
  /** An interpreter chosen by the caller; wins over everything else. */
  python?: string;
  /** A ComfyUI checkout (core mode) whose own environment (`.venv`, `venv`) is tried after `PYISOLATE_PYTHON`. */
  comfyui?: string;
  /** Directory whose `.venv/bin/python` is tried. @default process.cwd() */
  cwd?: string;
  /** The custom nodes folder: when it sits in a ComfyUI install, that install's Python is tried. */
  customNodes?: string;
  /** Where the probe result is cached (`<cacheDir>/python-probe.json`). No caching when absent. */
  cacheDir?: string;
  /** Environment variables to read (`PYISOLATE_PYTHON`, `PYISOLATE_HOME`, `PATH`). @default process.env */
  env?: Record<string, string | undefined>;
  /** The runtime used to start the probe. @default the detected runtime */
  runtime?: Runtime;
}

/** How to run `uv`: `cmd` followed by `args` and then uv's own arguments. */
export interface UvCommand {
  cmd: string;
  args: string[];
  source: "env" | "path" | "python -m uv";
}

/** The result of {@link runProcess}. */
export interface ProcessResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Options for {@link runProcess}. */
export interface RunProcessOptions {
  env?: Record<string, string>;
  cwd?: string;
  runtime?: Runtime;
  /** Called with every complete line the process writes (stdout and stderr), as it arrives. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
}

/**
 * Runs a process to completion and collects its output.
 * @throws the spawn error when the executable cannot be started (ENOENT…).
 */
export async function runProcess(cmd: string, args: readonly string[], opts: RunProcessOptions = {}): Promise<ProcessResult> {
  const rt = opts.runtime ?? (await getRuntime());
  const out: string[] = [];
  const err: string[] = [];
  const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  const partial = { stdout: "", stderr: "" };
  const feed = (stream: "stdout" | "stderr", chunk: Uint8Array) => {
    const text = decoders[stream].decode(chunk, { stream: true });
    (stream === "stdout" ? out : err).push(text);
    if (!opts.onLine) return;
    const lines = (partial[stream] + text).split(/\r?\n|\r/);
    partial[stream] = lines.pop() ?? "";
    for (const line of lines) if (line.trim() !== "") opts.onLine(line, stream);
  };
  const child = rt.spawn({
    cmd,
    args,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    onStdout: (c) => feed("stdout", c),
    onStderr: (c) => feed("stderr", c),
  });
  const status = await child.exited;
  for (const stream of ["stdout", "stderr"] as const) {
    const rest = partial[stream] + decoders[stream].decode();
    if (rest.trim() !== "" && opts.onLine) opts.onLine(rest, stream);
  }
  return { code: status.code, signal: status.signal, stdout: out.join(""), stderr: err.join("") };
}

const PROBE = String.raw`
import json, os, re, site, sys, sysconfig
import importlib.metadata as md
import importlib.util
def canon(n):
    return re.sub(r"[-_.]+", "-", n).lower()
eco = re.compile(sys.argv[1])
pkgs = {}
dists = {}
for d in md.distributions():
    name = d.metadata["Name"] if d.metadata else None
    if not name or canon(name) in dists:
        continue
    dists[canon(name)] = d.version
    if eco.match(canon(name)):
        pkgs[canon(name)] = d.version
try:
    sp = list(site.getsitepackages())
except Exception:
    sp = []
for key in ("purelib", "platlib"):
    p = sysconfig.get_paths().get(key)
    if p and p not in sp:
        sp.append(p)
sp = [os.path.abspath(p) for p in sp if os.path.isdir(p)]
seen = []
for p in sp:
    if p not in seen:
        seen.append(p)
print(json.dumps({
    "executable": sys.executable,
    "version": ".".join(str(v) for v in sys.version_info[:3]),
    "sitePackages": seen,
    "torchVersion": pkgs.get("torch"),
    "torchPackages": pkgs,
    "stdlibModules": sorted(getattr(sys, "stdlib_module_names", [])),
    "hasUvModule": importlib.util.find_spec("uv") is not None,
    "distributions": dists,
}))
`;

type ProbeResult = Omit<HostPython, "source" | "python"> & { executable: string };

/** Bumped when the probe reports more: older cache entries are probed again. */
const PROBE_VERSION = 2;

interface ProbeCacheEntry {
  probeVersion?: number;
  interpreterMtimeMs: number;
  siteMtimes: Record<string, number>;
  result: ProbeResult;
}

function mtimeOf(path: string): number | null {
  try {
    return Math.floor(statSync(path).mtimeMs);
  } catch {
    return null;
  }
}

function readProbeCache(file: string): Record<string, ProbeCacheEntry> {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Record<string, ProbeCacheEntry>;
  } catch {
    return {};
  }
}

async function probe(python: string, opts: ResolvePythonOptions): Promise<ProbeResult> {
  const cacheFile = opts.cacheDir ? join(opts.cacheDir, "python-probe.json") : null;
  const interpreterMtimeMs = mtimeOf(python);
  if (cacheFile && interpreterMtimeMs !== null) {
    const hit = readProbeCache(cacheFile)[python];
    if (
      hit &&
      hit.probeVersion === PROBE_VERSION &&
      hit.interpreterMtimeMs === interpreterMtimeMs &&
      Object.entries(hit.siteMtimes).every(([dir, m]) => mtimeOf(dir) === m)
    ) {
      return hit.result;
    }
  }
  let res: ProcessResult;
  try {
    res = await runProcess(python, ["-I", "-c", PROBE, HOST_TORCH.source], { ...(opts.runtime ? { runtime: opts.runtime } : {}) });
  } catch (err) {
    throw permissionError(err, `starting the host Python ${python}`) ??
      new PyisolateError("PYTHON_NOT_FOUND", `Could not start the host Python ${python}: ${(err as Error).message}.`, { cause: err });
  }
  if (res.code !== 0) {
    const tail = res.stderr.trim().split("\n").slice(-5).join("\n");
    throw new PyisolateError(
      "PYTHON_NOT_FOUND",
      `The host Python ${python} failed to report its version (exit ${res.code ?? res.signal}): ${tail || "no output"}. Point PYISOLATE_PYTHON at a working Python 3.9+ interpreter.`,
    );
  }
  let result: ProbeResult;
  try {
    result = JSON.parse(res.stdout.trim().split("\n").pop() ?? "") as ProbeResult;
  } catch (err) {
    throw new PyisolateError("PYTHON_NOT_FOUND", `The host Python ${python} printed something unexpected while probed: ${res.stdout.slice(0, 200)}`, { cause: err });
  }
  if (cacheFile && interpreterMtimeMs !== null) {
    const all = readProbeCache(cacheFile);
    const siteMtimes: Record<string, number> = {};
    for (const dir of result.sitePackages) {
      const m = mtimeOf(dir);
      if (m !== null) siteMtimes[dir] = m;
    }
    all[python] = { probeVersion: PROBE_VERSION, interpreterMtimeMs, siteMtimes, result };
    await atomicWriteFile(cacheFile, JSON.stringify(all, null, 1)).catch(() => {});
  }
  return result;
}

function toHost(result: ProbeResult, source: HostPythonSource): HostPython {
  return {
    python: result.executable,
    version: result.version,
    torchVersion: result.torchVersion ?? null,
    sitePackages: result.sitePackages,
    source,
    torchPackages: result.torchPackages ?? {},
    stdlibModules: result.stdlibModules ?? [],
    hasUvModule: Boolean(result.hasUvModule),
    distributions: result.distributions ?? {},
  };
}

function explicitInterpreter(path: string, what: string, cwd: string): string {
  const found = isAbsolute(path) || path.includes("/") ? resolve(cwd, path) : which(path);
  if (found === null || !isExecutable(found)) {
    throw new PyisolateError(
      "PYTHON_NOT_FOUND",
      `${what} is ${JSON.stringify(path)}, which is not an executable file. Point it at the Python interpreter whose environment holds torch (e.g. ComfyUI's .venv/bin/python), or run \`${setupCommandLine()}\` to make one.`,
    );
  }
  return found;
}

/**
 * pyisolate's user-level folder: `$PYISOLATE_HOME`, else `$XDG_DATA_HOME/pyisolate`, else
 * `~/.local/share/pyisolate`. `pyisolate setup` makes the host environment in it.
 */
export function pyisolateHome(env: Record<string, string | undefined> = process.env): string {
  if (env.PYISOLATE_HOME) return resolve(env.PYISOLATE_HOME);
  const data = env.XDG_DATA_HOME && isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : join(env.HOME || homedir(), ".local", "share");
  return join(data, "pyisolate");
}

/** Where `pyisolate setup` makes the host environment: `<pyisolateHome>/host-env`. */
export function setupEnvDir(env: Record<string, string | undefined> = process.env): string {
  return join(pyisolateHome(env), "host-env");
}

/** The file `pyisolate setup` writes into the environment once it is complete. */
export const SETUP_STAMP = "pyisolate-setup.json";

/**
 * The ComfyUI install a custom nodes folder belongs to (`<install>/custom_nodes`, where the
 * install has `main.py`, `folder_paths.py` and `comfy/`), or null.
 */
export function comfyInstallOf(customNodes: string): string | null {
  const dir = dirname(resolve(customNodes));
  const has = (rel: string) => existsSync(join(dir, rel));
  return has("main.py") && has("folder_paths.py") && has("comfy") ? dir : null;
}

/**
 * The command that runs `pyisolate <args>` under the current runtime, as a user types it
 * (`npx pyisolate setup`, `deno run -A npm:pyisolate setup`, `bunx --bun pyisolate setup`).
 */
export function cliCommand(args: string): string {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.deno) return `deno run -A npm:pyisolate ${args}`;
  if (versions.bun) return `bunx --bun pyisolate ${args}`;
  return `npx pyisolate ${args}`;
}

/** The command that makes the user-level host environment. */
export function setupCommandLine(): string {
  return cliCommand("setup");
}

/**
 * Finds and probes the host Python. Order: the `python` option, env `PYISOLATE_PYTHON`, with a
 * ComfyUI checkout (`comfyui`) its own environment (`.venv` or `venv`), the Python of the
 * ComfyUI install the custom nodes folder sits in (its `.venv` or `venv`),
 * `./.venv/bin/python` (relative to `cwd`), the user-level environment `pyisolate setup` made,
 * then `python3` (or `python`) on PATH — only one whose environment has torch.
 * @throws PyisolateError `PYTHON_NOT_FOUND` when none is usable, naming the setup command.
 * @example
 * const host = await resolveHostPython({ cacheDir: ".pyisolate" });
 * console.log(host.python, host.version, host.torchVersion);
 */
export async function resolveHostPython(opts: ResolvePythonOptions = {}): Promise<HostPython> {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  if (opts.python) return toHost(await probe(explicitInterpreter(opts.python, "The python option", cwd), opts), "option");
  const fromEnv = env.PYISOLATE_PYTHON;
  if (fromEnv) return toHost(await probe(explicitInterpreter(fromEnv, "PYISOLATE_PYTHON", cwd), opts), "env");
  const ofCheckout = opts.comfyui ? checkoutPython(resolve(cwd, opts.comfyui)) : null;
  if (ofCheckout) return toHost(await probe(ofCheckout, opts), "comfyui");
  const install = opts.customNodes ? comfyInstallOf(opts.customNodes) : null;
  const comfy = install ? checkoutPython(install) : null;
  if (comfy) return toHost(await probe(comfy, opts), "comfyui");
  const venv = join(cwd, ".venv", "bin", "python");
  if (isExecutable(venv)) return toHost(await probe(venv, opts), "venv");
  const setupDir = setupEnvDir(env);
  const setupPython = join(setupDir, "bin", "python");
  const setupDone = existsSync(join(setupDir, SETUP_STAMP));
  if (setupDone && isExecutable(setupPython)) return toHost(await probe(setupPython, opts), "setup");
  const skipped: string[] = [];
  for (const candidate of ["python3", "python"].map((n) => which(n, env.PATH)).filter((p): p is string => p !== null)) {
    let result: ProbeResult;
    try {
      result = await probe(candidate, opts);
    } catch {
      continue;
    }
    if (result.torchVersion) return toHost(result, "path");
    skipped.push(candidate);
  }
  const why = [
    install ? `the ComfyUI install ${install} has no .venv or venv` : "",
    !setupDone && existsSync(setupDir) ? `the environment in ${setupDir} is incomplete (setup did not finish)` : "",
    skipped.length > 0 ? `${skipped.join(" and ")} on PATH ${skipped.length > 1 ? "have" : "has"} no torch` : "",
  ].filter(Boolean);
  throw new PyisolateError(
    "PYTHON_NOT_FOUND",
    `No host Python with torch found${why.length ? ` (${why.join("; ")})` : ""}. Run \`${setupCommandLine()}\` to make one (a user-level environment with the pinned torch), or pass --python (PYISOLATE_PYTHON) with the interpreter whose environment holds torch, such as ComfyUI's.`,
  );
}
/**
 * Finds `uv`: env `PYISOLATE_UV`, else `uv` on PATH, else `<host python> -m uv` when the
 * host environment has the uv package.
 * @throws PyisolateError `UV_NOT_FOUND` when none is available.
 */
export function resolveUv(host: HostPython | null, env: Record<string, string | undefined> = process.env): UvCommand {
  const fromEnv = env.PYISOLATE_UV;
  if (fromEnv) {
    const found = fromEnv.includes("/") ? (isExecutable(fromEnv) ? resolve(fromEnv) : null) : which(fromEnv, env.PATH);
    if (found === null) {
      throw new PyisolateError("UV_NOT_FOUND", `PYISOLATE_UV is ${JSON.stringify(fromEnv)}, which is not an executable file. Point it at the uv binary or unset it.`);
    }
    return { cmd: found, args: [], source: "env" };
  }
  const onPath = which("uv", env.PATH);
  if (onPath) return { cmd: onPath, args: [], source: "path" };
  if (host?.hasUvModule) return { cmd: host.python, args: ["-m", "uv"], source: "python -m uv" };
  throw new PyisolateError(
    "UV_NOT_FOUND",
    `uv was not found: not in PYISOLATE_UV, not on PATH${host ? `, and not installed in the host Python environment (${host.python})` : ""}. Install it with \`${host ? `${host.python} -m pip install uv` : "pip install uv"}\` or see https://docs.astral.sh/uv/.`,
  );
}

/** Runs `uv --version` and returns its first line (e.g. `"uv 0.13.9 (…)"`). */
export async function uvVersion(uv: UvCommand, runtime?: Runtime): Promise<string> {
  const res = await runProcess(uv.cmd, [...uv.args, "--version"], runtime ? { runtime } : {});
  if (res.code !== 0) throw new PyisolateError("UV_NOT_FOUND", `\`${[uv.cmd, ...uv.args].join(" ")} --version\` failed: ${res.stderr.trim() || `exit ${res.code}`}.`);
  return res.stdout.trim().split("\n")[0] ?? "";
}
