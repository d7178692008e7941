/**
 * The sandbox: a pack's process under bubblewrap (`bwrap`, Debian's `bubblewrap`). Inside it
 * the whole filesystem is read-only except the pack's own folder, the host's output, temp and
 * user folders, the host's segment folder (tensors) and the process's socket folder; `/tmp`
 * is private and empty; there is no network unless the manifest allows it; the process has
 * its own pid namespace, so nothing it starts outlives it.
 *
 * Reads are not restricted (a sandboxed pack can read what the host's user can), and
 * `/dev/shm` segments of this host are shared by design: see the README's "Reliability and
 * security".
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import process from "node:process";
import { PyisolateError } from "../errors.ts";
import { SOCKET_DIR_TOKEN } from "../../workers/broker_core.ts";

/** The host's sandbox policy: `off` never, `auto` the packs that ask for it, `required` every pack. */
export type SandboxMode = "off" | "auto" | "required";

export { SOCKET_DIR_TOKEN };

/** What one sandboxed process may touch. */
export interface SandboxPlan {
  /** Whether it keeps the host's network. */
  network: boolean;
  /** Folders it may write (existing ones are bound; the rest of the filesystem is read-only). */
  writable: string[];
  /** Folders it reads that may lie under the private `/tmp` (environments, inputs, shared modules): bound read-only. @default [] */
  readable?: string[];
}

/** Whether bubblewrap works here. */
export interface SandboxAvailability {
  ok: boolean;
  /** `bwrap`'s version, when it runs. */
  version?: string;
  /** Why not, when it does not. */
  reason?: string;
}

let probed: SandboxAvailability | undefined;

