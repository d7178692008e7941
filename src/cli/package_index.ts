/**
 * Whether names exist in a Python package index, through its simple API (PEP 503/691:
 * `<index>/<name>/` answers 200 for a project, 404 for none) — what `pyisolate init` checks
 * before it writes a dependency. The index is uv's and pip's: `UV_INDEX_URL`, `PIP_INDEX_URL`,
 * else PyPI.
 * @module
 */
import process from "node:process";
import { canonicalName } from "../manifest/requirements.ts";

/** PyPI's simple index. */
export const PYPI_SIMPLE = "https://pypi.org/simple/";

/** The index to check names against: `UV_INDEX_URL`, `PIP_INDEX_URL`, else PyPI. */
export function defaultIndexUrl(env: Record<string, string | undefined> = process.env): string {
  return env.UV_INDEX_URL || env.PIP_INDEX_URL || PYPI_SIMPLE;
}

/** What the index said about each name: whether it has the project (null: could not tell). */
export interface IndexCheck {
  index: string;
  found: Map<string, boolean | null>;
  /** Why the index could not be asked (the first failure), when it could not. */
  problem: string | null;
}

/**
 * Asks the index about each name (a few at a time, each with a timeout).
 * @param names distribution names (any spelling; asked in canonical form)
 */
export async function checkIndex(names: readonly string[], index: string, opts: { timeoutMs?: number; concurrency?: number } = {}): Promise<IndexCheck> {
  const base = index.endsWith("/") ? index : `${index}/`;
  const found = new Map<string, boolean | null>();
  let problem: string | null = null;
  const queue = [...new Set(names)];
  const worker = async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      try {
        const res = await fetch(`${base}${encodeURIComponent(canonicalName(name))}/`, {
          method: "GET",
          headers: { accept: "application/vnd.pypi.simple.v1+json, text/html;q=0.1" },
          signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
        });
        await res.body?.cancel();
        if (res.ok) found.set(name, true);
        else if (res.status === 404) found.set(name, false);
        else {
          found.set(name, null);
          problem ??= `HTTP ${res.status} for ${name}`;
        }
      } catch (err) {
        found.set(name, null);
        const e = err as Error & { cause?: { code?: string; message?: string } };
        problem ??= e.cause?.code ?? e.cause?.message ?? e.message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 6, queue.length) }, worker));
  return { index: base, found, problem };
}
