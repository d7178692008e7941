// The public entry is curated: this pins its runtime exports, so that adding or removing one
// is a deliberate change.
import { describe, expect, it } from "vitest";
import * as mod from "../src/mod.ts";

describe("src/mod.ts", () => {
  it("exports exactly the public API", () => {
    expect(Object.keys(mod).sort()).toEqual([
      "DEFAULT_CALL_TIMEOUT_MS",
      "EnvManager",
      "EventBus",
      "FolderPaths",
      "HostCore",
      "IO_TYPES",
      "IO_TYPE_BY_NAME",
      "Logger",
      "MetadataCache",
      "ModelManagement",
      "NdArrayRef",
      "NodeRegistry",
      "Progress",
      "PromptExecutor",
      "PromptServer",
      "PyisolateError",
      "PythonProcess",
      "RUNTIME_VERSION",
      "RemoteError",
      "SegmentRegistry",
      "ServiceRegistry",
      "TensorRef",
      "Tuple",
      "collectTensorRefs",
      "connectServices",
      "createHost",
      "currentCall",
      "defaultRegistry",
      "detectRuntime",
      "discoverPacks",
      "exposeServices",
      "getRuntime",
      "installNodeApi",
      "isOpaqueIoType",
      "isTuple",
      "loadPack",
      "log",
      "logCacheHit",
      "registerTag",
      "resolveHostPython",
      "resolveUv",
      "service",
      "stderrSink",
      "tensorValues",
      "tuple",
      "validateIoValue",
      "validatePrompt",
      "viewTensor",
    ]);
  });
});
