/**
 * `pyisolate init`: writes a starter `pyisolate.yaml` for a pack (see `init_plan.ts`), with
 * every dependency name checked against the package index first (`package_index.ts`).
 * @module
 */
import { existsSync, statSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { stringify as stringifyYaml } from "yaml";
import { resolveHostPython } from "../env/host_python.ts";
import { PyisolateError } from "../errors.ts";
import { requirementName } from "../manifest/requirements.ts";
import { displayPath, which } from "../util/fs.ts";
import { plural } from "../util/text.ts";
import { usageError, type Command } from "./command.ts";
import { planManifest, scanPack } from "./init_plan.ts";
import { checkIndex, defaultIndexUrl } from "./package_index.ts";

/** The Python that reads the pack's imports: the host Python, else python3 on PATH. */
async function scanningPython(ctx: Parameters<Command["run"]>[0]): Promise<{ python: string; note: string | null }> {
  try {
    const host = await resolveHostPython({ cacheDir: ctx.opts.cacheDir, customNodes: ctx.opts.customNodes, ...(ctx.opts.python ? { python: ctx.opts.python } : {}) });
    return { python: host.python, note: null };
  } catch (err) {
    if (ctx.opts.python || !(err instanceof PyisolateError) || err.code !== "PYTHON_NOT_FOUND") throw err;
    const any = which("python3") ?? which("python");
    if (!any) throw err;
    return { python: any, note: `no host Python with torch; reading imports with ${any}, whose installed packages may differ from the host environment's` };
  }
}

/** `pyisolate init`. */
export const initCommand: Command = {
  usage: "init <dir> [--force] [--index-url URL] [--no-index-check]",
  summary: "write a starter pyisolate.yaml for a pack from its requirements.txt and imports",
  description:
    "<dir> is the pack's folder (or a pack name under --custom-nodes). The starter manifest is\n" +
    "isolated with share_torch; review its dependency list before building. Imports are read\n" +
    "with the host Python's ast, and each name is checked in the package index before it is\n" +
    "written: a name the index does not have is left out, with a warning.",
  flags: [
    { name: "--force", short: "-f", help: "overwrite an existing pyisolate.yaml" },
    { name: "--index-url", value: "URL", help: "the package index (simple API) to check names in (default $UV_INDEX_URL, $PIP_INDEX_URL, else https://pypi.org/simple/)" },
    { name: "--no-index-check", help: "write the names unchecked (offline)" },
  ],
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
    const { python, note } = await scanningPython(ctx);
    if (note) ctx.err(`note: ${note}.`);
    const scan = await scanPack(python, dir);
    for (const e of scan.errors) ctx.err(`warning: ${e.file} does not parse (${e.message}); its imports are not read.`);
    const plan = planManifest(dir, scan);

    // Each name must exist in the package index before it is written.
    let dependencies = plan.dependencies;
    const left: string[] = [];
    if (!ctx.flags["no-index-check"] && dependencies.length > 0) {
      const index = typeof ctx.flags["index-url"] === "string" ? ctx.flags["index-url"] : defaultIndexUrl();
      const named = dependencies.map((d) => [d, requirementName(d)] as const);
      // A requirement with a URL ("name @ https://…") does not come from the index.
      const check = await checkIndex(named.filter(([d, n]) => n !== null && !d.includes("@")).map(([, n]) => n!), index);
      dependencies = named.filter(([d, n]) => n === null || d.includes("@") || check.found.get(n) !== false).map(([d]) => d);
      for (const [, n] of named) {
        if (n === null || check.found.get(n) !== false) continue;
        left.push(n);
        ctx.err(`warning: left out "${n}" (from ${plan.origin[n] ?? "the pack"}): the package index ${check.index} has no such project. Add the distribution that provides it by hand.`);
      }
      const unknown = named.filter(([, n]) => n !== null && check.found.get(n) === null).map(([, n]) => n!);
      if (unknown.length > 0) {
        ctx.err(`warning: could not ask the package index ${check.index} (${check.problem ?? "no answer"}); ${plural(unknown.length, "name")} written unchecked: ${unknown.join(", ")}. Pass --index-url, or --no-index-check when offline.`);
      }
    }
    const header =
      `# pyisolate manifest for ${basename(dir)} (written by \`pyisolate init\`; review the dependencies).\n` +
      "# isolated: run in its own process and environment; share_torch: reuse the host's torch.\n" +
      (plan.fromHost.length > 0 ? `# From the host environment (share_torch): ${plan.fromHost.join(", ")}.\n` : "") +
      (left.length > 0 ? `# Not in the package index, left out: ${left.join(", ")}.\n` : "");
    const body = stringifyYaml({ isolated: true, share_torch: true, dependencies });
    writeFileSync(target, header + body);
    for (const line of plan.skipped) ctx.err(`warning: left out "${line}": it names no package; add it to dependencies as "name @ ${line}" if the pack needs it.`);
    if (existsSync(join(dir, "pyproject.toml"))) {
      ctx.err(`note: ${displayPath(target)} takes precedence over pyproject.toml's [tool.comfy.isolation].`);
    }
    ctx.out(`Wrote ${displayPath(target)}: isolated, share_torch, ${dependencies.length} ${dependencies.length === 1 ? "dependency" : "dependencies"}${dependencies.length ? ` (${dependencies.join(", ")})` : ""}.`);
    return 0;
  },
};
