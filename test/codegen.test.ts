import { defaultShmDir, segmentPath } from "../src/values/segments.ts";
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { renderAll, staleFiles } from "../codegen/generate.ts";
import { IO_TYPES as SPEC } from "../codegen/io_types.ts";
import { decode } from "../src/protocol/codec.ts";
import { PyisolateError } from "../src/errors.ts";
import { IO_TYPES, IO_TYPE_BY_NAME, isOpaqueIoType, opaqueCrossingError, validateIoValue } from "../src/values/io_types.gen.ts";
import { TensorRef } from "../src/values/tensors.ts";
import { PYTHON, ROOT } from "./tensors_util.ts";

function python(code: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(PYTHON, ["-c", code], { env: { ...process.env, PYTHONPATH: join(ROOT, "python") }, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("generated io-type files", () => {
  it("are up to date with the spec", () => {
    expect(staleFiles()).toEqual([]);
  });

  it("the check fails on a stale file, from the command line too", () => {
    const tmp = mkdtempSync(join(tmpdir(), "pyisolate-codegen-"));
    try {
      for (const rel of Object.keys(renderAll())) {
        mkdirSync(dirname(join(tmp, rel)), { recursive: true });
        cpSync(join(ROOT, rel), join(tmp, rel));
      }
      expect(staleFiles(tmp)).toEqual([]);
      const deno = join(ROOT, "node_modules", ".bin", "deno");
      const ok = spawnSync(deno, ["run", "-A", "codegen/generate.ts", "--check", "--root", tmp], { cwd: ROOT, encoding: "utf8" });
      expect(ok.status, ok.stderr).toBe(0);
      const doc = join(tmp, "docs/io-types.md");
      writeFileSync(doc, readFileSync(doc, "utf8").replace("MODEL", "MODELL"));
      expect(staleFiles(tmp)).toEqual(["docs/io-types.md"]);
      const bad = spawnSync(deno, ["run", "-A", "codegen/generate.ts", "--check", "--root", tmp], { cwd: ROOT, encoding: "utf8" });
      expect(bad.status).toBe(1);
      expect(bad.stderr).toMatch(/stale: docs\/io-types\.md/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("cover every type in the spec, on both sides", () => {
    expect(IO_TYPES.map((t) => t.cls)).toEqual(SPEC.map((t) => t.cls));
    const r = python(`import json; from pyisolate_runtime import io_types_gen as g; print(json.dumps([[t["cls"], t["io_type"], t["serializable"]] for t in g.IO_TYPES]))`);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(IO_TYPES.map((t) => [t.cls, t.ioType, t.serializable]));
    for (const t of ["IMAGE", "MASK", "LATENT", "CONDITIONING", "AUDIO", "SIGMAS", "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"]) {
      expect(IO_TYPE_BY_NAME.get(t)?.serializable, t).toBe(true);
    }
    for (const t of ["MODEL", "CLIP", "VAE", "CONTROL_NET", "SAMPLER", "GUIDER", "CLIP_VISION", "STYLE_MODEL", "GLIGEN", "UPSCALE_MODEL"]) {
      expect(isOpaqueIoType(t), t).toBe(true);
    }
    const doc = readFileSync(join(ROOT, "docs/io-types.md"), "utf8");
    expect(doc).toMatch(/\| `io\.Image` \| `IMAGE` \| ✅ Works, zero-copy \|/);
    expect(doc).toMatch(/\| `io\.Model` \| `MODEL` \| ❌ Opaque/);
  });
});

describe("TS validators", () => {
  const ref = (shape: number[], dtype = "float32") =>
    new TensorRef({ segment: "", offset: 0, nbytes: 0, dtype, shape, strides: shape.map(() => 1), device: "cpu" });

  it("accept well-formed values and name the problem otherwise", () => {
    validateIoValue("IMAGE", ref([1, 8, 8, 3]));
    validateIoValue("LATENT", { samples: ref([1, 4, 8, 8]), batch_index: [0] });
    validateIoValue("CONDITIONING", [[ref([1, 77, 768]), { pooled_output: ref([1, 768]) }]]);
    validateIoValue("AUDIO", { waveform: ref([1, 2, 100]), sample_rate: 44100 });
    validateIoValue("INT", 2n ** 64n - 1n);
    validateIoValue("COMBO", ["a", "b"]);
    validateIoValue("MY_CUSTOM_TYPE", { anything: 1 });
    expect(() => validateIoValue("IMAGE", ref([8, 8]), { node: "Blur" })).toThrow(/IMAGE value \(node "Blur"\) is not valid: expected a tensor of rank 4/);
    expect(() => validateIoValue("LATENT", { samples: 3 })).toThrow(/\(at value\["samples"\]\)/);
    expect(() => validateIoValue("MASK", ref([1, 8, 8], "int64"))).toThrow(/floating dtype/);
  });

  it("refuse opaque types with an error naming the type", () => {
    const err = opaqueCrossingError("MODEL", { node: "KSampler", pack: "MyPack" });
    expect(err).toBeInstanceOf(PyisolateError);
    expect(err.code).toBe("TYPE");
    expect(err.message).toMatch(/^MODEL value cannot cross a process boundary \(node "KSampler", pack "MyPack"\): ModelPatcher object/);
    expect(() => validateIoValue("VAE", {})).toThrow(/^VAE value cannot cross a process boundary/);
  });
});

describe("Python validators", () => {
  it("raise OpaqueTypeError naming the type for opaque values, and pass serializable ones", () => {
    const r = python(`
import torch
from pyisolate_runtime import io_types_gen as g
class ModelPatcher: pass
out = []
try:
    g.check_crossing("MODEL", ModelPatcher(), node="CheckpointLoader")
except g.OpaqueTypeError as e:
    out.append(str(e))
try:
    g.check_crossing("CONDITIONING", [[torch.zeros(1), {"control": ModelPatcher()}]])
except g.OpaqueTypeError as e:
    out.append(str(e))
g.check_crossing("CONDITIONING", [[torch.zeros(1, 77, 8), {"pooled_output": torch.zeros(1, 8), "area": (64, 64, 0, 0)}]])
g.check_crossing("MODEL", None)
g.validate("LATENT", {"samples": torch.zeros(1, 4, 8, 8)})
try:
    g.validate("IMAGE", torch.zeros(8, 8), node="Blur")
except g.IoTypeError as e:
    out.append(str(e))
print("\\n".join(out))
`);
    expect(r.status, r.stderr).toBe(0);
    const [model, cond, image] = r.stdout.trim().split("\n");
    expect(model).toMatch(/^MODEL value cannot cross a process boundary \(node 'CheckpointLoader'\): it is a Python object \(__main__\.ModelPatcher\)/);
    expect(cond).toMatch(/^CONDITIONING value cannot cross a process boundary: value\[0\]\[1\]\['control'\] is a __main__\.ModelPatcher object/);
    expect(image).toBe("IMAGE value (node 'Blur') is not valid: expected a tensor of rank 4, got shape [8, 8].");
  });

  it("validate what crossed: a decoded LATENT passes the TS validator", () => {
    const r = spawnSync(PYTHON, ["-c", `
import sys
from pyisolate_runtime import cbor, tensors
import torch
tensors.setup()
sys.stdout.buffer.write(cbor.dumps({"samples": torch.zeros(1, 4, 8, 8), "batch_index": [0]}))
`], { env: { ...process.env, PYTHONPATH: join(ROOT, "python"), PYISOLATE_HOST_PID: String(process.pid) } });
    expect(r.status, r.stderr?.toString()).toBe(0);
    const value = decode(new Uint8Array(r.stdout)) as { samples: TensorRef };
    try {
      validateIoValue("LATENT", value);
    } finally {
      rmSync(segmentPath(defaultShmDir(), value.samples.segment), { force: true });
    }
  });
});
