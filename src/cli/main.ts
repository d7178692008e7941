/**
 * The `pyisolate` command line: a table of commands over functions that tests call
 * in-process. {@link main} takes the arguments and returns the exit code; `bin.ts`
 * is the executable that calls it.
 *
 * Adding a command is one entry in {@link commands}.
 * @module
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import process from "node:process";
import { stringify as stringifyYaml } from "yaml";
import { parse as parseToml } from "smol-toml";
import { MetadataCache, packPythonFiles } from "../nodes/metadata_cache.ts";
import { EnvManager, type BuildProgress, type BuildResult } from "../env/env_manager.ts";
import { PyisolateError } from "../errors.ts";
import { displayPath } from "../util/fs.ts";
import { discoverPacks, isHostTorchRequirement, requirementName, type PackInfo } from "../manifest/manifest.ts";
import { resolveHostPython, resolveUv, uvVersion, type HostPython } from "../env/host_python.ts";
import { detectRuntime } from "../runtime/detect.ts";
import { RUNTIME_VERSION } from "../version.ts";
import { runCommand } from "./run.ts";
import { formatTable, ProgressView, type CliIo } from "./view.ts";

export { formatTable, ProgressView };

export type { CliIo, CliStream } from "./view.ts";

/** Options every command takes. */
export interface GlobalOptions {
  /** `--custom-nodes DIR` @default "./custom_nodes" */
  customNodes: string;
  /** `--cache-dir DIR` @default "./.pyisolate" */
  cacheDir: string;
  /** `--python PATH`: the host Python. */
  python?: string;
  /** `--verbose`: stack traces with errors, more detail. */
  verbose: boolean;
}

/** A flag of one command. */
export interface FlagSpec {
  /** Long name with dashes, e.g. `--json`. */
  name: string;
  /** Short alias, e.g. `-f`. */
  short?: string;
  /** Name of the value it takes (`N`, `DIR`), or absent for a boolean switch. */
  value?: string;
  /** One line of help. */
  help: string;
}

/** What a command receives. */
export interface CommandContext {
  opts: GlobalOptions;
  /** Positional arguments after the command name. */
  args: string[];
  /** The command's own flags, by long name without dashes (`concurrency`, `json`). */
  flags: Record<string, string | boolean>;
  io: CliIo;
  /** Writes a line to stdout. */
  out(line?: string): void;
  /** Writes a line to stderr. */
  err(line?: string): void;
}

/** One CLI command. */
export interface Command {
  /** `list [--json]`, shown in help. */
  usage: string;
  /** One line of help. */
  summary: string;
  /** More help, shown by `<command> --help`. */
  description?: string;
  flags: FlagSpec[];
  /** Runs the command; returns the exit code. Throw a PyisolateError for a one-line error. */
  run(ctx: CommandContext): Promise<number>;
}

const GLOBAL_FLAGS: FlagSpec[] = [
  { name: "--custom-nodes", value: "DIR", help: "folder of node packs (default ./custom_nodes)" },
  { name: "--cache-dir", value: "DIR", help: "environments and metadata cache (default ./.pyisolate)" },
  { name: "--python", value: "PATH", help: "host Python, whose environment holds torch (default: $PYISOLATE_PYTHON, ./.venv, python3 on PATH)" },
  { name: "--verbose", short: "-v", help: "more detail; stack traces with errors" },
  { name: "--help", short: "-h", help: "show help (for a command: pyisolate <command> --help)" },
  { name: "--version", short: "-V", help: "print the version" },
];

function usageError(message: string): PyisolateError {
  return new PyisolateError("USAGE", message);
}

// ---------------------------------------------------------------------------------------
// Output helpers

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// ---------------------------------------------------------------------------------------
// list

async function tryEnvManager(ctx: CommandContext): Promise<{ envs: EnvManager | null; problem: string | null }> {
  try {
    const envs = await EnvManager.create({ cacheDir: ctx.opts.cacheDir, ...(ctx.opts.python ? { python: ctx.opts.python } : {}) });
    return { envs, problem: null };
  } catch (err) {
    return { envs: null, problem: (err as Error).message };
  }
}

