/**
 * Requirement strings (PEP 508) as pyisolate reads them: the canonical distribution name, a
 * canonical spelling for fingerprints, and the torch family that `share_torch` packs take
 * from the host environment instead of installing.
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Torch-family distributions (canonical names) a share_torch pack takes from the host
 * instead of installing. Its source is also what the host Python probe matches installed
 * distributions against, so both sides agree.
 */
export const HOST_TORCH: RegExp = /^(torch|torchvision|torchaudio|triton|pytorch-triton(-.*)?|nvidia-.*)$/;

/** The canonical (PEP 503) form of a distribution name: lower case, runs of `-_.` as one `-`. */
export function canonicalName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/** The canonical (PEP 503) distribution name a requirement names, or null for paths and URLs. */
export function requirementName(req: string): string | null {
  const m = /^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:$|[\[<>=!~;@ (])/.exec(req);
  return m?.[1] ? canonicalName(m[1]) : null;
}

/** Whether a requirement names a torch-family distribution that share_torch takes from the host. */
export function isHostTorchRequirement(req: string): boolean {
  const name = requirementName(req);
  return name !== null && HOST_TORCH.test(name);
}

/** A requirement in a canonical spelling: canonical name, no spaces in the version part, markers with single spaces. */
export function normalizeRequirement(req: string): string {
  const trimmed = req.trim();
  const m = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?/.exec(trimmed);
  if (!m) return trimmed.replace(/\s+/g, " ");
  const rest = trimmed.slice(m[0].length);
  const semi = rest.indexOf(";");
  const spec = (semi < 0 ? rest : rest.slice(0, semi)).replace(/\s+/g, "");
  const marker = semi < 0 ? "" : `;${rest.slice(semi + 1).trim().replace(/\s+/g, " ")}`;
  return `${canonicalName(m[0])}${spec}${marker}`;
}

/** Requirements listed in a requirements.txt (options, includes and comments skipped). */
export function parseRequirementsTxt(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!line || line.startsWith("-")) continue;
    out.push(line);
  }
  return out;
}

/**
 * The distributions a pack's `requirements.txt` names that an environment lacks (by name;
 * requirements with markers, URLs and the torch family are left out): what a pack without a
 * manifest, which runs on the host environment, would miss.
 * @param distributions the environment's installed distributions, canonical name → version
 */
export function unmetRequirements(packDir: string, distributions: Readonly<Record<string, string>>): string[] {
  let text: string;
  try {
    text = readFileSync(join(packDir, "requirements.txt"), "utf8");
  } catch {
    return [];
  }
  const missing = new Set<string>();
  for (const req of parseRequirementsTxt(text)) {
    const name = requirementName(req);
    if (name === null || req.includes(";") || req.includes("@") || HOST_TORCH.test(name)) continue;
    if (!Object.hasOwn(distributions, name)) missing.add(name);
  }
  return [...missing];
}
