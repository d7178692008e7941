/**
 * One Python environment per isolated pack, built with `uv` against the host Python.
 *
 * An environment lives in `<cacheDir>/envs/<pack>-<fingerprint12>/` and is finished by a
 * `pyisolate-env.json` stamp, written last. The fingerprint covers the dependencies, the
 * host Python (path and version), share_torch with the host's torch build and the runtime
 * version; a matching environment is reused without running uv at all.
 *
 * Builds happen aside (`envs/.tmp-<pack>-…`) and are renamed into place, under a per-env
 * lock file, so a failed or interrupted build leaves nothing half-made and two hosts
 * building the same environment wait for each other.
 *
 * A host marks the environments it uses (`envs/<env>.users/<pid>.<token>@<hostname>`, made
 * before it looks for the environment, removed by {@link EnvManager.releaseUse} when it closes):
 * a build that replaces a pack's environment of another fingerprint leaves one that a live
 * process marked (two hosts sharing a cache directory with different copies of a pack, or a
 * manifest touched while a host runs). Marks of processes that are gone are removed.
 *
 * The build itself (uv runs, share_torch wiring) is `venv_build.ts`'s.
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { cpus, homedir, hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { PyisolateError } from "../errors.ts";
import { acquireLock, randomHex, removeTree, safeComponent } from "../util/fs.ts";
import { pidAlive } from "../util/os.ts";
import type { PackInfo } from "../manifest/manifest.ts";
import { normalizeRequirement } from "../manifest/requirements.ts";
import { resolveHostPython, resolveUv, type HostPython, type UvCommand } from "./host_python.ts";
import { buildVenv, readStamp, sitePackagesOf, type EnvStamp } from "./venv_build.ts";

export type { EnvStamp } from "./venv_build.ts";
import type { Runtime } from "../runtime/contract.ts";
import { RUNTIME_VERSION } from "../version.ts";

/** Where a pack's environment stands. */
export type EnvState = "ready" | "missing" | "stale" | "shared";

/** A step of a build, for progress displays. */
export interface BuildProgress {
  pack: string;
  /**
   * `queued` → (`waiting` for another builder's lock) → `venv` → `install` (one event per uv
   * output line) → `built` | `cached` | `failed`; `shared` for packs that need no environment.
   */
  phase: "queued" | "waiting" | "venv" | "install" | "built" | "cached" | "failed" | "shared";
  /** What is happening, e.g. uv's current line (`Resolved 4 packages in 215ms`). */
  message: string;
  /** Milliseconds since this pack's build started. */
  elapsedMs: number;
}

/** The outcome of building one pack's environment. */
export interface BuildResult {
  pack: string;
  status: "cached" | "built" | "failed" | "shared";
  /** Set when `status` is `failed`: names the pack and carries uv's own error text. */
  error?: PyisolateError;
  durationMs: number;
  /** How many uv processes this build started (0 for a cached environment). */
  uvRuns: number;
  /** The environment directory (isolated packs). */
  envDir?: string;
}

/** Options for {@link EnvManager.build}. */
export interface BuildOptions {
  /** How many packs build at once. @default min(4, number of CPUs) */
  concurrency?: number;
  /** Receives progress events. */
  onProgress?: (p: BuildProgress) => void;
  /** Mark the environments as used by this process until {@link EnvManager.releaseUse}, so another build leaves them. @default false */
  use?: boolean;
}

/** Options for the {@link EnvManager} constructor. */
export interface EnvManagerOptions {
  /** The cache directory; environments go in `<cacheDir>/envs`. */
  cacheDir: string;
  /** The host Python (see {@link resolveHostPython}). */
  host: HostPython;
  /** How to run uv. @default {@link resolveUv}(host), looked up at the first build */
  uv?: UvCommand;
  /** The runtime that starts uv. @default the detected runtime */
  runtime?: Runtime;
  /** Environment variables for uv. @default process.env */
  env?: Record<string, string | undefined>;
  /**
   * uv's `--link-mode`. @default `hardlink` when uv's cache and the cache directory share a
   * file system, else `copy`; not passed at all when `UV_LINK_MODE` is set.
   */
  linkMode?: "hardlink" | "copy" | "clone" | "symlink";
}