const listCommand: Command = {
  usage: "list [--json]",
  summary: "list node packs: isolated or shared, manifest, environment and cache state",
  description:
    "Environment state: ready (built for the current manifest and host), stale (built for an older one),\n" +
    "missing, or shared (runs on the host environment). Cache state: hit, stale or none.",
  flags: [{ name: "--json", help: "print JSON instead of a table" }],
  async run(ctx) {
    const { packs, errors } = discoverPacks(ctx.opts.customNodes);
    const { envs, problem } = await tryEnvManager(ctx);
    const cache = new MetadataCache(ctx.opts.cacheDir);
    const rows = packs.map((p) => {
      const env = envs ? envs.state(p) : "unknown";
      const cacheState = envs ? cache.state(p, cache.key(p, envs.fingerprint(p))) : "unknown";
      return { pack: p, env, cache: cacheState };
    });
    if (ctx.flags.json) {
      const json = [
        ...rows.map(({ pack: p, env, cache: c }) => ({
          name: p.name,
          path: p.path,
          kind: p.kind,
          manifestFile: p.manifestFile,
          shareTorch: p.manifest?.shareTorch ?? null,
          dependencies: p.manifest?.dependencies ?? [],
          env,
          envDir: envs && p.kind === "isolated" ? envs.envDir(p) : null,
          cache: c,
          warnings: p.warnings,
        })),
        ...errors.map((e) => ({ name: e.pack, kind: "invalid", manifestFile: e.file ?? null, error: e.message })),
      ];
      ctx.out(JSON.stringify(json, null, 2));
      return 0;
    }
    const tableRows = [
      ...rows.map(({ pack: p, env, cache: c }) => [p.name, p.kind, p.manifestFile ? basename(p.manifestFile) : "-", env, c]),
      ...errors.map((e) => [e.pack ?? "?", "invalid", e.file ? basename(e.file) : "-", "-", "-"]),
    ].sort((a, b) => ((a[0] ?? "") < (b[0] ?? "") ? -1 : 1));
    if (tableRows.length === 0) {
      ctx.out(`No node packs in ${displayPath(resolve(ctx.opts.customNodes))}.`);
    } else {
      for (const line of formatTable(["PACK", "KIND", "MANIFEST", "ENV", "CACHE"], tableRows)) ctx.out(line);
    }
    if (problem) ctx.err(`warning: environment state unknown: ${problem}`);
    for (const p of packs) for (const w of p.warnings) ctx.err(`warning: ${p.name}: ${w}`);
    for (const e of errors) ctx.err(`error: ${e.message}`);
    return 0;
  },
};

// ---------------------------------------------------------------------------------------
// build

