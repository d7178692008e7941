/**
 * The planner behind `pyisolate init`: a starter dependency list for a pack, from its
 * `requirements.txt`, its `pyproject.toml` and the modules its Python files import — read with
 * the host Python's `ast` (`python/pyisolate_runtime/pack_scan.py`), its standard library list
 * and its installed distributions' metadata — with the tables that map import names to
 * distributions.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { runProcess } from "../env/host_python.ts";
import { PyisolateError } from "../errors.ts";
import { canonicalName, HOST_TORCH, isHostTorchRequirement, parseRequirementsTxt, requirementName } from "../manifest/requirements.ts";
import { packageFile } from "../paths.ts";

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
export const COMFY_MODULES: ReadonlySet<string> = new Set([
  "comfy", "comfy_api", "comfy_api_nodes", "comfy_extras", "comfy_execution", "comfy_config", "comfyui_version",
  "folder_paths", "nodes", "server", "execution", "latent_preview", "node_helpers", "app", "utils", "main",
  "cuda_malloc", "protocol", "new_updater", "middleware", "pyisolate",
]);

const TORCH_MODULES = new Set(["torch", "torchvision", "torchaudio", "triton"]);

/** Used when the scanning Python cannot list its standard library (before 3.10). */
export const FALLBACK_STDLIB: readonly string[] =
  "__future__ _thread abc argparse array ast asyncio atexit base64 binascii bisect builtins bz2 calendar cmath codecs collections colorsys concurrent configparser contextlib contextvars copy copyreg csv ctypes dataclasses datetime decimal difflib dis email enum errno faulthandler fnmatch fractions ftplib functools gc getopt getpass gettext glob graphlib gzip hashlib heapq hmac html http imaplib importlib inspect io ipaddress itertools json keyword linecache locale logging lzma mailbox math mimetypes mmap multiprocessing netrc numbers operator os pathlib pickle pkgutil platform plistlib pprint profile pstats pty queue quopri random re reprlib resource runpy sched secrets select selectors shelve shlex shutil signal site smtplib socket socketserver sqlite3 ssl stat statistics string struct subprocess symtable sys sysconfig syslog tarfile tempfile termios textwrap threading time timeit tkinter token tokenize tomllib trace traceback tracemalloc tty turtle types typing unicodedata unittest urllib uuid venv warnings wave weakref webbrowser xml xmlrpc zipapp zipfile zipimport zlib zoneinfo".split(" ");

/** What `python/pyisolate_runtime/pack_scan.py` reports about a pack. */
export interface PackScan {
  /** The scanning Python's version. */
  python: string;
  files: number;
  /** Top-level module → where it is imported (`"nodes.py:3"`). */
  imports: Record<string, string[]>;
  /** The pack's own module names. */
  own: string[];
  /** `sys.stdlib_module_names` (empty before Python 3.10). */
  stdlib: string[];
  /** Imported module → the installed distributions that provide it. */
  distributions: Record<string, string[]>;
  /** Files that did not parse. */
  errors: { file: string; message: string }[];
}

/**
 * Reads a pack's imports with a Python's `ast` (nothing of the pack runs).
 * @throws {PyisolateError} `PROCESS_FAILED` when the scan does not run.
 */
export async function scanPack(python: string, packDir: string): Promise<PackScan> {
  const script = packageFile("python/pyisolate_runtime/pack_scan.py");
  const res = await runProcess(python, ["-I", script, packDir]);
  try {
    if (res.code === 0) return JSON.parse(res.stdout) as PackScan;
  } catch {
    // reported below
  }
  const why = (res.stderr || res.stdout).trim().split("\n").slice(-3).join(" ");
  throw new PyisolateError("PROCESS_FAILED", `Reading the imports of ${packDir} with ${python} failed (exit ${res.code ?? res.signal}): ${why}`);
}

