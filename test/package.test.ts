// The public entries are curated: this pins their runtime exports, so that adding or removing
// one is a deliberate change. And every source file must run under Node's own type stripping.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import amaro from "amaro";
import * as mod from "../src/mod.ts";
import * as internals from "../src/internals.ts";

const repo = join(import.meta.dirname, "..");

describe("the package's entries", () => {
  it("`pyisolate` (src/mod.ts) exports exactly what an embedding program needs", () => {
    expect(Object.keys(mod).sort()).toEqual([
      "Logger",
      "PyFloat",
      "PyisolateError",
      "RUNTIME_VERSION",
      "RemoteError",
      "ServiceRegistry",
      "TensorRef",
      "Tuple",
      "connectServices",
      "createHost",
      "currentCall",
      "exposeServices",
      "isTuple",
      "pyFloat",
      "service",
      "stderrSink",
      "streamSink",
      "tensorValues",
      "tuple",
      "viewTensor",
    ]);
  });

  it("`pyisolate/internals` (src/internals.ts) exports the building blocks, and nothing of the public entry twice", () => {
    const names = Object.keys(internals).sort();
    expect(names).toEqual([
      "Channel",
      "DEFAULT_CALL_TIMEOUT_MS",
      "DEFAULT_CHANNEL_TIMEOUT_MS",
      "EnvManager",
      "EventBus",
      "FolderPaths",
      "HostCore",
      "IO_TYPES",
      "IO_TYPE_BY_NAME",
      "MetadataCache",
      "ModelManagement",
      "NdArrayRef",
      "NodeRegistry",
      "Progress",
      "PromptExecutor",
      "PromptServer",
      "PythonProcess",
      "RpcEndpoint",
      "SegmentRegistry",
      "applyComfyStartupPaths",
      "collectTensorRefs",
      "defaultRegistry",
      "detectRuntime",
      "discoverPacks",
      "ensurePackageFiles",
      "getRuntime",
      "installNodeApi",
      "isOpaqueIoType",
      "loadPack",
      "log",
      "logCacheHit",
      "newHostId",
      "planSandbox",
      "readExtraModelPaths",
      "registerTag",
      "resolveHostPython",
      "resolveUv",
      "sandboxAvailability",
      "setupHostEnv",
      "validateIoValue",
      "validatePrompt",
    ]);
    expect(names.filter((n) => n in mod)).toEqual([]);
  });

  it("package.json maps both entries, for Node (dist/) and Bun (src/)", () => {
    const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
    expect(pkg.exports["."]).toEqual({ types: "./dist/mod.d.ts", bun: "./src/mod.ts", default: "./dist/mod.js" });
    expect(pkg.exports["./internals"]).toEqual({ types: "./dist/internals.d.ts", bun: "./src/internals.ts", default: "./dist/internals.js" });
  });
});

describe("sources every runtime runs unchanged", () => {
  function tsFiles(dir: string): string[] {
    return readdirSync(dir).flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith(".ts") ? [p] : [];
    });
  }
  const files = ["src", "workers", "adapters"].flatMap((d) => tsFiles(join(repo, d)));

  it("every file of src/, workers/ and adapters/ passes Node's type stripping (amaro, strip-only), keeping every line in place", () => {
    expect(files.length).toBeGreaterThan(40);
    const failures: string[] = [];
    for (const f of files) {
      const source = readFileSync(f, "utf8");
      try {
        const { code } = amaro.transformSync(source, { mode: "strip-only", filename: f });
        // Strip-only replaces types with blanks: line numbers in stack traces stay true.
        if (code.split("\n").length !== source.split("\n").length) failures.push(`${relative(repo, f)}: lines moved`);
      } catch (err) {
        failures.push(`${relative(repo, f)}: ${(err as { message?: string }).message ?? String(err)}`);
      }
    }
    expect(failures).toEqual([]);
  });
});