const buildCommand: Command = {
  usage: "build [pack...] [--concurrency N]",
  summary: "build the environments of isolated packs (all, or the named ones)",
  description:
    "Environments are reused when nothing changed (no uv process runs: reported as cached).\n" +
    "A pack whose manifest is invalid, or whose dependencies cannot be installed, fails with\n" +
    "its error while the others build. Exit code 1 when any pack failed.",
  flags: [{ name: "--concurrency", value: "N", help: "packs built at once (default min(4, CPUs))" }],
  async run(ctx) {
    let concurrency: number | undefined;
    if (ctx.flags.concurrency !== undefined) {
      concurrency = Number(ctx.flags.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1) throw usageError(`--concurrency must be a positive integer, got ${JSON.stringify(ctx.flags.concurrency)}.`);
    }
    const { packs, errors } = discoverPacks(ctx.opts.customNodes);
    let selected = packs;
    let selectedErrors = errors;
    if (ctx.args.length > 0) {
      const known = [...packs.map((p) => p.name), ...errors.map((e) => e.pack ?? "")].filter(Boolean).sort();
      const unknown = ctx.args.filter((a) => !known.includes(a));
      if (unknown.length > 0) {
        throw new PyisolateError(
          "NOT_FOUND",
          `Unknown pack${unknown.length > 1 ? "s" : ""} ${unknown.map((u) => JSON.stringify(u)).join(", ")} in ${displayPath(resolve(ctx.opts.customNodes))}. Known packs: ${known.join(", ") || "(none)"}.`,
        );
      }
      selected = packs.filter((p) => ctx.args.includes(p.name));
      selectedErrors = errors.filter((e) => ctx.args.includes(e.pack ?? ""));
    }
    for (const p of selected) for (const w of p.warnings) ctx.err(`warning: ${p.name}: ${w}`);
    const isolated = selected.filter((p) => p.kind === "isolated");
    let results: BuildResult[] = [];
    if (isolated.length > 0) {
      const envs = await EnvManager.create({ cacheDir: ctx.opts.cacheDir, ...(ctx.opts.python ? { python: ctx.opts.python } : {}) });
      void envs.uv; // fail early, with one line, when uv is missing
      const view = new ProgressView(ctx.io, isolated.map((p) => p.name));
      try {
        results = await envs.build(isolated, { ...(concurrency ? { concurrency } : {}), onProgress: (p) => view.update(p) });
      } finally {
        view.finish();
      }
    }
    const byName = new Map(results.map((r) => [r.pack, r]));
    const rows: string[][] = [];
    for (const p of selected) {
      const r = byName.get(p.name);
      if (!r) rows.push([p.name, "shared", "-", "runs on the host environment"]);
      else rows.push([p.name, r.status, seconds(r.durationMs), r.status === "failed" ? "see the error below" : r.envDir ? displayPath(r.envDir) : ""]);
    }
    for (const e of selectedErrors) rows.push([e.pack ?? "?", "failed", "-", "invalid manifest, see the error below"]);
    rows.sort((a, b) => ((a[0] ?? "") < (b[0] ?? "") ? -1 : 1));
    ctx.out();
    if (rows.length === 0) ctx.out(`No node packs in ${displayPath(resolve(ctx.opts.customNodes))}.`);
    else for (const line of formatTable(["PACK", "RESULT", "TIME", "DETAIL"], rows)) ctx.out(line);
    const failed = results.filter((r) => r.status === "failed");
    const count = (s: BuildResult["status"]) => results.filter((r) => r.status === s).length;
    ctx.out();
    ctx.out(
      `${count("built")} built, ${count("cached")} cached, ${failed.length + selectedErrors.length} failed, ${selected.length - isolated.length} shared`,
    );
    for (const e of selectedErrors) ctx.err(`error: ${e.message}`);
    for (const r of failed) ctx.err(`error: ${r.error?.message ?? `pack ${r.pack} failed`}`);
    return failed.length + selectedErrors.length > 0 ? 1 : 0;
  },
};

// ---------------------------------------------------------------------------------------
// doctor

