/**
 * Building one pack's environment with uv (see `env_manager.ts` for the layout): the venv,
 * the share_torch wiring, the dependencies, the stamp that finishes it.
 *
 * share_torch: the venv never installs torch (or torchvision, torchaudio, triton, nvidia-*),
 * not even as a dependency of a dependency. A `.pth` file appends the host's site-packages
 * after the venv's own, so the pack's own pins (numpy!) win while `import torch` finds the
 * host's exact build; stub `*.dist-info` records and an overrides file pinning the host
 * versions make uv treat those packages as installed, so a dependency that requires torch
 * never downloads it. A dependency that needs a torch-family package the host does not have
 * (say torchvision) fails the build before anything is installed, naming the package and
 * the fix: a resolution without installing (`uv pip install --dry-run`) shows it.
 * @module
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PyisolateError } from "../errors.ts";
import type { PackInfo } from "../manifest/manifest.ts";
import type { Runtime } from "../runtime/contract.ts";
import { randomHex, removeTree } from "../util/fs.ts";
import { RUNTIME_VERSION } from "../version.ts";
import type { BuildProgress } from "./env_manager.ts";
import { canonicalName, HOST_TORCH } from "../manifest/requirements.ts";
import { runProcess, type HostPython, type UvCommand } from "./host_python.ts";

const STAMP = "pyisolate-env.json";
const TAIL_LINES = 40;
/** uv lines that say nothing useful to a user (the temp path it works in). */
const NOISE = /^\s*Using (CPython|Python) .* (environment|interpreter) at: /;

/** Stamp written into a finished environment (`pyisolate-env.json`). */
export interface EnvStamp {
  fingerprint: string;
  pack: string;
  dependencies: string[];
  python: string;
  pythonVersion: string;
  shareTorch: boolean;
  torchVersion: string | null;
  runtimeVersion: string;
  createdAt: string;
}

/** What {@link buildVenv} builds, and with what. */
export interface VenvJob {
  pack: PackInfo;
  /** The environment's final directory. */
  envDir: string;
  /** Where environments live (temp dirs go there too). */
  envsDir: string;
  /** `<pack>-<fingerprint12>`: names the temp dirs of this environment. */
  tag: string;
  fingerprint: string;
  host: HostPython;
  /** How uv is run (resolved when first needed). */
  uv: () => UvCommand;
  /** Environment variables for uv. */
  env: Record<string, string | undefined>;
  runtime?: Runtime;
  /** uv's `--link-mode`, or null to let uv decide. */
  linkMode: string | null;
  /** Counts uv runs. */
  counter: { uvRuns: number };
  say: (phase: BuildProgress["phase"], message: string) => void;
}

/** The stamp of an environment directory, or null when it has none (it is not finished). */
export function readStamp(dir: string): EnvStamp | null {
  try {
    const stamp = JSON.parse(readFileSync(join(dir, STAMP), "utf8")) as EnvStamp;
    return typeof stamp.fingerprint === "string" ? stamp : null;
  } catch {
    return null;
  }
}

/** The last lines of uv's output, the part that says what went wrong. */
function tail(text: string, n = TAIL_LINES): string {
  const lines = text.replace(/\r/g, "").split("\n").filter((l) => l.trim() !== "");
  return lines.slice(-n).join("\n");
}

/** The site-packages directory inside an environment directory. */
export function sitePackagesOf(host: HostPython, envDir: string): string {
  const [major, minor] = host.version.split(".");
  return join(envDir, "lib", `python${major}.${minor}`, "site-packages");
}

/**
 * Builds one pack's environment at `envDir`, the caller holding its lock: a venv made aside,
 * share_torch wiring, the pack's dependencies, the stamp, then a rename into place. A failed
 * build removes what it made.
 * @throws {PyisolateError} `ENV_BUILD_FAILED` (with uv's own words) or `UV_NOT_FOUND`.
 */
