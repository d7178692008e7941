/**
 * Template-fork spawn, end to end with real processes: packs' processes fork from a template
 * that has torch imported; a pack pinning numpy==1.26.4 and one needing numpy>=2.1 each see
 * their own (each class has its own template); a forked child has the `sys.path` a plain
 * spawn of the same environment has; CUDA is never initialised in a template; a crashed
 * template is replaced; children are reaped; where forking is not safe, the process is
 * spawned plainly and the log says why.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHost, type Host } from "../src/host.ts";
import { Logger } from "../src/log.ts";
import { templateStatus } from "../src/process/template_fork.ts";
import { getRuntime } from "../src/runtime/detect.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");
const linux = process.platform === "linux";

/** The state letter of /proc/<pid>/stat ("Z" for a zombie), or null when the pid is gone. */
function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return null;
  }
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const PROBE = `
import json, os, sys


class Probe:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"nonce": ("INT", {"default": 0, "min": 0, "max": 1 << 30})}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "probe"
    OUTPUT_NODE = True
    CATEGORY = "test"

    def probe(self, nonce):
        import numpy, torch
        info = {
            "numpy": numpy.__version__,
            "cuda_initialized": torch.cuda.is_initialized(),
            "executable": sys.executable,
            "prefix": sys.prefix,
            "path": sys.path[1:],
            "pid": os.getpid(),
        }
        return {"ui": {"text": [json.dumps(info)]}, "result": (json.dumps(info),)}


class Orphan:
    """Starts a process that starts a sleeper and exits at once: the sleeper is orphaned."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "test"

    def run(self):
        import subprocess
        code = "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1.0)'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        return {"ui": {"text": [out]}, "result": (out,)}


NODE_CLASS_MAPPINGS = {"__NAME__Probe": Probe, "__NAME__Orphan": Orphan}
`;

/** A pack that notes, as it is imported, which ComfyUI modules its process has loaded already. */
const SHIM_PROBE = `
import json, sys

LOADED_AT_IMPORT = sorted(m for m in ("nodes", "comfy", "comfy.model_management", "comfy_api.latest", "folder_paths", "server") if m in sys.modules)


class __NAME__Shims:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"nonce": ("INT", {"default": 0, "min": 0, "max": 1 << 30})}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "probe"
    OUTPUT_NODE = True
    CATEGORY = "test"

    def probe(self, nonce):
        import nodes, comfy.model_management, folder_paths
        from comfy_api.latest import io
        info = {
            "loaded_at_import": LOADED_AT_IMPORT,
            "nodes": nodes.__file__,
            "nodes_marker": getattr(nodes, "MARKER", None),
            "model_management": comfy.model_management.__file__,
            "io_has_schema": hasattr(io, "Schema"),
            "max_resolution": getattr(nodes, "MAX_RESOLUTION", None),
        }
        return {"ui": {"text": [json.dumps(info)]}, "result": (json.dumps(info),)}


NODE_CLASS_MAPPINGS = {"__NAME__Shims": __NAME__Shims}
`;