const doctorCommand: Command = {
  usage: "doctor",
  summary: "check the host Python, torch, uv, /dev/shm and the JavaScript runtime",
  description: "Each line is ✓ (fine), ! (worth a look) or ✗ (must be fixed), with what to do. Exit code 1 when any ✗.",
  flags: [],
  async run(ctx) {
    let bad = 0;
    const ok = (label: string, detail: string) => ctx.out(`✓ ${label}: ${detail}`);
    let warnings = 0;
    const warn = (label: string, detail: string, fix: string) => {
      warnings++;
      ctx.out(`! ${label}: ${detail}`);
      ctx.out(`    → ${fix}`);
    };
    const fail = (label: string, detail: string, fix: string) => {
      bad++;
      ctx.out(`✗ ${label}: ${detail}`);
      ctx.out(`    → ${fix}`);
    };
    const sourceText: Record<HostPython["source"], string> = {
      option: "--python",
      env: "PYISOLATE_PYTHON",
      venv: "./.venv",
      path: "PATH",
    };
    let host: HostPython | null = null;
    try {
      host = await resolveHostPython({ cacheDir: ctx.opts.cacheDir, ...(ctx.opts.python ? { python: ctx.opts.python } : {}) });
      ok("host Python", `${host.version} at ${host.python} (from ${sourceText[host.source]})`);
      const [maj, min] = host.version.split(".").map(Number);
      if ((maj ?? 0) < 3 || ((maj ?? 0) === 3 && (min ?? 0) < 9)) fail("host Python version", host.version, "use Python 3.9 or newer");
    } catch (err) {
      fail("host Python", (err as Error).message, "set PYISOLATE_PYTHON or pass --python with the interpreter whose environment holds torch");
    }
    if (host) {
      if (host.torchVersion) ok("torch", `${host.torchVersion} in the host environment (share_torch packs reuse it)`);
      else fail("torch", `not installed in ${host.python}'s environment`, `install it there (\`${host.python} -m pip install torch\`), or point PYISOLATE_PYTHON at ComfyUI's Python`);
    }
    try {
      const uv = resolveUv(host);
      const how = { env: "PYISOLATE_UV", path: "PATH", "python -m uv": "the host environment (python -m uv)" }[uv.source];
      try {
        const version = await uvVersion(uv);
        ok("uv", `${version} via ${how}: ${[uv.cmd, ...uv.args].join(" ")}`);
      } catch (err) {
        fail("uv", `found via ${how} but does not run: ${(err as Error).message}`, "reinstall uv (pip install uv) or set PYISOLATE_UV to a working uv binary");
      }
      if (uv.source !== "path") ctx.out("    (uv is not on PATH; that is fine)");
    } catch (err) {
      fail("uv", (err as Error).message.split(". Install")[0] ?? "not found", host ? `${host.python} -m pip install uv, or set PYISOLATE_UV` : "pip install uv, or set PYISOLATE_UV");
    }
    try {
      const st = statfsSync("/dev/shm");
      const free = Number(st.bavail) * Number(st.bsize);
      const gib = (free / 2 ** 30).toFixed(1);
      if (free < 256 * 2 ** 20) fail("/dev/shm", `only ${gib} GiB free`, "tensors cross processes through /dev/shm: free space there or enlarge it (e.g. docker --shm-size=8g)");
      else if (free < 2 * 2 ** 30) warn("/dev/shm", `${gib} GiB free`, "large images and latents need more; consider enlarging it (e.g. docker --shm-size=8g)");
      else ok("/dev/shm", `${gib} GiB free`);
    } catch (err) {
      fail("/dev/shm", `not usable: ${(err as Error).message}`, "tensors cross processes through /dev/shm; run on Linux with a tmpfs at /dev/shm");
    }
    const rt = detectRuntime();
    const versions = process.versions as Record<string, string | undefined>;
    const rtVersion = rt === "node" ? versions.node : versions[rt];
    if (rt === "node" && Number((versions.node ?? "0").split(".")[0]) < 20) fail("JavaScript runtime", `node ${versions.node}`, "use Node.js 20 or newer");
    else ok("JavaScript runtime", `${rt} ${rtVersion ?? "(unknown version)"}`);
    const nodesDir = resolve(ctx.opts.customNodes);
    try {
      const { packs, errors } = discoverPacks(nodesDir);
      const iso = packs.filter((p) => p.kind === "isolated").length;
      const detail = `${displayPath(nodesDir)}: ${plural(iso, "isolated pack")}, ${plural(packs.length - iso, "shared pack")}`;
      if (errors.length > 0) warn("custom nodes", `${detail}, ${plural(errors.length, "invalid manifest")}`, "run `pyisolate list` to see the errors");
      else ok("custom nodes", detail);
    } catch {
      warn("custom nodes", `${displayPath(nodesDir)} does not exist`, "pass --custom-nodes DIR (the folder holding your node packs)");
    }
    const cacheDir = resolve(ctx.opts.cacheDir);
    try {
      mkdirSync(cacheDir, { recursive: true });
      const probe = join(cacheDir, `.doctor-${process.pid}`);
      writeFileSync(probe, "ok");
      rmSync(probe, { force: true });
      ok("cache directory", `${displayPath(cacheDir)} is writable`);
    } catch (err) {
      fail("cache directory", `${displayPath(cacheDir)} is not writable: ${(err as Error).message}`, "pass --cache-dir DIR with a writable folder");
    }
    ctx.out();
    const warned = warnings > 0 ? ` (${plural(warnings, "warning")})` : "";
    ctx.out(bad === 0 ? `All checks passed${warned}.` : `${plural(bad, "problem")} found${warned}.`);
    return bad === 0 ? 0 : 1;
  },
};

