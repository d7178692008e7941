/**
 * The keys a pack's metadata is cached under, shared by the host and the CLI commands that
 * show cache state (`list`, `nodes`): the key itself, and the environment stamp a cached
 * import failure is retried by.
 * @module
 */
import { statSync } from "node:fs";
import { checkoutTag, CORE_PACK_NAME, coreCacheKey, type ComfyCheckout } from "../env/comfyui.ts";
import type { EnvManager } from "../env/env_manager.ts";
import type { PackInfo } from "../manifest/manifest.ts";
import type { MetadataCache } from "./metadata_cache.ts";

/**
 * The metadata-cache key of a pack: its files and environment (`cache.key`), plus — in core
 * mode — the checkout, which decides what a pack can import. ComfyUI's built-in nodes are
 * keyed by the checkout's node sources ({@link coreCacheKey}).
 */
export function metadataKey(cache: MetadataCache, envs: EnvManager, pack: PackInfo, checkout: ComfyCheckout | null): string {
  if (checkout && pack.name === CORE_PACK_NAME && pack.path === checkout.dir) return coreCacheKey(checkout, envs.fingerprint(pack));
  const fp = envs.fingerprint(pack);
  return cache.key(pack, checkout ? `${fp}\0${checkoutTag(checkout)}` : fp);
}

/** The mtimes of the site-packages a pack imports from: installing into them retries a failed import. */
export function envStateStamp(envs: EnvManager, pack: PackInfo): string {
  const dirs = [...envs.host.sitePackages];
  if (pack.kind === "isolated") dirs.unshift(envs.sitePackagesOf(envs.envDir(pack)));
  return dirs
    .map((d) => {
      try {
        return `${d}:${Math.floor(statSync(d).mtimeMs)}`;
      } catch {
        return `${d}:-`;
      }
    })
    .join("\n");
}
