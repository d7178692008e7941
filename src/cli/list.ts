/**
 * `pyisolate list`: the node packs, isolated or shared, with their manifest, environment and
 * metadata-cache state.
 * @module
 */
import { basename, resolve } from "node:path";
import { EnvManager } from "../env/env_manager.ts";
import { discoverPacks } from "../manifest/manifest.ts";
import { comfyuiArgsFromEnv, comfyuiFromEnv, CORE_PACK_NAME, corePack, resolveComfyUI, type ComfyCheckout } from "../env/comfyui.ts";
import { unmetRequirements } from "../manifest/requirements.ts";
import { MetadataCache } from "../nodes/metadata_cache.ts";
import { metadataKey } from "../nodes/pack_keys.ts";
import { cachedImportFailure, importFailureMessage, type ImportFailure } from "../nodes/registry.ts";
import { displayPath } from "../util/fs.ts";
import type { Command, CommandContext } from "./command.ts";
import { formatTable } from "./view.ts";

/** The environment manager, or why the environments' state cannot be known. */
async function tryEnvManager(ctx: CommandContext, checkout: ComfyCheckout | null): Promise<{ envs: EnvManager | null; problem: string | null }> {
  try {
    const envs = await EnvManager.create({ cacheDir: ctx.opts.cacheDir, customNodes: ctx.opts.customNodes, ...(ctx.opts.python ? { python: ctx.opts.python } : {}), ...(checkout ? { comfyui: checkout.dir } : {}) });
    return { envs, problem: null };
  } catch (err) {
    return { envs: null, problem: (err as Error).message };
  }
}

/** `pyisolate list`. */
export const listCommand: Command = {
  usage: "list [--json]",
  summary: "list node packs: isolated or shared, manifest, environment and cache state",
  description:
    "Environment state: ready (built for the current manifest and host), stale (built for an older one),\n" +
    "missing, or shared (runs on the host environment). Cache state: hit, stale, none, or failed (the\n" +
    "pack's import failed: the error, file and line are printed below; it is not retried until the\n" +
    "pack's files or environment change). With --comfyui, ComfyUI's built-in nodes are the pack ComfyUI.",
  flags: [{ name: "--json", help: "print JSON instead of a table" }],
  async run(ctx) {
    const found = discoverPacks(ctx.opts.customNodes);
    const errors = found.errors;
    const comfyDir = ctx.opts.comfyui ?? comfyuiFromEnv();
    const checkout = comfyDir !== undefined ? resolveComfyUI(comfyDir, ctx.opts.comfyuiArgs ?? comfyuiArgsFromEnv()) : null;
    const packs = checkout ? [corePack(checkout), ...found.packs] : found.packs;
    const { envs, problem } = await tryEnvManager(ctx, checkout);
    const cache = new MetadataCache(ctx.opts.cacheDir);
    const failures: Array<[string, ImportFailure]> = [];
    const rows = packs.map((p) => {
      const env = envs ? envs.state(p) : "unknown";
      let cacheState: string = "unknown";
      let importError: ImportFailure | null = null;
      if (envs) {
        const key = metadataKey(cache, envs, p, checkout);
        cacheState = cache.state(p, key);
        importError = cachedImportFailure(cache.get(p, key));
        if (importError) {
          cacheState = "failed";
          failures.push([p.name, importError]);
        }
      }
      return { pack: p, env, cache: cacheState, importError };
    });
    if (ctx.flags.json) {
      const json = [
        ...rows.map(({ pack: p, env, cache: c, importError }) => ({
          name: p.name,
          path: p.path,
          kind: checkout && p.name === CORE_PACK_NAME && p.path === checkout.dir ? "core" : p.kind,
          manifestFile: p.manifestFile,
          shareTorch: p.manifest?.shareTorch ?? null,
          dependencies: p.manifest?.dependencies ?? [],
          env,
          envDir: envs && p.kind === "isolated" ? envs.envDir(p) : null,
          cache: c,
          ...(importError ? { importError } : {}),
          warnings: p.warnings,
        })),
        ...errors.map((e) => ({ name: e.pack, kind: "invalid", manifestFile: e.file ?? null, error: e.message })),
      ];
      ctx.out(JSON.stringify(json, null, 2));
      return 0;
    }
    const tableRows = [
      ...rows.map(({ pack: p, env, cache: c }) => [p.name, checkout && p.path === checkout.dir && p.name === CORE_PACK_NAME ? "core" : p.kind, p.manifestFile ? basename(p.manifestFile) : "-", env, c]),
      ...errors.map((e) => [e.pack ?? "?", "invalid", e.file ? basename(e.file) : "-", "-", "-"]),
    ].sort((a, b) => ((a[0] ?? "") < (b[0] ?? "") ? -1 : 1));
    if (tableRows.length === 0) {
      ctx.out(`No node packs in ${displayPath(resolve(ctx.opts.customNodes))}.`);
    } else {
      for (const line of formatTable(["PACK", "KIND", "MANIFEST", "ENV", "CACHE"], tableRows)) ctx.out(line);
    }
    if (problem) ctx.err(`warning: environment state unknown: ${problem}`);
    for (const p of packs) for (const w of p.warnings) ctx.err(`warning: ${p.name}: ${w}`);
    for (const p of packs) {
      const missing = envs && p.kind === "shared" && p.layout === "package" ? unmetRequirements(p.path, envs.host.distributions) : [];
      if (missing.length > 0) ctx.err(`warning: ${p.name}: its requirements.txt lists ${missing.join(", ")}, which the host environment lacks; run \`pyisolate init ${displayPath(p.path)}\` to give it a manifest and its own environment.`);
    }
    for (const e of errors) ctx.err(`error: ${e.message}`);
    for (const [name, f] of failures) ctx.err(`error: ${importFailureMessage(name, f, true)}`);
    return 0;
  },
};