// ---------------------------------------------------------------------------------------
// init

/** Import names whose distribution is named differently. */
const IMPORT_TO_DIST: Record<string, string> = {
  PIL: "pillow",
  cv2: "opencv-python",
  yaml: "pyyaml",
  sklearn: "scikit-learn",
  skimage: "scikit-image",
  bs4: "beautifulsoup4",
  dateutil: "python-dateutil",
  dotenv: "python-dotenv",
  attr: "attrs",
  Crypto: "pycryptodome",
  jwt: "pyjwt",
  serial: "pyserial",
  docx: "python-docx",
  fitz: "pymupdf",
  git: "gitpython",
  websocket: "websocket-client",
  OpenGL: "pyopengl",
  pkg_resources: "setuptools",
  magic: "python-magic",
  ruamel: "ruamel.yaml",
  mpl_toolkits: "matplotlib",
  google: "protobuf",
};

/** Modules ComfyUI provides to every pack (and this runtime shims in isolated ones). */
const COMFY_MODULES = new Set([
  "comfy", "comfy_api", "comfy_api_nodes", "comfy_extras", "comfy_execution", "comfy_config", "comfyui_version",
  "folder_paths", "nodes", "server", "execution", "latent_preview", "node_helpers", "app", "utils", "main",
  "cuda_malloc", "protocol", "new_updater", "middleware", "pyisolate",
]);

const TORCH_MODULES = new Set(["torch", "torchvision", "torchaudio", "triton"]);

/** Used when no host Python can list its standard library. */
const FALLBACK_STDLIB =
  "__future__ _thread abc argparse array ast asyncio atexit base64 binascii bisect builtins bz2 calendar cmath codecs collections colorsys concurrent configparser contextlib contextvars copy copyreg csv ctypes dataclasses datetime decimal difflib dis email enum errno faulthandler fnmatch fractions ftplib functools gc getopt getpass gettext glob graphlib gzip hashlib heapq hmac html http imaplib importlib inspect io ipaddress itertools json keyword linecache locale logging lzma mailbox math mimetypes mmap multiprocessing netrc numbers operator os pathlib pickle pkgutil platform plistlib pprint profile pstats pty queue quopri random re reprlib resource runpy sched secrets select selectors shelve shlex shutil signal site smtplib socket socketserver sqlite3 ssl stat statistics string struct subprocess symtable sys sysconfig syslog tarfile tempfile termios textwrap threading time timeit tkinter token tokenize tomllib trace traceback tracemalloc tty turtle types typing unicodedata unittest urllib uuid venv warnings wave weakref webbrowser xml xmlrpc zipapp zipfile zipimport zlib zoneinfo".split(" ");

/** Top-level modules a Python source imports (absolute imports only). */
export function scanImports(source: string): string[] {
  const found = new Set<string>();
  for (const raw of source.split("\n")) {
    const line = raw.replace(/#.*$/, "");
    const from = /^\s*from\s+([A-Za-z_][\w.]*)\s+import\b/.exec(line);
    if (from?.[1]) {
      found.add(from[1].split(".")[0]!);
      continue;
    }
    const imp = /^\s*import\s+(.+)$/.exec(line);
    if (imp?.[1]) {
      for (const part of imp[1].split(",")) {
        const name = /^\s*([A-Za-z_][\w.]*)/.exec(part)?.[1];
        if (name) found.add(name.split(".")[0]!);
      }
    }
  }
  return [...found];
}

/** Requirements listed in a requirements.txt (options, includes and comments skipped). */
export function parseRequirementsTxt(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!line || line.startsWith("-")) continue;
    out.push(line);
  }
  return out;
}