/** What `init` found for a pack. */
export interface InitPlan {
  /** The dependencies to write (before the index check). */
  dependencies: string[];
  /** Torch-family requirements and imports left to the host (share_torch). */
  fromHost: string[];
  /** requirements.txt / pyproject lines that name no package (a bare URL, say): left out, to be added by hand. */
  skipped: string[];
  /** Where each dependency (canonical name) comes from: `requirements.txt`, `pyproject.toml`, or an import (`"nodes.py:3"`). */
  origin: Record<string, string>;
}

/** Distributions that provide the same import: only one of each family may be installed. */
function distFamily(name: string): string {
  const n = canonicalName(name);
  if (n.startsWith("opencv-")) return "opencv";
  if (n === "pillow" || n.startsWith("pillow-")) return "pillow";
  return n;
}

/** Whether a declared distribution is plausibly the one that provides `module` (`colour-science` for `colour`). */
function covers(dist: string, module: string): boolean {
  const d = canonicalName(dist);
  const m = canonicalName(module);
  return d === m || d.startsWith(`${m}-`) || d.endsWith(`-${m}`) || d === `py${m}`;
}

/**
 * Works out a starter dependency list from a pack's requirements.txt, pyproject and imports
 * (as {@link scanPack} read them). An import becomes a dependency unless it is the standard
 * library, the pack's own module, ComfyUI's, torch's (from the host), or provided by a
 * declared requirement; its distribution is the one installed in the scanning environment
 * that provides it, else the known name (`cv2` → opencv-python), else the import's own name.
 */
export function planManifest(packDir: string, scan: PackScan): InitPlan {
  const deps = new Map<string, string>();
  const origin: Record<string, string> = {};
  const fromHost = new Set<string>();
  const skipped: string[] = [];
  const add = (req: string, from: string) => {
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
    if ([...deps.keys()].some((d) => distFamily(d) === family)) return;
    deps.set(name, req);
    origin[name] = from;
  };
  const reqFile = join(packDir, "requirements.txt");
  if (existsSync(reqFile)) for (const r of parseRequirementsTxt(readFileSync(reqFile, "utf8"))) add(r, "requirements.txt");
  const pyproject = join(packDir, "pyproject.toml");
  if (existsSync(pyproject)) {
    try {
      const doc = parseToml(readFileSync(pyproject, "utf8")) as { project?: { dependencies?: unknown } };
      const list = doc.project?.dependencies;
      if (Array.isArray(list)) for (const r of list) if (typeof r === "string") add(r, "pyproject.toml");
    } catch {
      // an unreadable pyproject adds nothing
    }
  }
  const declared = [...deps.keys()];
  const std = new Set(scan.stdlib.length > 0 ? scan.stdlib : FALLBACK_STDLIB);
  const own = new Set(scan.own);
  for (const [mod, where] of Object.entries(scan.imports).sort(([a], [b]) => a.localeCompare(b))) {
    if (std.has(mod) || own.has(mod) || COMFY_MODULES.has(mod) || mod.startsWith("_")) continue;
    if (TORCH_MODULES.has(mod)) {
      fromHost.add(mod);
      continue;
    }
    const installed = (scan.distributions[mod] ?? []).map(canonicalName);
    const known = IMPORT_TO_DIST[mod];
    const candidates = [...installed, ...(known ? [known] : [])];
    // Declared already: by the distribution that provides it, or by one named after it.
    if (candidates.some((c) => declared.some((d) => distFamily(d) === distFamily(c))) || declared.some((d) => covers(d, mod))) continue;
    // Several distributions may provide one top-level name (google): the known one wins.
    const dist = (known && installed.includes(known) ? known : undefined) ?? installed.find((d) => !HOST_TORCH.test(d)) ?? installed[0] ?? known ?? canonicalName(mod);
    if (HOST_TORCH.test(dist)) {
      fromHost.add(dist);
      continue;
    }
    add(dist, where[0] ?? mod);
  }
  return { dependencies: [...deps.values()].sort((a, b) => a.localeCompare(b)), fromHost: [...fromHost].sort(), skipped, origin };
}
