/**
 * What `pyisolate build` warns about: modules a pack imports that nothing provides — neither
 * its own environment (its manifest's dependencies) nor the host environment behind it, nor
 * the standard library, nor ComfyUI (the shims or the checkout).
 * @module
 */
import { readdirSync } from "node:fs";
import { COMFY_MODULES, FALLBACK_STDLIB, type PackScan } from "./init_plan.ts";

/** The top-level module names a site-packages directory provides (packages, modules, extensions). */
export function topLevelModules(dir: string): Set<string> {
  const out = new Set<string>();
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const ent of entries) {
    const name = ent.name;
    if (ent.isDirectory() || ent.isSymbolicLink()) {
      if (!/\.(dist-info|egg-info|data)$/.test(name) && name !== "__pycache__" && /^[A-Za-z_][\w]*$/.test(name)) out.add(name);
    } else if (name.endsWith(".py")) {
      out.add(name.slice(0, -3));
    } else if (/\.(so|pyd)$/.test(name)) {
      out.add(name.split(".")[0]!);
    }
  }
  return out;
}

/**
 * The modules a pack imports (absolute imports, as {@link scanPack} read them with `ast`) that
 * none of `provided`, the standard library, the pack's own files or ComfyUI's modules supply,
 * sorted.
 */
export function unprovidedImports(scan: PackScan, provided: ReadonlySet<string>): string[] {
  const std = new Set(scan.stdlib.length > 0 ? scan.stdlib : FALLBACK_STDLIB);
  const own = new Set(scan.own);
  return Object.keys(scan.imports)
    .filter((mod) => !(std.has(mod) || own.has(mod) || COMFY_MODULES.has(mod) || mod.startsWith("_") || provided.has(mod)))
    .sort();
}