/** What `init` found for a pack. */
export interface InitPlan {
  dependencies: string[];
  /** Torch-family requirements and imports left to the host (share_torch). */
  fromHost: string[];
  /** requirements.txt / pyproject lines that name no distribution (a bare URL, say): left out, to be added by hand. */
  skipped: string[];
}

/** Distributions that provide the same import: only one of each family may be installed. */
function distFamily(name: string): string {
  const n = name.toLowerCase();
  if (n.startsWith("opencv-")) return "opencv";
  if (n === "pillow" || n.startsWith("pillow-")) return "pillow";
  return n;
}

/** Works out a starter dependency list from a pack's requirements.txt, pyproject and imports. */
export function planManifest(packDir: string, stdlib: readonly string[]): InitPlan {
  const deps = new Map<string, string>();
  const fromHost = new Set<string>();
  const skipped: string[] = [];
  const add = (req: string) => {
    const name = requirementName(req);
    if (name === null) {
      skipped.push(req);
      return;
    }
    if (isHostTorchRequirement(req)) {
      fromHost.add(name);
      return;
    }
    const family = distFamily(name);
    if (![...deps.keys()].some((d) => distFamily(d) === family)) deps.set(name, req);
  };
  const reqFile = join(packDir, "requirements.txt");
  if (existsSync(reqFile)) for (const r of parseRequirementsTxt(readFileSync(reqFile, "utf8"))) add(r);
  const pyproject = join(packDir, "pyproject.toml");
  if (existsSync(pyproject)) {
    try {
      const doc = parseToml(readFileSync(pyproject, "utf8")) as { project?: { dependencies?: unknown } };
      const list = doc.project?.dependencies;
      if (Array.isArray(list)) for (const r of list) if (typeof r === "string") add(r);
    } catch {
      // an unreadable pyproject adds nothing
    }
  }
  const files = packPythonFiles(packDir);
  const own = new Set<string>([basename(packDir)]);
  for (const [rel] of files) {
    for (const part of rel.split("/")) own.add(part.replace(/\.py$/, ""));
  }
  const std = new Set(stdlib);
  for (const [rel] of files) {
    let source: string;
    try {
      source = readFileSync(join(packDir, rel), "utf8");
    } catch {
      continue;
    }
    for (const mod of scanImports(source)) {
      if (std.has(mod) || own.has(mod) || COMFY_MODULES.has(mod) || mod.startsWith("_")) continue;
      if (TORCH_MODULES.has(mod)) {
        fromHost.add(mod);
        continue;
      }
      add(IMPORT_TO_DIST[mod] ?? mod.toLowerCase().replace(/_/g, "-"));
    }
  }
  return { dependencies: [...deps.values()].sort((a, b) => a.localeCompare(b)), fromHost: [...fromHost].sort(), skipped };
}

