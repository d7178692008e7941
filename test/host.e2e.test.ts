// createHost end to end on a small pack: a manifest's `env` reaches the pack's own process.
import { afterAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHost, Logger } from "../src/mod.ts";

const tmp = mkdtempSync(join(tmpdir(), "pyisolate-host-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("createHost", () => {
  it("sets a manifest's env in that pack's process only", async () => {
    const nodes = join(tmp, "custom_nodes");
    mkdirSync(join(nodes, "EnvPack"), { recursive: true });
    writeFileSync(join(nodes, "EnvPack", "pyisolate.yaml"), "isolated: true\nshare_torch: true\nenv:\n  PYISOLATE_TEST_GREETING: hello from the manifest\n  PYISOLATE_TEST_NUMBER: 42\n");
    writeFileSync(
      join(nodes, "EnvPack", "__init__.py"),
      [
        "import os",
        "class ShowEnv:",
        "    @classmethod",
        "    def INPUT_TYPES(cls):",
        "        return {'required': {}}",
        "    RETURN_TYPES = ()",
        "    FUNCTION = 'run'",
        "    OUTPUT_NODE = True",
        "    def run(self):",
        "        return {'ui': {'text': [os.environ.get('PYISOLATE_TEST_GREETING', ''), os.environ.get('PYISOLATE_TEST_NUMBER', '')]}}",
        "NODE_CLASS_MAPPINGS = {'ShowEnv': ShowEnv}",
      ].join("\n"),
    );
    const host = await createHost({ customNodes: nodes, cacheDir: join(tmp, "cache"), baseDir: tmp, logger: new Logger(() => {}) });
    try {
      const r = await host.run({ "1": { class_type: "ShowEnv", inputs: {} } });
      expect(r.status).toBe("success");
      expect(r.outputs["1"]).toEqual({ text: ["hello from the manifest", "42"] });
      expect(process.env.PYISOLATE_TEST_GREETING).toBeUndefined();
    } finally {
      await host.close();
    }
  });
});
