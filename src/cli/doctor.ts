/**
 * `pyisolate doctor`: checks what pyisolate needs — the host Python and its torch, uv,
 * `/dev/shm`, the JavaScript runtime, the custom nodes and cache folders — and says what to do.
 * @module
 */
import { RayCluster, rayOptionsFrom } from "../process/ray.ts";
import { mkdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { comfyuiFromEnv } from "../env/comfyui.ts";
import { resolveHostPython, resolveUv, setupCommandLine, uvVersion, type HostPython } from "../env/host_python.ts";
import { discoverPacks } from "../manifest/manifest.ts";
import { detectRuntime } from "../runtime/detect.ts";
import { sandboxAvailability } from "../process/sandbox.ts";
import { displayPath } from "../util/fs.ts";
import { plural } from "../util/text.ts";
import type { Command } from "./command.ts";

/** `pyisolate doctor`. */
export const doctorCommand: Command = {
  usage: "doctor",
  summary: "check the host Python, torch, uv, /dev/shm, the sandbox, the JavaScript runtime (and the Ray cluster, with --ray)",
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
      comfyui: "the ComfyUI checkout's environment (or the ComfyUI install around the custom nodes)",
      venv: "./.venv",
      setup: "the environment `pyisolate setup` made",
      path: "PATH",
    };
    const setup = setupCommandLine();
    let host: HostPython | null = null;
    try {
      const comfyui = ctx.opts.comfyui ?? comfyuiFromEnv();
      host = await resolveHostPython({
        cacheDir: ctx.opts.cacheDir,
        customNodes: ctx.opts.customNodes,
        ...(ctx.opts.python ? { python: ctx.opts.python } : {}),
        ...(comfyui ? { comfyui } : {}),
      });
      ok("host Python", `${host.version} at ${host.python} (from ${sourceText[host.source]})`);
      const [maj, min] = host.version.split(".").map(Number);
      if ((maj ?? 0) < 3 || ((maj ?? 0) === 3 && (min ?? 0) < 9)) fail("host Python version", host.version, `use Python 3.9 or newer: \`${setup}\` makes an environment with a supported one`);
    } catch (err) {
      const message = (err as Error).message.replace(/ Run `[^`]*` to make one.*$/, "");
      fail("host Python", message, `run \`${setup}\` (a user-level environment with the pinned torch, numpy and uv), or pass --python / set PYISOLATE_PYTHON to ComfyUI's Python`);
    }
    if (host) {
      if (host.torchVersion) ok("torch", `${host.torchVersion} in the host environment (share_torch packs reuse it)`);
      else {
        const fix = host.source === "setup" ? `run \`${setup}\` again: it reinstalls what is missing` : `run \`${setup}\` to make an environment with the pinned torch build, or pass --python / set PYISOLATE_PYTHON to ComfyUI's Python`;
        fail("torch", `not installed in ${host.python}'s environment`, fix);
      }
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
      fail("uv", (err as Error).message.split(". Install")[0] ?? "not found", host?.source === "setup" || !host ? `run \`${setup}\`, which installs uv` : `${host.python} -m pip install uv, or set PYISOLATE_UV`);
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
    const sandbox = sandboxAvailability();
    if (sandbox.ok) ok("sandbox", `bubblewrap ${sandbox.version} works (packs that ask for a sandbox run in one)`);
    else warn("sandbox", `not available: ${sandbox.reason}`, "packs whose manifest requires a sandbox will not load; install bubblewrap (apt-get install bubblewrap) where you run untrusted packs");
    const rt = detectRuntime();
    const versions = process.versions as Record<string, string | undefined>;
    const rtVersion = rt === "node" ? versions.node : versions[rt];
    if (rt === "node" && Number((versions.node ?? "0").split(".")[0]) < 20) fail("JavaScript runtime", `node ${versions.node}`, "use Node.js 20 or newer");
    else ok("JavaScript runtime", `${rt} ${rtVersion ?? "(unknown version)"}`);
    const rayAddress = ctx.opts.ray ?? process.env.PYISOLATE_RAY;
    if (rayAddress) {
      const rayOpts = rayOptionsFrom({ address: rayAddress, ...(ctx.opts.rayPython ? { python: ctx.opts.rayPython } : {}) }, host?.python ?? "python3")!;
      try {
        const cluster = await RayCluster.connect(rayOpts);
        try {
          const info = await cluster.info();
          const alive = info.nodes.filter((n) => n.alive);
          ok("Ray cluster", `Ray ${info.version} at ${info.address}: ${plural(alive.length, "node")} alive${info.nodes.length > alive.length ? `, ${info.nodes.length - alive.length} dead` : ""}`);
          for (const n of alive) {
            const res = Object.entries(n.resources)
              .filter(([k]) => !k.startsWith("object_store_memory") && k !== "memory")
              .map(([k, v]) => `${k}=${v}`)
              .join(", ");
            ctx.out(`    node ${n.id.slice(0, 12)} (${n.ip}): ${res}`);
          }
        } finally {
          await cluster.close();
        }
      } catch (err) {
        fail("Ray cluster", (err as Error).message.split("\n")[0]!, `install ray in the driver's Python (--ray-python PATH; pip install ray) and check that ${rayAddress} is the head's host:port (or auto)`);
      }
    }
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