const initCommand: Command = {
  usage: "init <dir> [--force]",
  summary: "write a starter pyisolate.yaml for a pack from its requirements.txt and imports",
  description:
    "<dir> is the pack's folder (or a pack name under --custom-nodes). The starter manifest is\n" +
    "isolated with share_torch; review its dependency list before building.",
  flags: [{ name: "--force", short: "-f", help: "overwrite an existing pyisolate.yaml" }],
  async run(ctx) {
    if (ctx.args.length !== 1) throw usageError(`init takes one argument, the pack's folder; got ${ctx.args.length}.`);
    const arg = ctx.args[0]!;
    let dir = resolve(arg);
    if (!existsSync(dir) && existsSync(join(resolve(ctx.opts.customNodes), arg))) dir = join(resolve(ctx.opts.customNodes), arg);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new PyisolateError("NOT_FOUND", `${displayPath(dir)} is not a folder. Pass the node pack's folder, e.g. pyisolate init custom_nodes/MyPack.`);
    }
    const target = join(dir, "pyisolate.yaml");
    if (existsSync(target) && !ctx.flags.force) {
      throw new PyisolateError("VALIDATION", `${displayPath(target)} already exists; pass --force to overwrite it.`, { file: target });
    }
    let stdlib: readonly string[] = FALLBACK_STDLIB;
    try {
      const host = await resolveHostPython({ cacheDir: ctx.opts.cacheDir, ...(ctx.opts.python ? { python: ctx.opts.python } : {}) });
      if (host.stdlibModules.length > 0) stdlib = host.stdlibModules;
    } catch {
      // the built-in list will do
    }
    const plan = planManifest(dir, stdlib);
    const header =
      `# pyisolate manifest for ${basename(dir)} (written by \`pyisolate init\`; review the dependencies).\n` +
      "# isolated: run in its own process and environment; share_torch: reuse the host's torch.\n" +
      (plan.fromHost.length > 0 ? `# From the host environment (share_torch): ${plan.fromHost.join(", ")}.\n` : "");
    const body = stringifyYaml({ isolated: true, share_torch: true, dependencies: plan.dependencies });
    writeFileSync(target, header + body);
    for (const line of plan.skipped) ctx.err(`warning: left out "${line}": it names no package; add it to dependencies as "name @ ${line}" if the pack needs it.`);
    if (existsSync(join(dir, "pyproject.toml"))) {
      ctx.err(`note: ${displayPath(target)} takes precedence over pyproject.toml's [tool.comfy.isolation].`);
    }
    ctx.out(`Wrote ${displayPath(target)}: isolated, share_torch, ${plan.dependencies.length} ${plan.dependencies.length === 1 ? "dependency" : "dependencies"}${plan.dependencies.length ? ` (${plan.dependencies.join(", ")})` : ""}.`);
    return 0;
  },
};

// ---------------------------------------------------------------------------------------
// the table and main

/** Every command, by name. Adding a command is adding an entry here. */
export const commands: Record<string, Command> = {
  run: runCommand,
  list: listCommand,
  build: buildCommand,
  doctor: doctorCommand,
  init: initCommand,
};

function flagLines(flags: FlagSpec[]): string[] {
  const left = flags.map((f) => `${f.short ? `${f.short}, ` : "    "}${f.name}${f.value ? ` ${f.value}` : ""}`);
  const width = Math.max(0, ...left.map((l) => l.length));
  return flags.map((f, i) => `  ${left[i]!.padEnd(width)}  ${f.help}`);
}

/** The global help text. */
export function globalHelp(): string {
  const names = Object.keys(commands);
  return [
    `pyisolate ${RUNTIME_VERSION}: run ComfyUI custom nodes each in its own process and environment.`,
    "",
    "Usage: pyisolate <command> [options]",
    "",
    "Commands:",
    ...names.flatMap((n) => [`  ${commands[n]!.usage}`, `      ${commands[n]!.summary}`]),
    "  help [command]",
    "      show help for a command",
    "",
    "Options (every command):",
    ...flagLines(GLOBAL_FLAGS),
    "",
    "Environment: PYISOLATE_PYTHON (host Python), PYISOLATE_UV (uv binary).",
    'Run "pyisolate <command> --help" for a command\'s own options.',
  ].join("\n");
}

/** The help text of one command. */
export function commandHelp(name: string): string {
  const c = commands[name]!;
  return [
    `Usage: pyisolate ${c.usage}`,
    "",
    c.summary.charAt(0).toUpperCase() + c.summary.slice(1) + ".",
    ...(c.description ? ["", c.description] : []),
    ...(c.flags.length > 0 ? ["", "Options:", ...flagLines(c.flags)] : []),
    "",
    "Options (every command):",
    ...flagLines(GLOBAL_FLAGS),
  ].join("\n");
}

interface Parsed {
  command: string | null;
  args: string[];
  flags: Record<string, string | boolean>;
  opts: GlobalOptions;
  help: boolean;
  version: boolean;
}