export async function buildVenv(job: VenvJob): Promise<void> {
const { pack, envDir, tag, counter, say, host } = job;
const m = pack.manifest!;
const envsDir = job.envsDir;
  // Temp dirs of this environment left by a build that died (we hold its lock now).
  for (const name of readdirSync(envsDir)) {
    if (name.startsWith(`.tmp-${tag}-`)) await removeTree(join(envsDir, name));
  }
  if (m.shareTorch && !host.torchVersion) {
    throw new PyisolateError(
      "ENV_BUILD_FAILED",
      `Could not build the environment of pack "${pack.name}": it sets share_torch, but the host Python ${host.python} has no torch installed. Install torch in the host environment, point PYISOLATE_PYTHON at one that has it, or set share_torch: false.`,
      { pack: pack.name, ...(pack.manifestFile ? { file: pack.manifestFile } : {}) },
    );
  }
  const uv = job.uv();
  const tmp = join(envsDir, `.tmp-${tag}-${randomHex()}`);
  const uvEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(job.env)) if (v !== undefined && k !== "VIRTUAL_ENV" && k !== "CONDA_PREFIX") uvEnv[k] = v;
  uvEnv.UV_PYTHON_DOWNLOADS ??= "never";
  const runUv = async (args: string[], what: string): Promise<string> => {
    counter.uvRuns++;
    let res;
    try {
      res = await runProcess(uv.cmd, [...uv.args, ...args], {
        env: uvEnv,
        cwd: envsDir,
        ...(job.runtime ? { runtime: job.runtime } : {}),
        onLine: (line) => {
          if (!NOISE.test(line)) say(what === "uv venv" ? "venv" : "install", line.trim());
        },
      });
    } catch (err) {
      throw new PyisolateError("UV_NOT_FOUND", `Could not start uv (${[uv.cmd, ...uv.args].join(" ")}) to build pack "${pack.name}": ${(err as Error).message}. Run \`pyisolate doctor\`.`, { pack: pack.name, cause: err });
    }
    if (res.code !== 0) {
      const text = tail(`${res.stdout}\n${res.stderr}`.split("\n").filter((l) => !NOISE.test(l)).join("\n")) || "(uv printed nothing)";
      throw new PyisolateError(
        "ENV_BUILD_FAILED",
        `Could not build the environment of pack "${pack.name}": ${what} failed (exit ${res.code ?? res.signal}):\n${text}`,
        { pack: pack.name, ...(pack.manifestFile ? { file: pack.manifestFile } : {}) },
      );
    }
    return `${res.stdout}\n${res.stderr}`;
  };
  try {
    say("venv", `creating venv (Python ${host.version})`);
    await runUv(["venv", "--quiet", "--no-project", "--relocatable", "--python", host.python, tmp], "uv venv");
    const site = sitePackagesOf(host, tmp);
    const installArgs = ["pip", "install", "--python", join(tmp, "bin", "python")];
    if (job.linkMode) installArgs.push("--link-mode", job.linkMode);
    if (m.shareTorch) {
      await shareTorch(host, site, tmp, installArgs);
    }
    if (m.dependencies.length > 0) {
      // Local paths in a manifest are relative to the pack.
      const deps = m.dependencies.map((d) => (d.startsWith("./") || d.startsWith("../") ? resolve(pack.path, d) : d));
      if (m.shareTorch) {
        say("install", "resolving (torch-family packages come from the host)");
        const plan = await runUv([...installArgs, "--dry-run", ...deps], "uv pip install --dry-run");
        const foreign = torchFamilyIn(plan).filter((name) => !(name in host.torchPackages));
        if (foreign.length > 0) throw missingHostTorch(pack, host, foreign);
      }
      say("install", `installing ${m.dependencies.join(", ")}`);
      await runUv([...installArgs, ...deps], "uv pip install");
    }
    const stamp: EnvStamp = {
      fingerprint: job.fingerprint,
      pack: pack.name,
      dependencies: m.dependencies,
      python: host.python,
      pythonVersion: host.version,
      shareTorch: m.shareTorch,
      torchVersion: m.shareTorch ? host.torchVersion : null,
      runtimeVersion: RUNTIME_VERSION,
      createdAt: new Date().toISOString(),
    };
    await writeFile(join(tmp, STAMP), JSON.stringify(stamp, null, 2));
    // A directory at the final path without a valid stamp is a leftover; replace it.
    if (existsSync(envDir)) await removeTree(envDir);
    await rename(tmp, envDir);
  } catch (err) {
    await removeTree(tmp);
    throw err;
  }
}

/** Makes the venv see the host's torch after its own packages, and makes uv see it as installed. */
async function shareTorch(host: HostPython, site: string, tmp: string, installArgs: string[]): Promise<void> {
  await mkdir(site, { recursive: true });
  const lines = host.sitePackages.map((dir) => `import site; site.addsitedir(${JSON.stringify(dir)})`);
  await writeFile(join(site, "_pyisolate_host.pth"), `${lines.join("\n")}\n`);
  const pins: string[] = [];
  for (const [name, version] of Object.entries(host.torchPackages)) {
    const dist = join(site, `${name.replace(/-/g, "_")}-${version}.dist-info`);
    await mkdir(dist, { recursive: true });
    await writeFile(
      join(dist, "METADATA"),
      `Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\nSummary: Provided by the host environment (pyisolate share_torch).\n`,
    );
    await writeFile(join(dist, "INSTALLER"), "pyisolate\n");
    await writeFile(join(dist, "RECORD"), "");
    pins.push(`${name}==${version}`);
  }
  if (pins.length > 0) {
    const overrides = join(tmp, "pyisolate-overrides.txt");
    await writeFile(overrides, `${pins.join("\n")}\n`);
    installArgs.push("--overrides", overrides);
  }
}

/** The torch-family packages a `uv pip install --dry-run` would install (its ` + name==version` lines). */
export function torchFamilyIn(dryRunOutput: string): string[] {
  const out = new Set<string>();
  for (const line of dryRunOutput.split("\n")) {
    const m = /^\s*\+\s+([A-Za-z0-9][A-Za-z0-9._-]*)/.exec(line);
    if (m?.[1] && HOST_TORCH.test(canonicalName(m[1]))) out.add(canonicalName(m[1]));
  }
  return [...out].sort();
}

function missingHostTorch(pack: PackInfo, host: HostPython, names: string[]): PyisolateError {
  const list = names.join(", ");
  const torch = host.torchVersion ? `torch ${host.torchVersion}` : "its torch";
  return new PyisolateError(
    "ENV_BUILD_FAILED",
    `Could not build the environment of pack "${pack.name}": its dependencies need ${list}, which share_torch takes from the host environment, and the host Python ${host.python} has ${names.length === 1 ? "none" : "none of them"}. ` +
      `share_torch never installs torch-family packages into a pack (a second build beside the host's ${torch} would not load). ` +
      `Install the ${list} build that matches ${torch} into the host environment (\`${host.python} -m pip install ${names.join(" ")}\` with the version made for it), or set share_torch: false in the manifest so the pack gets a torch of its own.`,
    { pack: pack.name, ...(pack.manifestFile ? { file: pack.manifestFile } : {}) },
  );
}
