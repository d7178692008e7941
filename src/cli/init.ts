/**
 * `pyisolate init`: writes a starter `pyisolate.yaml` for a pack (see `init_plan.ts`).
 * @module
 */
import { existsSync, statSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { stringify as stringifyYaml } from "yaml";
import { resolveHostPython } from "../env/host_python.ts";
import { PyisolateError } from "../errors.ts";
import { displayPath } from "../util/fs.ts";
import { usageError, type Command } from "./command.ts";
import { FALLBACK_STDLIB, planManifest } from "./init_plan.ts";

/** `pyisolate init`. */
export const initCommand: Command = {
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
