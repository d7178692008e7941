/**
 * Template processes: one per environment class, each with torch (and what `import torch`
 * pulls in) already imported, forking packs' processes in milliseconds
 * (`python/pyisolate_runtime/template.py`; the fork itself is `template_fork.ts`, run by
 * the broker).
 *
 * An environment's class is what `import torch` would load in it. The host class is the host
 * Python's own: a share_torch environment that shadows none of the template's modules (its
 * site-packages has no numpy, torch, … of its own) forks from the host template. An
 * environment that pins one of them (numpy==1.26.4) gets a template of its own class, started
 * with its own Python, shared by every environment with the same pins. The fork then takes the
 * pack's own `sys.path`, so its other pins win as in a plain spawn.
 *
 * Where a fork is not safe the process is spawned plainly, and the reason is logged: not
 * Linux, another interpreter, an environment variable that torch reads at import, a module
 * the template imports that the environment cannot import, a template that could not start.
 * A template that dies is replaced at the next start (its children die with it).
 * @module
 */
import { existsSync, mkdtempSync, chmodSync, readdirSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { pythonRoot } from "../paths.ts";
import { log as defaultLog, type Logger } from "../log.ts";
import { getRuntime } from "../runtime/detect.ts";
import type { ChildHandle } from "../runtime/contract.ts";
import { KeepAlive, unrefTimeout } from "../util/os.ts";
import { SOCKET_DIR_PREFIX } from "../../workers/socket_dirs.ts";

/** How a process starts: forked from a template, or spawned plainly. */
export type SpawnMode = "fork" | "spawn";

/** Where to fork a process from, or why it is spawned plainly. */
export type TemplateChoice = { socket: string; key: string } | { reason: string };

/** Time a template has to import torch and say it is ready. */
export const TEMPLATE_START_TIMEOUT_MS = 120_000;

/** Environment variables read when torch (or its BLAS, OpenMP, CUDA) is imported or loaded. */
const IMPORT_TIME_ENV = /^(OMP_|MKL_|OPENBLAS_|KMP_|GOMP_|CUDA_|PYTORCH_|TORCH_|LD_|PYTHON(?!PATH$|UNBUFFERED$))/;

/** What a template reported when it became ready. */
export interface TemplateInfo {
  pid: number;
  python: string;
  executable: string;
  base_executable: string;
  prefix: string;
  imports: string[];
  import_ms: number;
  cuda_initialized: boolean;
  native_threads: number;
  /** Whether it reaps its children's orphans (`PR_SET_CHILD_SUBREAPER`). */
  subreaper: boolean;
  /** Top-level modules it imported: the site-packages each came from, and its version. */
  modules: Record<string, { site: string; version: string }>;
  /** pyisolate's ComfyUI shims it imported (top-level names), which its children start with. */
  preloaded: string[];
}

/** A running template. */
export interface TemplateProcess {
  key: string;
  python: string;
  socket: string;
  info: TemplateInfo;
  child: ChildHandle;
}

/** Options of {@link TemplatePool}. */
export interface TemplatePoolOptions {
  /** The host Python: its template is the host class's. */
  hostPython: string;
  /** Environment variables every process gets (the host's `env` option). */
  env?: Record<string, string>;
  /** Modules a template imports. @default ["torch"] */
  imports?: string[];
  /** @default the shared `log` */
  logger?: Logger;
}

function sameDir(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** The normalized distribution name, as in `numpy-1.26.4.dist-info`. */
const norm = (s: string) => s.toLowerCase().replace(/[-_.]+/g, "_");

/**
 * The template processes of one host, started on first need.
 *
 * @example
 * ```ts
 * const pool = new TemplatePool({ hostPython: ".venv/bin/python" });
 * const choice = await pool.choose("/envs/MyPack-1a2b/bin/python"); // { socket, key } or { reason }
 * await pool.close();
 * ```
 */
export class TemplatePool {
  #opts: TemplatePoolOptions;
  #log: Logger;
  #templates = new Map<string, Promise<TemplateProcess>>();
  #live = new Map<string, TemplateProcess>();
  #dirs = new Set<string>();
  #closed = false;
  #keepAlive = new KeepAlive();

  constructor(opts: TemplatePoolOptions) {
    this.#opts = opts;
    this.#log = opts.logger ?? defaultLog;
  }

  /** The templates running now. */
  running(): TemplateProcess[] {
    return [...this.#live.values()];
  }

  /** Starts the host class's template now (else it starts with the first process). */
  async prewarm(): Promise<void> {
    await this.choose(this.#opts.hostPython).catch(() => undefined);
  }

  /**
   * Where a process of `python` (with the pack's own `env`) forks from, starting its class's
   * template if needed; or why it is spawned plainly.
   */
  async choose(python: string, env: Record<string, string> = {}): Promise<TemplateChoice> {
    if (this.#closed) return { reason: "the host is closing" };
    if (process.platform !== "linux") return { reason: `forking is only safe on Linux (this is ${process.platform})` };
    const envKey = Object.keys(env).find((k) => IMPORT_TIME_ENV.test(k) && env[k] !== process.env[k]);
    if (envKey) return { reason: `its env sets ${envKey}, which is read when torch is imported` };
    let host: TemplateProcess;
    try {
      host = await this.#ensure("host", this.#opts.hostPython);
    } catch (e) {
      return { reason: `the template could not start: ${(e as Error).message}` };
    }
    const cls = this.#classOf(python, host);
    if ("reason" in cls) return cls;
    try {
      const t = cls.key === "host" ? host : await this.#ensure(cls.key, python);
      return { socket: t.socket, key: t.key };
    } catch (e) {
      return { reason: `the template of its class (${cls.key}) could not start: ${(e as Error).message}` };
    }
  }

  /** Kills every template synchronously (the host's exit hook). */
  killNow(): void {
    for (const t of this.#live.values()) {
      try {
        process.kill(t.child.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    for (const d of this.#dirs) rmSync(d, { recursive: true, force: true });
  }

  /** Stops every template (their children with them) and waits for them to exit. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#keepAlive.hold();
    try {
      await this.#stopAll();
    } finally {
      this.#keepAlive.release();
    }
  }

  async #stopAll(): Promise<void> {
    const all = await Promise.all([...this.#templates.values()].map((p) => p.catch(() => undefined)));
    await Promise.all(
      all.map(async (t) => {
        if (!t) return;
        t.child.kill("SIGTERM");
        const t2 = unrefTimeout(() => t.child.kill("SIGKILL"), 2000);
        await t.child.exited.catch(() => undefined);
        clearTimeout(t2);
      }),
    );
    for (const d of this.#dirs) rmSync(d, { recursive: true, force: true });
    this.#dirs.clear();
  }

  // --- internals ----------------------------------------------------------------------------

  /** The class of an environment: what `import torch` loads there, relative to the host template. */
  #classOf(python: string, host: TemplateProcess): { key: string } | { reason: string } {
    let real: string;
    try {
      real = realpathSync(python);
    } catch {
      return { reason: `its Python ${python} does not exist` };
    }
    const hostReal = realpathSync(host.info.base_executable || host.python);
    if (real !== hostReal) return { reason: `its Python (${real}) is not the host's (${hostReal})` };
    const envDir = dirname(dirname(python));
    if (!existsSync(join(envDir, "pyvenv.cfg")) || sameDir(envDir, host.info.prefix)) return { key: "host" }; // the host's Python itself
    const [major, minor] = host.info.python.split(".");
    const site = join(envDir, "lib", `python${major}.${minor}`, "site-packages");
    let entries: string[];
    try {
      entries = readdirSync(site);
    } catch {
      return { reason: `its environment has no ${site}` };
    }
    const sharesHost = entries.some((e) => e.endsWith(".pth") && readFileSync(join(site, e), "utf8").includes("site.addsitedir"));
    const pins: string[] = [];
    for (const mod of Object.keys(host.info.modules).sort()) {
      const own = entries.some((e) => e === mod || e === `${mod}.py` || (e.startsWith(`${mod}.`) && (e.endsWith(".so") || e.endsWith(".pyd"))));
      if (!own) {
        if (!sharesHost) return { reason: `its environment cannot import ${mod}, which the template imports (no share_torch)` };
        continue;
      }
      const dist = entries.find((e) => e.endsWith(".dist-info") && norm(e.slice(0, e.indexOf("-"))) === norm(mod));
      pins.push(dist ? `${mod}==${dist.slice(dist.indexOf("-") + 1, -".dist-info".length)}` : `${mod}@${site}`);
    }
    return { key: pins.length === 0 && sharesHost ? "host" : `${basename(real)}:${pins.join(",")}` };
  }

  #ensure(key: string, python: string): Promise<TemplateProcess> {
    let p = this.#templates.get(key);
    if (!p) {
      p = this.#start(key, python);
      this.#templates.set(key, p);
      // A template that could not start is tried again at a later start, not at every one.
      p.catch(() => unrefTimeout(() => this.#templates.get(key) === p && this.#templates.delete(key), 30_000));
    }
    return p;
  }

  async #start(key: string, python: string): Promise<TemplateProcess> {
    const rt = await getRuntime();
    const dir = mkdtempSync(join(tmpdir(), `${SOCKET_DIR_PREFIX}${process.pid}-t-`));
    chmodSync(dir, 0o700);
    this.#dirs.add(dir);
    const socket = join(dir, "t");
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (typeof v === "string") env[k] = v;
    Object.assign(env, this.#opts.env ?? {});
    env.PYTHONPATH = pythonRoot();
    env.PYTHONUNBUFFERED = "1";
    env.PYISOLATE_HOST_PID = String(process.pid);
    env.PYISOLATE_TEMPLATE_SOCKET = socket;
    env.PYISOLATE_TEMPLATE_IMPORTS = (this.#opts.imports ?? ["torch"]).join(",");
    const started = performance.now();
    let out = "";
    const errTail: string[] = [];
    let settle: (r: TemplateInfo | Error) => void = () => {};
    const ready = new Promise<TemplateInfo | Error>((r) => (settle = r));
    const decoder = new TextDecoder();
    const child = rt.spawn({
      cmd: python,
      args: ["-m", "pyisolate_runtime.template"],
      env,
      unref: true,
      onStdout: (c) => {
        out += decoder.decode(c, { stream: true });
        let nl: number;
        while ((nl = out.indexOf("\n")) >= 0) {
          const line = out.slice(0, nl);
          out = out.slice(nl + 1);
          try {
            const msg = JSON.parse(line) as { t?: string; error?: string; traceback?: string };
            if (msg.t === "ready") settle(msg as unknown as TemplateInfo);
            else if (msg.t === "fail") settle(new Error(`${msg.error}${msg.traceback ? `\n${msg.traceback.trimEnd()}` : ""}`));
            continue;
          } catch {
            // not a message: a line some import printed
          }
          this.#log.debug(`][ template ${key} | ${line}`);
        }
      },
      onStderr: (c) => {
        for (const line of decoder.decode(c).split("\n")) {
          if (!line) continue;
          errTail.push(line);
          if (errTail.length > 20) errTail.shift();
          this.#log.debug(`][ template ${key} ! ${line}`);
        }
      },
    });
    const timer = unrefTimeout(() => settle(new Error(`it did not become ready within ${TEMPLATE_START_TIMEOUT_MS} ms`)), TEMPLATE_START_TIMEOUT_MS);
    child.exited.then(
      (st) => {
        settle(new Error(`it ${st.signal ? `was killed by ${st.signal}` : `exited with code ${st.code}`}${errTail.length ? `: ${errTail.join("\n")}` : ""}`));
        const was = this.#live.get(key);
        if (was?.child === child) {
          this.#live.delete(key);
          if (this.#templates.get(key) && !this.#closed) {
            this.#templates.delete(key);
            this.#log.warn(`][ template ${key} exited (${st.signal ?? `code ${st.code}`}); its processes went with it, and the next start forks from a new template`);
          }
        }
        rmSync(dir, { recursive: true, force: true });
        this.#dirs.delete(dir);
      },
      (e: Error) => settle(e),
    );
    this.#keepAlive.hold();
    const r = await ready.finally(() => this.#keepAlive.release());
    clearTimeout(timer);
    if (r instanceof Error) {
      child.kill("SIGKILL");
      throw r;
    }
    const t: TemplateProcess = { key, python, socket, info: r, child };
    this.#live.set(key, t);
    this.#log.debug(`][ template ${key} ready in ${(performance.now() - started).toFixed(0)} ms (pid ${r.pid}, imported ${r.imports.join(", ")} in ${r.import_ms.toFixed(0)} ms)`);
    return t;
  }
}