/** Parses argv: global flags anywhere, the command's own flags after the command. */
export function parseArgs(argv: readonly string[]): Parsed {
  const out: Parsed = {
    command: null,
    args: [],
    flags: {},
    opts: { customNodes: "./custom_nodes", cacheDir: "./.pyisolate", verbose: false },
    help: false,
    version: false,
  };
  const positional: string[] = [];
  let onlyPositional = false;
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    if (onlyPositional || !tok.startsWith("-") || tok === "-") {
      if (out.command === null) out.command = tok;
      else positional.push(tok);
      continue;
    }
    if (tok === "--") {
      onlyPositional = true;
      continue;
    }
    const eq = tok.startsWith("--") ? tok.indexOf("=") : -1;
    const name = eq > 0 ? tok.slice(0, eq) : tok;
    const inline = eq > 0 ? tok.slice(eq + 1) : undefined;
    const cmdFlags = out.command && commands[out.command] ? commands[out.command]!.flags : [];
    const spec = [...GLOBAL_FLAGS, ...cmdFlags].find((f) => f.name === name || f.short === name);
    if (!spec) {
      throw usageError(`Unknown option ${name}${out.command && commands[out.command] ? ` for "${out.command}"` : ""}. Run "pyisolate ${out.command && commands[out.command] ? `${out.command} ` : ""}--help" for the options.`);
    }
    let value: string | boolean = true;
    if (spec.value) {
      if (inline !== undefined) value = inline;
      else {
        const next = argv[i + 1];
        if (next === undefined) throw usageError(`Option ${spec.name} needs a value (${spec.value}).`);
        value = next;
        i++;
      }
    } else if (inline !== undefined) {
      throw usageError(`Option ${spec.name} takes no value.`);
    }
    switch (spec.name) {
      case "--custom-nodes":
        out.opts.customNodes = value as string;
        break;
      case "--cache-dir":
        out.opts.cacheDir = value as string;
        break;
      case "--python":
        out.opts.python = value as string;
        break;
      case "--verbose":
        out.opts.verbose = true;
        break;
      case "--help":
        out.help = true;
        break;
      case "--version":
        out.version = true;
        break;
      default:
        out.flags[spec.name.slice(2)] = value;
    }
  }
  out.args = positional;
  return out;
}

/**
 * Runs the CLI with the given arguments (without `node` and the script).
 * @returns the exit code: 0 success, 1 failure, 2 usage error.
 * @example
 * process.exitCode = await main(process.argv.slice(2));
 */
export async function main(argv: readonly string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const out = (line = "") => void io.stdout.write(`${line}\n`);
  const err = (line = "") => void io.stderr.write(`${line}\n`);
  let parsed: Parsed | undefined;
  try {
    parsed = parseArgs(argv);
    if (parsed.version) {
      out(RUNTIME_VERSION);
      return 0;
    }
    if (parsed.command === "help") {
      const topic = parsed.args[0];
      if (topic && !commands[topic]) throw usageError(`Unknown command "${topic}". Commands: ${Object.keys(commands).join(", ")}.`);
      out(topic ? commandHelp(topic) : globalHelp());
      return 0;
    }
    if (parsed.command === null) {
      if (parsed.help) {
        out(globalHelp());
        return 0;
      }
      err(globalHelp());
      return 2;
    }
    const cmd = commands[parsed.command];
    if (!cmd) throw usageError(`Unknown command "${parsed.command}". Commands: ${Object.keys(commands).join(", ")}.`);
    if (parsed.help) {
      out(commandHelp(parsed.command));
      return 0;
    }
    return await cmd.run({ opts: parsed.opts, args: parsed.args, flags: parsed.flags, io, out, err });
  } catch (e) {
    const verbose = parsed?.opts.verbose ?? (argv.includes("--verbose") || argv.includes("-v"));
    const message = e instanceof Error ? e.message : String(e);
    err(`error: ${message}`);
    if (verbose && e instanceof Error && e.stack) err(e.stack);
    if (e instanceof PyisolateError && e.code === "USAGE") return 2;
    return 1;
  }
}
