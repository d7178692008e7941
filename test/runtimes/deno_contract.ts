/**
 * The shared runtime suites under Deno: `deno test -A --no-check test/runtimes/deno_contract.ts`
 * (or `node scripts/test_runtimes.mjs`). One line per shared suite, then Deno's own checks.
 */
import assert from "node:assert/strict";
import { writeFileSync, unlinkSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { tmpdir } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { defineContractTests } from "../shared/contract.ts";
import { defineE2eTests } from "../shared/e2e.ts";
import { defineServerTests } from "../shared/server.ts";
import { denoTestApi } from "./deno_api.ts";

const api = denoTestApi();

defineContractTests(api, "deno");
// One host runs across the e2e tests: its workers and sockets outlive each test.
defineE2eTests(denoTestApi({ sanitize: false }), "deno");
// One server runs across the server tests, over one host.
defineServerTests(denoTestApi({ sanitize: false }), "deno");

interface DenoRun {
  execPath(): string;
  Command: new (cmd: string, opts: { args: string[]; stdout: "piped"; stderr: "piped" }) => {
    output(): Promise<{ code: number; stdout: Uint8Array; stderr: Uint8Array }>;
  };
}

api.describe("Deno adapter", () => {
  api.it("mapFile's unmap() detaches the buffer, and a length past the end is refused", async () => {
    const { runtime } = await import("../../adapters/deno.ts");
    const path = `/dev/shm/pyi-contract-${process.pid}-${randomBytes(4).toString("hex")}`;
    writeFileSync(path, new Uint8Array(8192).fill(5));
    try {
      const m = runtime.mapFile(path, 8000);
      assert.equal(m.zeroCopy, true);
      const view = new Float32Array(m.bytes.buffer, 0, 4);
      assert.equal(m.bytes[7999], 5);
      m.unmap();
      // Views of an unmapped file read as empty instead of touching unmapped memory.
      assert.equal(m.bytes.length, 0);
      assert.equal(view.length, 0);
      assert.throws(() => runtime.mapFile(path, 8193), /holds only 8192/);
    } finally {
      unlinkSync(path);
    }
  });

  api.it("mapFile reads a copy when FFI is not permitted", async () => {
    const Deno = (globalThis as unknown as { Deno: DenoRun }).Deno;
    // Outside /dev: Deno lets only --allow-all open files under /dev (and -A grants FFI).
    const path = join(tmpdir(), `pyi-contract-${process.pid}-${randomBytes(4).toString("hex")}`);
    const content = new Uint8Array(5000).map((_, i) => (i * 13) & 255);
    writeFileSync(path, content);
    try {
      const probe = fileURLToPath(new URL("./deno_map_probe.ts", import.meta.url));
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-check", "--no-prompt", "--allow-read", "--allow-env", probe, path, "4000"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const report = JSON.parse(new TextDecoder().decode(out.stdout)) as { zeroCopy: boolean; length: number; sum: number };
      assert.equal(report.zeroCopy, false);
      assert.equal(report.length, 4000);
      assert.equal(report.sum, content.subarray(0, 4000).reduce((s, b) => s + b, 0));
    } finally {
      unlinkSync(path);
    }
  });
});
