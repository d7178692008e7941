/**
 * What `pyisolate build` warns about: modules a pack imports that nothing provides — neither
 * its own environment (its manifest's dependencies) nor the host environment behind it, nor
 * the standard library, nor ComfyUI (the shims or the checkout).
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { packPythonFiles } from "../nodes/metadata_cache.ts";
import { COMFY_MODULES, scanImports } from "./init_plan.ts";

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
 * The modules a pack's `.py` files import (absolute imports) that none of `provided`, the
 * standard library, the pack's own files or ComfyUI's modules supply, sorted.
 */
export function unprovidedImports(packDir: string, provided: ReadonlySet<string>, stdlib: readonly string[]): string[] {
  const std = new Set(stdlib);
  const files = packPythonFiles(packDir);
  const own = new Set<string>([basename(packDir).replace(/\.py$/, "")]);
  for (const [rel] of files) for (const part of rel.split("/")) own.add(part.replace(/\.py$/, ""));
  const missing = new Set<string>();
  const root = files.length === 1 && files[0]![0] === basename(packDir) ? null : packDir;
  for (const [rel] of files) {
    let source: string;
    try {
      source = readFileSync(root ? join(root, rel) : packDir, "utf8");
    } catch {
      continue;
    }
    for (const mod of scanImports(source)) {
      if (std.has(mod) || own.has(mod) || COMFY_MODULES.has(mod) || mod.startsWith("_") || provided.has(mod)) continue;
      missing.add(mod);
    }
  }
  return [...missing].sort();
}
