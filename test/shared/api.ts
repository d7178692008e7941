/**
 * The test API a shared suite is written against: the two functions every runner offers
 * (vitest, `deno test`, `bun test`). A shared suite imports nothing runner-specific; it
 * asserts with `node:assert/strict`, which all three runtimes provide, and each runtime's
 * caller passes its runner's `describe` and `it`.
 * @module
 */

/** A test body; a returned promise is awaited. */
export type TestBody = () => Promise<void> | void;

/** What a shared suite needs from the test runner. */
export interface TestApi {
  /** Groups the tests `body` registers (synchronously) under `name`. */
  describe(name: string, body: () => void): void;
  /** Registers a test. `timeoutMs` is a ceiling where the runner supports one. */
  it(name: string, body: TestBody, timeoutMs?: number): void;
}

/** The runtime a caller runs its suites under. */
export type RuntimeName = "node" | "deno" | "bun";
