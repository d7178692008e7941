/**
 * The shared runtime suites under Node (vitest). Deno and Bun run the same suites through
 * `test/runtimes/deno_contract.ts` and `test/runtimes/bun_contract.ts`.
 */
import { describe, it } from "vitest";
import type { TestApi } from "./shared/api.ts";
import { defineContractTests } from "./shared/contract.ts";
import { defineE2eTests } from "./shared/e2e.ts";
import { defineServerTests } from "./shared/server.ts";

const api: TestApi = { describe, it: (name, body, timeoutMs) => it(name, body, timeoutMs) };

defineContractTests(api, "node");
defineE2eTests(api, "node");
defineServerTests(api, "node");
