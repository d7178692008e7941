/**
 * The shared runtime suites under Bun: `bun test ./test/runtimes/bun_contract.ts`
 * (or `node scripts/test_runtimes.mjs`). One line per shared suite, then Bun's own checks.
 */
import assert from "node:assert/strict";
import { writeFileSync, unlinkSync } from "node:fs";
import { randomBytes } from "node:crypto";
import process from "node:process";
import { describe, it } from "bun:test";
import type { TestApi } from "../shared/api.ts";
import { defineContractTests } from "../shared/contract.ts";
import { defineE2eTests } from "../shared/e2e.ts";
import { defineServerTests } from "../shared/server.ts";

const api: TestApi = { describe, it: (name, body, timeoutMs) => it(name, body, timeoutMs ?? 120_000) };

defineContractTests(api, "bun");
defineE2eTests(api, "bun");
defineServerTests(api, "bun");

api.describe("Bun adapter", () => {
  api.it("mapFile views the first `length` bytes of the whole-file mapping, and refuses a length past the end", async () => {
    const { runtime } = await import("../../adapters/bun.ts");
    const path = `/dev/shm/pyi-contract-${process.pid}-${randomBytes(4).toString("hex")}`;
    writeFileSync(path, new Uint8Array(8192).map((_, i) => i & 255));
    try {
      const m = runtime.mapFile(path, 5000);
      assert.equal(m.zeroCopy, true);
      assert.equal(m.bytes.length, 5000);
      assert.equal(m.bytes.buffer.byteLength, 8192, "Bun maps the whole file");
      assert.equal(m.bytes[4999], 4999 & 255);
      m.unmap();
      assert.throws(() => runtime.mapFile(path, 8193), /holds only 8192/);
    } finally {
      unlinkSync(path);
    }
  });
});
