/**
 * {@link TestApi} on `Deno.test`: `describe` only prefixes the names of the tests it groups
 * ("group > test"), since `Deno.test` has no groups of its own.
 * @module
 */
import type { TestApi } from "../shared/api.ts";

interface DenoTest {
  test(def: { name: string; fn: () => Promise<void> | void; sanitizeOps?: boolean; sanitizeResources?: boolean }): void;
}

/** Options of {@link denoTestApi}. */
export interface DenoTestApiOptions {
  /**
   * Deno's op and resource sanitizers, which fail a test that leaves timers, sockets or
   * workers behind. A suite whose tests share running processes (the e2e suite: one host
   * across its tests) turns them off. @default true
   */
  sanitize?: boolean;
}

/** A {@link TestApi} that registers each test with `Deno.test`. */
export function denoTestApi(opts: DenoTestApiOptions = {}): TestApi {
  const Deno = (globalThis as unknown as { Deno: DenoTest }).Deno;
  const sanitize = opts.sanitize ?? true;
  const prefix: string[] = [];
  return {
    describe(name, body) {
      prefix.push(name);
      try {
        body();
      } finally {
        prefix.pop();
      }
    },
    it(name, body) {
      Deno.test({ name: [...prefix, name].join(" > "), fn: body, ...(sanitize ? {} : { sanitizeOps: false, sanitizeResources: false }) });
    },
  };
}