function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}


/** The existing directory `path` is in (itself or its nearest existing ancestor). */
function existingAncestor(path: string): string {
  let cur = path;
  while (!existsSync(cur)) {
    const parent = dirname(cur);
    if (parent === cur) break;
    cur = parent;
  }
  return cur;
}

function deviceOf(path: string): number | null {
  try {
    return statSync(existingAncestor(path)).dev;
  } catch {
    return null;
  }
}



/**
 * Builds, finds and fingerprints the environments of isolated packs.
 * @example
 * const envs = await EnvManager.create({ cacheDir: ".pyisolate" });
 * const results = await envs.build(packs, { onProgress: (p) => console.log(p.pack, p.message) });
 * const python = envs.envPython(packs[0]);
 */
export class EnvManager {
  readonly cacheDir: string;
  readonly envsDir: string;
  readonly host: HostPython;
  #uv: UvCommand | undefined;
  readonly #runtime: Runtime | undefined;
  readonly #env: Record<string, string | undefined>;
  readonly #linkMode: string | null;
  /** This manager's mark of an environment in use, and the `.users` folders it marked. */
  readonly #mark = `${process.pid}.${randomHex(6)}@${hostname()}`;
  readonly #marked = new Set<string>();

  constructor(opts: EnvManagerOptions) {
    this.cacheDir = resolve(opts.cacheDir);
    this.envsDir = join(this.cacheDir, "envs");
    this.host = opts.host;
    this.#uv = opts.uv;
    this.#runtime = opts.runtime;
    this.#env = opts.env ?? process.env;
    this.#linkMode = opts.linkMode ?? (this.#env.UV_LINK_MODE ? null : this.#defaultLinkMode());
  }

  /**
   * Resolves the host Python (option `python`, `PYISOLATE_PYTHON`, the ComfyUI checkout's
   * environment when `comfyui` names one, `./.venv`, PATH) and
   * returns a manager for `cacheDir`.
   */
  static async create(opts: {
    cacheDir: string;
    python?: string;
    /** A ComfyUI checkout (core mode): its environment is the default host Python. */
    comfyui?: string;
    cwd?: string;
    /** The custom nodes folder (a ComfyUI install around it provides the host Python). */
    customNodes?: string;
    runtime?: Runtime;
    env?: Record<string, string | undefined>;
  }): Promise<EnvManager> {
    const host = await resolveHostPython({
      cacheDir: opts.cacheDir,
      ...(opts.python ? { python: opts.python } : {}),
      ...(opts.comfyui ? { comfyui: opts.comfyui } : {}),
      ...(opts.customNodes ? { customNodes: opts.customNodes } : {}),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      ...(opts.runtime ? { runtime: opts.runtime } : {}),
      ...(opts.env ? { env: opts.env } : {}),
    });
    return new EnvManager({
      cacheDir: opts.cacheDir,
      host,
      ...(opts.runtime ? { runtime: opts.runtime } : {}),
      ...(opts.env ? { env: opts.env } : {}),
    });
  }

  /** How uv is run (resolved on first use). @throws PyisolateError `UV_NOT_FOUND` */
  get uv(): UvCommand {
    this.#uv ??= resolveUv(this.host, this.#env);
    return this.#uv;
  }

