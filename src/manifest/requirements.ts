/**
 * Requirement strings (PEP 508) as pyisolate reads them: the canonical distribution name, a
 * canonical spelling for fingerprints, and the torch family that `share_torch` packs take
 * from the host environment instead of installing.
 * @module
 */

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