/** Whether bubblewrap is installed and can create its namespaces here (cached). */
export function sandboxAvailability(): SandboxAvailability {
  if (probed) return probed;
  if (process.platform !== "linux") return (probed = { ok: false, reason: `the sandbox needs Linux (this is ${process.platform})` });
  const v = spawnSync("bwrap", ["--version"], { encoding: "utf8" });
  if (v.error || v.status !== 0) {
    return (probed = { ok: false, reason: "bubblewrap (bwrap) is not installed; install it (Debian/Ubuntu: apt-get install bubblewrap)" });
  }
  const version = v.stdout.trim().replace(/^bubblewrap\s*/, "");
  const t = spawnSync("bwrap", [...namespaceArgs(false), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"], { encoding: "utf8" });
  if (t.status !== 0) {
    const why = (t.stderr || t.error?.message || `exit ${t.status}`).trim().split("\n")[0];
    return (probed = { ok: false, version, reason: `bubblewrap ${version} cannot create its namespaces here (${why}); allow unprivileged user namespaces, or run with sandbox: "off"` });
  }
  return (probed = { ok: true, version });
}

function namespaceArgs(network: boolean): string[] {
  const args = ["--die-with-parent", "--unshare-user-try", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"];
  if (!network) args.push("--unshare-net");
  return args;
}

/**
 * The `bwrap` arguments that come before the Python command. `shmDir` is the host's segment
 * folder; the socket folder is bound through {@link SOCKET_DIR_TOKEN}.
 */
export function bwrapArgs(plan: SandboxPlan, shmDir: string, readable: string[] = []): string[] {
  const args = [...namespaceArgs(plan.network), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"];
  // GPUs stay usable: their device nodes are bound into the new /dev.
  for (const dev of gpuDevices()) args.push("--dev-bind", dev, dev);
  // What the private /tmp would hide but the process must read.
  const tmp = (p: string) => p === "/tmp" || p.startsWith("/tmp/");
  for (const p of [...readable, ...(plan.readable ?? [])].filter((p, i, all) => tmp(p) && all.indexOf(p) === i && existsSync(p))) args.push("--ro-bind", p, p);
  const binds = [shmDir, ...plan.writable].filter((p, i, all) => all.indexOf(p) === i && existsSync(p));
  for (const p of binds) args.push("--bind", p, p);
  args.push("--bind", SOCKET_DIR_TOKEN, SOCKET_DIR_TOKEN, "--setenv", "PYISOLATE_SANDBOXED", "1");
  return args;
}

function gpuDevices(): string[] {
  let names: string[];
  try {
    names = readdirSync("/dev");
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith("nvidia") || n === "dri" || n === "kfd").map((n) => join("/dev", n));
}

/** A manifest's sandbox settings, as `manifest.ts` reads them. */
export interface SandboxRequest {
  /** `sandbox`: `true`, `false` or `{network, writable_paths, readonly_paths}`. */
  sandbox?: boolean | Record<string, unknown>;
  /** `can_sandbox: true`: the pack works sandboxed; run it so when the sandbox works here. */
  canSandbox?: boolean;
  /** `sandbox_mode`. */
  sandboxMode?: "required" | "disabled";
}

/** What {@link planSandbox} decided for a pack. */
export interface SandboxDecision {
  plan?: SandboxPlan;
  /** The pack cannot run (it needs a sandbox it cannot have, or refuses one the host requires). */
  error?: PyisolateError;
  /** Worth a line in the log (it could have been sandboxed, but is not). */
  warning?: string;
}

/**
 * Decides whether and how a pack runs sandboxed. A pack that asks for a sandbox (`sandbox:
 * true` or settings, `sandbox_mode: required`) never runs without one: where bubblewrap does
 * not work, or the host says `off`, that is a clear error. `can_sandbox: true` alone runs
 * sandboxed when it can, else unsandboxed with a warning. Under `required` every pack runs
 * sandboxed, and one that says `sandbox_mode: disabled` is refused.
 */
export function planSandbox(
  pack: string,
  packDir: string,
  req: SandboxRequest,
  mode: SandboxMode,
  hostWritable: string[],
  hostReadable: string[] = [],
  available: () => SandboxAvailability = sandboxAvailability,
): SandboxDecision {
  const settings = typeof req.sandbox === "object" && req.sandbox !== null ? req.sandbox : {};
  const requires = req.sandbox === true || typeof req.sandbox === "object" || req.sandboxMode === "required";
  const optOut = req.sandboxMode === "disabled" || (req.sandbox === false && req.sandboxMode !== "required");
  const wants = requires || (req.canSandbox === true && !optOut);
  const why = req.sandboxMode === "required" ? "sandbox_mode: required" : "its manifest's sandbox setting";
  if (mode === "off") {
    if (!requires) return {};
    return { error: new PyisolateError("SANDBOX", `Pack "${pack}" requires a sandbox (${why}), but this host runs with sandbox "off". Run with sandbox "auto" or "required", or remove the setting from the pack's manifest.`, { pack }) };
  }
  if (mode === "auto" && !wants) return {};
  if (mode === "required" && optOut) {
    return { error: new PyisolateError("SANDBOX", `Pack "${pack}" opts out of the sandbox (${req.sandboxMode === "disabled" ? "sandbox_mode: disabled" : "sandbox: false"}), but this host requires one for every pack. Remove that setting, or run the host with sandbox "auto".`, { pack }) };
  }
  const a = available();
  if (!a.ok) {
    if (mode === "auto" && !requires) return { warning: `can be sandboxed, but runs without a sandbox: ${a.reason}` };
    const because = mode === "required" ? 'this host requires a sandbox for every pack (sandbox: "required")' : `it requires one (${why})`;
    return { error: new PyisolateError("SANDBOX", `Pack "${pack}" cannot run: ${because}, and ${a.reason}.`, { pack }) };
  }
  const own = (list: unknown) => (Array.isArray(list) ? list.filter((x): x is string => typeof x === "string").map((p) => (isAbsolute(p) ? p : resolve(packDir, p))) : []);
  return { plan: { network: settings.network === true, writable: [packDir, ...hostWritable, ...own(settings.writable_paths)], readable: [...hostReadable, ...own(settings.readonly_paths)] } };
}