  #defaultLinkMode(): string {
    const home = this.#env.HOME ?? homedir();
    const uvCache = this.#env.UV_CACHE_DIR ?? join(this.#env.XDG_CACHE_HOME ?? join(home, ".cache"), "uv");
    const a = deviceOf(uvCache);
    const b = deviceOf(this.envsDir);
    return a !== null && a === b ? "hardlink" : "copy";
  }

  /**
   * The environment fingerprint (sha256 hex): sorted normalized dependencies, host Python
   * path and version, share_torch with the host's torch-family versions and site-packages,
   * the runtime version, and the manifest file's mtime (touching a manifest rebuilds that
   * pack's environment). Shared packs get a fingerprint of the host environment.
   */
  fingerprint(pack: PackInfo): string {
    const m = pack.manifest;
    const isolated = pack.kind === "isolated" && m !== null;
    const shareTorch = isolated ? m.shareTorch : true;
    let manifestMtime: number | null = null;
    if (isolated && pack.manifestFile) {
      try {
        // Whole milliseconds: Deno reports no fractions, Node and Bun do; all must agree.
        manifestMtime = Math.floor(statSync(pack.manifestFile).mtimeMs);
      } catch {
        manifestMtime = null;
      }
    }
    const input = {
      kind: isolated ? "isolated" : "shared",
      dependencies: isolated ? [...new Set(m.dependencies.map(normalizeRequirement))].sort() : [],
      python: this.host.python,
      pythonVersion: this.host.version,
      shareTorch,
      torch: shareTorch ? { version: this.host.torchVersion, packages: this.host.torchPackages, sitePackages: this.host.sitePackages } : null,
      runtime: RUNTIME_VERSION,
      manifestMtime,
    };
    return sha256(JSON.stringify(input));
  }

  /** The directory of the pack's environment (whether or not it exists yet). */
  envDir(pack: PackInfo): string {
    return join(this.envsDir, `${safeComponent(pack.name)}-${this.fingerprint(pack).slice(0, 12)}`);
  }

  /** The Python that runs the pack: its environment's for isolated packs, the host's for shared ones. */
  envPython(pack: PackInfo): string {
    return pack.kind === "isolated" ? join(this.envDir(pack), "bin", "python") : this.host.python;
  }

  /** The site-packages directory inside an environment directory. */
  sitePackagesOf(envDir: string): string {
    return sitePackagesOf(this.host, envDir);
  }

  /** The stamp of the pack's current environment, or null when it is not built. */
  stamp(pack: PackInfo): EnvStamp | null {
    if (pack.kind !== "isolated") return null;
    const dir = this.envDir(pack);
    const stamp = readStamp(dir);
    return stamp && stamp.fingerprint === this.fingerprint(pack) && existsSync(join(dir, "bin", "python")) ? stamp : null;
  }

  /** Environment directories of this pack made for other fingerprints. */
  #otherEnvs(pack: PackInfo): string[] {
    const prefix = `${safeComponent(pack.name)}-`;
    const current = this.envDir(pack);
    let names: string[];
    try {
      names = readdirSync(this.envsDir);
    } catch {
      return [];
    }
    return names
      .filter((n) => n.startsWith(prefix) && /^[0-9a-f]{12}$/.test(n.slice(prefix.length)))
      .map((n) => join(this.envsDir, n))
      .filter((d) => d !== current);
  }

  /** `ready` (built for the current fingerprint), `stale` (built for an older one), `missing`, or `shared`. */
  state(pack: PackInfo): EnvState {
    if (pack.kind !== "isolated") return "shared";
    if (this.stamp(pack)) return "ready";
    return this.#otherEnvs(pack).some((d) => readStamp(d) !== null) ? "stale" : "missing";
  }

  /**
   * Builds the environments of the given packs, in parallel up to `concurrency`. A pack whose
   * environment is ready is reported `cached` without starting any process. One pack's
   * failure does not stop the others.
   */
  async build(packs: readonly PackInfo[], opts: BuildOptions = {}): Promise<BuildResult[]> {
    const concurrency = Math.max(1, opts.concurrency ?? Math.min(4, cpus().length || 1));
    const results: BuildResult[] = new Array(packs.length);
    for (const pack of packs) {
      if (pack.kind === "isolated") opts.onProgress?.({ pack: pack.name, phase: "queued", message: "queued", elapsedMs: 0 });
    }
    let next = 0;
    const worker = async () => {
      while (next < packs.length) {
        const i = next++;
        results[i] = await this.buildOne(packs[i]!, opts.onProgress, opts.use === true);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, packs.length) }, worker));
    return results;
  }

  /** Builds one pack's environment (see {@link EnvManager.build}); never throws. */
  async buildOne(pack: PackInfo, onProgress?: (p: BuildProgress) => void, use = false): Promise<BuildResult> {
    const started = Date.now();
    const elapsed = () => Date.now() - started;
    const say = (phase: BuildProgress["phase"], message: string) => onProgress?.({ pack: pack.name, phase, message, elapsedMs: elapsed() });
    if (pack.kind !== "isolated" || pack.manifest === null) {
      say("shared", "shared pack: runs on the host environment");
      return { pack: pack.name, status: "shared", durationMs: elapsed(), uvRuns: 0 };
    }
    const envDir = this.envDir(pack);
    // Marked before it is looked for: a build of another fingerprint must not remove it meanwhile.
    if (use) this.#markUse(envDir);
    if (this.stamp(pack)) {
      say("cached", "environment ready (cached)");
      return { pack: pack.name, status: "cached", durationMs: elapsed(), uvRuns: 0, envDir };
    }
    const counter = { uvRuns: 0 };
    let release: (() => Promise<void>) | undefined;
    try {
      await mkdir(this.envsDir, { recursive: true });
      release = await acquireLock(`${envDir}.lock`, {
        onWait: (holder) => say("waiting", `waiting for another build of this environment${holder ? ` (pid ${holder.pid})` : ""}`),
      });
      if (this.stamp(pack)) {
        say("cached", "environment ready (built by another process)");
        return { pack: pack.name, status: "cached", durationMs: elapsed(), uvRuns: 0, envDir };
      }
      await buildVenv({
        pack,
        envDir,
        envsDir: this.envsDir,
        tag: `${safeComponent(pack.name)}-${this.fingerprint(pack).slice(0, 12)}`,
        fingerprint: this.fingerprint(pack),
        host: this.host,
        uv: () => this.uv,
        env: this.#env,
        ...(this.#runtime ? { runtime: this.#runtime } : {}),
        linkMode: this.#linkMode,
        counter,
        say,
      });
      say("built", `environment built in ${(elapsed() / 1000).toFixed(1)} s`);
      await this.#removeOtherEnvs(pack);
      return { pack: pack.name, status: "built", durationMs: elapsed(), uvRuns: counter.uvRuns, envDir };
    } catch (err) {
      const error =
        err instanceof PyisolateError
          ? err
          : new PyisolateError("ENV_BUILD_FAILED", `Could not build the environment of pack "${pack.name}": ${(err as Error).message}`, { pack: pack.name, cause: err });
      say("failed", error.message.split("\n")[0] ?? "failed");
      return { pack: pack.name, status: "failed", error, durationMs: elapsed(), uvRuns: counter.uvRuns, envDir };
    } finally {
      await release?.();
    }
  }

  /** Removes this pack's environments of other fingerprints that nobody is building or using. */
  async #removeOtherEnvs(pack: PackInfo): Promise<void> {
    for (const dir of this.#otherEnvs(pack)) {
      if (existsSync(`${dir}.lock`) || this.#inUse(dir)) continue;
      await removeTree(dir).catch(() => {});
      await removeTree(`${dir}.users`).catch(() => {});
    }
  }

  #markUse(envDir: string): void {
    const users = `${envDir}.users`;
    try {
      mkdirSync(users, { recursive: true });
      writeFileSync(join(users, this.#mark), "");
      this.#marked.add(users);
    } catch {
      // A read-only cache: nothing else can build there either.
    }
  }

  /** Whether a live process marked this environment in use (marks of processes that are gone are removed). */
  #inUse(envDir: string): boolean {
    const users = `${envDir}.users`;
    let names: string[];
    try {
      names = readdirSync(users);
    } catch {
      return false;
    }
    let live = false;
    for (const name of names) {
      const m = /^(\d+)\.[0-9a-f]+@(.+)$/.exec(name);
      // Another machine's process cannot be checked from here: its mark holds.
      if (m && (m[2] !== hostname() || pidAlive(Number(m[1])))) {
        live = true;
        continue;
      }
      rmSync(join(users, name), { force: true });
    }
    return live;
  }

  /** Removes this manager's marks of the environments it used (the host's `close()`). */
  releaseUse(): void {
    for (const users of this.#marked) {
      rmSync(join(users, this.#mark), { force: true });
      try {
        rmdirSync(users);
      } catch {
        // Other users' marks remain.
      }
    }
    this.#marked.clear();
  }
}