describe.skipIf(!linux)("template fork", () => {
  let root: string;
  let host: Host;
  const lines: string[] = [];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "pyisolate-template-"));
    const nodes = join(root, "custom_nodes");
    for (const pack of ["NumpyLegacyNode", "NumpyModernNode"]) {
      cpSync(join(repo, "examples", "custom_nodes", pack), join(nodes, pack), { recursive: true });
      writeFileSync(join(nodes, pack, "probe.py"), PROBE.replaceAll("__NAME__", pack));
      const init = join(nodes, pack, "__init__.py");
      writeFileSync(init, `${readFileSync(init, "utf8")}\nfrom .probe import NODE_CLASS_MAPPINGS as _probe\nNODE_CLASS_MAPPINGS = {**globals().get("NODE_CLASS_MAPPINGS", {}), **_probe}\n`);
    }
    for (const pack of ["HostA", "HostB"]) {
      mkdirSync(join(nodes, pack), { recursive: true });
      writeFileSync(join(nodes, pack, "pyisolate.yaml"), "isolated: true\nshare_torch: true\n");
      writeFileSync(join(nodes, pack, "__init__.py"), PROBE.replaceAll("__NAME__", pack));
    }
    mkdirSync(join(nodes, "ShimUser"), { recursive: true });
    writeFileSync(join(nodes, "ShimUser", "pyisolate.yaml"), "isolated: true\nshare_torch: true\n");
    writeFileSync(join(nodes, "ShimUser", "__init__.py"), SHIM_PROBE.replaceAll("__NAME__", "ShimUser"));
    mkdirSync(join(nodes, "ThreadsEnv"), { recursive: true });
    writeFileSync(join(nodes, "ThreadsEnv", "pyisolate.yaml"), "isolated: true\nshare_torch: true\nenv:\n  OMP_NUM_THREADS: '1'\n");
    writeFileSync(join(nodes, "ThreadsEnv", "__init__.py"), PROBE.replaceAll("__NAME__", "ThreadsEnv"));
    host = await createHost({ customNodes: nodes, cacheDir: join(root, "cache"), baseDir: root, python: hostPython, logger: new Logger((_l, line) => lines.push(line)) });
    expect(host.packs.filter((p) => p.source === "failed").map((p) => `${p.name}: ${p.error?.message}`)).toEqual([]);
  }, 600_000);

  afterAll(async () => {
    await host?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  let nonce = 0;
  const probe = async (pack: string) => {
    const r = await host.run({ "1": { class_type: `${pack}Probe`, inputs: { nonce: ++nonce } } });
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    return JSON.parse((r.outputs["1"] as { text: string[] }).text[0]!) as { numpy: string; cuda_initialized: boolean; executable: string; prefix: string; path: string[]; pid: number };
  };

  it("forks each pack from the template of its class; numpy pins stay intact", async () => {
    const legacy = await probe("NumpyLegacyNode");
    const modern = await probe("NumpyModernNode");
    const a = await probe("HostA");
    const b = await probe("HostB");
    expect(legacy.numpy).toBe("1.26.4");
    expect(Number(modern.numpy.split(".")[0])).toBe(2);
    expect(Number(modern.numpy.split(".")[1])).toBeGreaterThanOrEqual(1);
    for (const pack of ["NumpyLegacyNode", "NumpyModernNode", "HostA", "HostB"]) {
      expect(lines.some((l) => l.startsWith(`][ ${pack} - forked from template`)), `${pack} forked`).toBe(true);
    }
    const templates = host.core.templates!.running();
    const keys = templates.map((t) => t.key).sort();
    expect(keys).toContain("host");
    expect(keys.some((k) => k.includes("numpy==1.26.4"))).toBe(true);
    expect(keys.some((k) => k.includes(`numpy==${modern.numpy}`))).toBe(true);
    // Each child runs as its own environment's Python, not the template's.
    expect(legacy.executable).toBe(host.core.processFor("NumpyLegacyNode").python);
    expect(legacy.prefix).not.toBe(modern.prefix);
    expect(a.prefix).not.toBe(b.prefix);
    // Forked children are children of their template.
    const hostTemplate = templates.find((t) => t.key === "host")!;
    expect(readFileSync(`/proc/${a.pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]).toBe(String(hostTemplate.info.pid));
  });

  it("gives a forked child the sys.path a plain spawn of its environment has", async () => {
    const forked = await probe("NumpyLegacyNode");
    const plainLines: string[] = [];
    const plain = await createHost({
      customNodes: join(root, "custom_nodes"),
      cacheDir: join(root, "cache"),
      baseDir: root,
      python: hostPython,
      packs: ["NumpyLegacyNode"],
      spawn: "spawn",
      logger: new Logger((_l, line) => plainLines.push(line)),
    });
    try {
      const r = await plain.run({ "1": { class_type: "NumpyLegacyNodeProbe", inputs: { nonce: 1 } } });
      const info = JSON.parse((r.outputs["1"] as { text: string[] }).text[0]!) as { path: string[]; numpy: string; executable: string; prefix: string };
      expect(plainLines.some((l) => l.includes("forked"))).toBe(false);
      expect(info.numpy).toBe("1.26.4");
      expect(forked.path).toEqual(info.path);
      expect(forked.executable).toBe(info.executable);
      expect(forked.prefix).toBe(info.prefix);
    } finally {
      await plain.close();
    }
  });

  it("starts a forked child with the shims its template imported; shared modules that provide one of their names get their own", async () => {
    const shims = async (h: Host) => {
      const r = await h.run({ "1": { class_type: "ShimUserShims", inputs: { nonce: ++nonce } } });
      expect(r.status, JSON.stringify(r.error)).toBe("success");
      return JSON.parse((r.outputs["1"] as { text: string[] }).text[0]!) as { loaded_at_import: string[]; nodes: string; nodes_marker: string | null; model_management: string; io_has_schema: boolean; max_resolution: number | null };
    };
    const shimsDir = join(repo, "python", "pyisolate_runtime", "shims");
    const forked = await shims(host);
    expect(lines.some((l) => l.startsWith("][ ShimUser - forked from template host"))).toBe(true);
    // Loaded before the pack was imported: inherited from the template, not imported again.
    expect(forked.loaded_at_import).toEqual(["comfy", "comfy.model_management", "comfy_api.latest", "folder_paths", "nodes", "server"]);
    expect(forked.nodes).toBe(join(shimsDir, "nodes", "__init__.py"));
    expect(forked.model_management).toBe(join(shimsDir, "comfy", "model_management.py"));
    expect(forked.io_has_schema).toBe(true);
    expect(forked.max_resolution).toBe(16384);
    const status = await templateStatus(await getRuntime(), host.core.templates!.running().find((t) => t.key === "host")!.socket);
    expect(status.preloaded).toEqual(expect.arrayContaining(["comfy", "comfy_api", "folder_paths", "nodes", "server"]));
    // They are pyisolate's own, not modules an environment must match to fork from the template.
    expect(Object.keys(status.modules as object)).not.toContain("nodes");

    // A shared-modules directory with a module named nodes comes before the shims on sys.path:
    // the child drops what its template preloaded and imports as a plain process would.
    const shared = join(root, "shared_modules");
    mkdirSync(shared, { recursive: true });
    writeFileSync(join(shared, "nodes.py"), "MARKER = 'shared-modules nodes'\n");
    for (const spawn of ["fork", "spawn"] as const) {
      const other = await createHost({
        customNodes: join(root, "custom_nodes"), cacheDir: join(root, "cache"), baseDir: root, python: hostPython,
        packs: ["ShimUser"], sharedModules: [shared], spawn, logger: new Logger(() => {}),
      });
      try {
        const got = await shims(other);
        expect(got.nodes, spawn).toBe(join(shared, "nodes.py"));
        expect(got.nodes_marker, spawn).toBe("shared-modules nodes");
        expect(got.loaded_at_import.includes("nodes"), spawn).toBe(false);
        // The rest still comes from the shims.
        expect(got.model_management, spawn).toBe(join(shimsDir, "comfy", "model_management.py"));
      } finally {
        await other.close();
      }
    }
  });

  it("never initialises CUDA in a template, and runs no Python thread there", async () => {
    const rt = await getRuntime();
    for (const t of host.core.templates!.running()) {
      const s = await templateStatus(rt, t.socket);
      expect(s.cuda_initialized).toBe(false);
      expect(s.python_threads).toBe(1);
      expect(Object.keys(s.modules as object)).toContain("torch");
    }
    expect((await probe("HostA")).cuda_initialized).toBe(false);
  });

  it("spawns plainly where the pack's env sets what torch reads at import, and says why", async () => {
    await probe("ThreadsEnv");
    expect(lines).toContain("][ ThreadsEnv - plain spawn: its env sets OMP_NUM_THREADS, which is read when torch is imported");
    expect(lines.some((l) => l.startsWith("][ ThreadsEnv - forked"))).toBe(false);
  });

  it("reaps a child that is killed, and reports how it ended", async () => {
    const proc = host.core.processFor("HostB");
    const { pid } = await probe("HostB");
    const exited = new Promise<void>((r) => {
      const t = setInterval(() => {
        if (proc.state === "exited") {
          clearInterval(t);
          r();
        }
      }, 10);
    });
    proc.kill("SIGKILL");
    await exited;
    expect(proc.lastExit?.signal).toBe("SIGKILL");
    await until("the killed child to be reaped", () => procState(pid) === null);
    // The next call starts it again, forked again.
    const again = await probe("HostB");
    expect(again.pid).not.toBe(pid);
  });

  it("reaps what a child leaves behind (the template is its subreaper)", async () => {
    const r = await host.run({ "1": { class_type: "HostAOrphan", inputs: {} } });
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    const orphan = Number((r.outputs["1"] as { text: string[] }).text[0]);
    const tmpl = host.core.templates!.running().find((t) => t.key === "host")!;
    // Its parent exited at once: the orphan now belongs to the template, which reaps it when it ends.
    const ppid = () => {
      try {
        return readFileSync(`/proc/${orphan}/stat`, "utf8").split(") ")[1]!.split(" ")[1];
      } catch {
        return "gone";
      }
    };
    expect(ppid()).toBe(String(tmpl.info.pid));
    await until("the orphan to be reaped", () => procState(orphan) === null);
  });

  it("replaces a crashed template; its children go with it and start again from the new one", async () => {
    const before = host.core.templates!.running().find((t) => t.key === "host")!;
    const proc = host.core.processFor("HostA");
    const { pid } = await probe("HostA");
    process.kill(before.info.pid, "SIGKILL");
    await until("the forked child to exit with its template", () => proc.state === "exited");
    await until("the child to be gone", () => procState(pid) === null || procState(pid) === "Z");
    // The template's exit and its child's are two events; either can come first.
    await until("the template's exit to be logged", () => lines.some((l) => l.startsWith("][ template host exited (SIGKILL)")));
    const again = await probe("HostA");
    expect(again.pid).not.toBe(pid);
    const after = host.core.templates!.running().find((t) => t.key === "host")!;
    expect(after.info.pid).not.toBe(before.info.pid);
    expect(lines.filter((l) => l.startsWith("][ HostA - forked from template host")).length).toBeGreaterThanOrEqual(2);
  });

  it("leaves no template or child behind after close", async () => {
    const pids = [...host.core.templates!.running().map((t) => t.info.pid), ...host.core.live().map((p) => p.pid!)];
    expect(pids.length).toBeGreaterThan(1);
    await host.close();
    for (const pid of pids) await until(`pid ${pid} to be gone`, () => procState(pid) === null || procState(pid) === "Z");
  });
});
