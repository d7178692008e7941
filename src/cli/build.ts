/**
 * `pyisolate build`: builds the isolated packs' environments, in parallel, with progress, then
 * registers every pack's nodes (filling the metadata cache) so that import failures show now.
 * @module
 */
import { basename, resolve } from "node:path";
import { comfyuiFromEnv } from "../env/comfyui.ts";
import { EnvManager, type BuildResult } from "../env/env_manager.ts";
import { PyisolateError } from "../errors.ts";
import { createHost, type PackStatus } from "../host.ts";
import { Logger } from "../log.ts";
import { discoverPacks, type PackInfo } from "../manifest/manifest.ts";
import { displayPath } from "../util/fs.ts";
import { hostOptions, seconds, usageError, type Command, type CommandContext } from "./command.ts";
import { topLevelModules, unprovidedImports } from "./import_check.ts";
import { scanPack } from "./init_plan.ts";
import { formatTable, ProgressView } from "./view.ts";

/** `pyisolate build`. */
export const buildCommand: Command = {
  usage: "build [pack...] [--concurrency N]",
  summary: "build the environments of isolated packs (all, or the named ones)",
  description:
    "Environments are reused when nothing changed (no uv process runs: reported as cached).\n" +
    "A pack whose manifest is invalid, or whose dependencies cannot be installed, fails with\n" +
    "its error while the others build. Then every pack's nodes are registered as a run would (from\n" +
    "the metadata cache when nothing changed): a pack that fails to import is reported with the\n" +
    "exception, file and line, and remembered until its files change. Imports that neither a pack's\n" +
    "dependencies nor the host environment provide are warned about. Exit code 1 when any pack failed.",
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
    const comfyui = ctx.opts.comfyui ?? comfyuiFromEnv();
    const envs = selected.length > 0
      ? await EnvManager.create({ cacheDir: ctx.opts.cacheDir, customNodes: ctx.opts.customNodes, ...(ctx.opts.python ? { python: ctx.opts.python } : {}), ...(comfyui ? { comfyui } : {}) })
      : null;
    if (envs && isolated.length > 0) {
      void envs.uv; // fail early, with one line, when uv is missing
      const view = new ProgressView(ctx.io, isolated.map((p) => p.name));
      try {
        results = await envs.build(isolated, { ...(concurrency ? { concurrency } : {}), onProgress: (p) => view.update(p) });
      } finally {
        view.finish();
      }
    }
    const byName = new Map(results.map((r) => [r.pack, r]));
    const usable = selected.filter((p) => byName.get(p.name)?.status !== "failed");
    if (envs) await warnUnprovided(ctx, envs, usable);
    // Register each usable pack's nodes as a run would, so that a pack that fails to import is
    // reported now (and remembered in the metadata cache with its file, line and exception).
    const loads = new Map<string, PackStatus>();
    if (usable.length > 0) {
      const host = await createHost({
        ...hostOptions(ctx.opts),
        packs: usable.map((p) => p.name),
        logger: new Logger((level, line) => {
          if (level === "info" || level === "debug") ctx.err(line);
        }),
      });
      await host.close();
      for (const s of host.packs) loads.set(s.name, s);
    }
    const rows: string[][] = [];
    const detail = (name: string, base: string): string => {
      const l = loads.get(name);
      if (!l) return base;
      if (l.source === "failed") return l.importError ? `import failed: ${l.importError.type}${l.importError.file ? ` (${basename(l.importError.file)}${l.importError.line !== null ? `:${l.importError.line}` : ""})` : ""}` : "failed to load, see the error below";
      return `${l.nodes} ${l.nodes === 1 ? "node" : "nodes"}${base ? `, ${base}` : ""}`;
    };
    const importFailed = [...loads.values()].filter((l) => l.source === "failed");
    for (const p of selected) {
      const r = byName.get(p.name);
      const failedLoad = loads.get(p.name)?.source === "failed";
      if (!r) rows.push([p.name, failedLoad ? "failed" : "shared", "-", detail(p.name, "runs on the host environment")]);
      else rows.push([p.name, failedLoad ? "failed" : r.status, seconds(r.durationMs), r.status === "failed" ? "see the error below" : detail(p.name, r.envDir ? displayPath(r.envDir) : "")]);
    }
    const core = [...loads.values()].find((l) => l.kind === "core");
    if (core) rows.push([core.name, core.source === "failed" ? "failed" : "core", "-", detail(core.name, "ComfyUI's built-in nodes")]);
    for (const e of selectedErrors) rows.push([e.pack ?? "?", "failed", "-", "invalid manifest, see the error below"]);
    rows.sort((a, b) => ((a[0] ?? "") < (b[0] ?? "") ? -1 : 1));
    ctx.out();
    if (rows.length === 0) ctx.out(`No node packs in ${displayPath(resolve(ctx.opts.customNodes))}.`);
    else for (const line of formatTable(["PACK", "RESULT", "TIME", "DETAIL"], rows)) ctx.out(line);
    const failed = results.filter((r) => r.status === "failed");
    const count = (s: BuildResult["status"]) => results.filter((r) => r.status === s).length;
    ctx.out();
    ctx.out(
      `${count("built")} built, ${count("cached")} cached, ${failed.length + selectedErrors.length} failed, ${selected.length - isolated.length} shared` +
        (importFailed.length > 0 ? `; ${importFailed.length} failed to import` : ""),
    );
    for (const e of selectedErrors) ctx.err(`error: ${e.message}`);
    for (const r of failed) ctx.err(`error: ${r.error?.message ?? `pack ${r.pack} failed`}`);
    for (const l of importFailed) ctx.err(`error: ${l.error?.message ?? `pack ${l.name} failed to load`}`);
    return failed.length + selectedErrors.length + importFailed.length > 0 ? 1 : 0;
  },
};

/** Warns about modules a pack imports that neither its environment nor the host's provide. */
async function warnUnprovided(ctx: CommandContext, envs: EnvManager, packs: readonly PackInfo[]): Promise<void> {
  const host = new Set<string>();
  for (const dir of envs.host.sitePackages) for (const m of topLevelModules(dir)) host.add(m);
  for (const p of packs) {
    let scan;
    try {
      scan = await scanPack(envs.host.python, p.path);
    } catch (e) {
      ctx.err(`warning: ${p.name}: its imports could not be read: ${(e as Error).message}`);
      continue;
    }
    const provided = p.kind === "isolated" ? new Set([...host, ...topLevelModules(envs.sitePackagesOf(envs.envDir(p)))]) : host;
    const missing = unprovidedImports(scan, provided);
    if (missing.length === 0) continue;
    const what = p.kind === "isolated" ? `neither its manifest's dependencies nor the host environment (${envs.host.python}) provide` : `the host environment (${envs.host.python}) does not provide`;
    ctx.err(
      `warning: ${p.name}: it imports ${missing.join(", ")}, which ${what}; ` +
        (p.kind === "isolated" ? "add the packages to dependencies in its manifest." : "install them into the host environment, or give the pack a manifest (pyisolate init)."),
    );
  }
}
