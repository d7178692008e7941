/**
 * The planner behind `pyisolate init`: a starter dependency list for a pack, from its
 * `requirements.txt`, its `pyproject.toml` and the modules its Python files import, with the
 * tables that map import names to distributions.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { isHostTorchRequirement, requirementName } from "../manifest/requirements.ts";
import { packPythonFiles } from "../nodes/metadata_cache.ts";

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

/** Used when no host Python can list its standard library. */
export const FALLBACK_STDLIB: readonly string[] =
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
