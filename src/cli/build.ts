/**
 * `pyisolate build`: builds the isolated packs' environments, in parallel, with progress.
 * @module
 */
import { resolve } from "node:path";
import { EnvManager, type BuildResult } from "../env/env_manager.ts";
import { PyisolateError } from "../errors.ts";
import { discoverPacks } from "../manifest/manifest.ts";
import { displayPath } from "../util/fs.ts";
import { seconds, usageError, type Command } from "./command.ts";
import { formatTable, ProgressView } from "./view.ts";

/** `pyisolate build`. */
export const buildCommand: Command = {
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
      const envs = await EnvManager.create({ cacheDir: ctx.opts.cacheDir, customNodes: ctx.opts.customNodes, ...(ctx.opts.python ? { python: ctx.opts.python } : {}) });
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
