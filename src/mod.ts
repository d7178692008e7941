/**
 * pyisolate: run Python plugins — ComfyUI custom nodes first — each in its own process with
 * its own dependencies, from Node, Deno or Bun, and pass PyTorch tensors between them without
 * copying.
 *
 * @example
 * ```ts
 * import { createHost } from "pyisolate";
 *
 * const host = await createHost({ customNodes: "custom_nodes" });
 * const result = await host.run({
 *   "1": { class_type: "NumpyLegacyVersion", inputs: {} },
 *   "2": { class_type: "ShowText", inputs: { text: ["1", 0] } },
 * });
 * console.log(result.status, result.outputs);
 * await host.close();
 * ```
 * @module
 */

// The host: packs → environments → processes → nodes → prompts.
export { createHost, type Host, type HostOptions, type HostRunOptions, type PackStatus } from "./host.ts";
export { PromptExecutor, type NodeRecord, type RunOptions, type RunResult } from "./executor/executor.ts";
export { validatePrompt } from "./executor/validate.ts";
export type {
  ExecutionEvent,
  ExecutionEventType,
  HiddenValues,
  NodeBackend,
  NodeErrors,
  NodeInfo,
  NodeOwner,
  NodeRunResult,
  Prompt,
  PromptNode,
  ValidationError,
  ValidationResult,
} from "./executor/types.ts";

// Manifests, environments, the metadata cache.
export { discoverPacks, loadPack, type ManifestError, type PackInfo, type PackManifest } from "./manifest/manifest.ts";
export { EnvManager, type BuildOptions, type BuildProgress, type BuildResult } from "./env/env_manager.ts";
export { MetadataCache, logCacheHit } from "./nodes/metadata_cache.ts";
export { resolveHostPython, resolveUv, type HostPython } from "./env/host_python.ts";

// Processes, RPC and services.
export { HostCore, type HostCoreOptions, type HostPack } from "./process/host_core.ts";
export { PythonProcess, type PythonProcessOptions } from "./process/python_process.ts";
export { DEFAULT_CALL_TIMEOUT_MS, type CallOptions } from "./rpc/endpoint.ts";
export { ServiceRegistry, service, defaultRegistry, currentCall, type Remote } from "./rpc/services.ts";
export { connectServices, exposeServices } from "./rpc/thread_services.ts";
export { Tuple, tuple, isTuple, PyFloat, pyFloat, RemoteError, registerTag } from "./protocol/codec.ts";

// The ComfyUI node API's host side.
export {
  installNodeApi,
  NodeRegistry,
  FolderPaths,
  ModelManagement,
  PromptServer,
  Progress,
  EventBus,
  type NodeApi,
  type NodeApiEvent,
  type FolderPathsOptions,
} from "./node_api/mod.ts";

// Tensors and io types.
export { TensorRef, NdArrayRef, SegmentRegistry, viewTensor, tensorValues, collectTensorRefs, type TensorView } from "./values/tensors.ts";
export { IO_TYPES, IO_TYPE_BY_NAME, validateIoValue, isOpaqueIoType, type IoTypeInfo } from "./values/io_types.gen.ts";

// Errors, logs, runtimes.
export { PyisolateError, type PyisolateErrorCode } from "./errors.ts";
export { Logger, log, stderrSink, streamSink, type LogLevel, type LogSink } from "./log.ts";
export { getRuntime, detectRuntime } from "./runtime/detect.ts";
export type { Runtime, MappedFile } from "./runtime/contract.ts";
export { RUNTIME_VERSION } from "./version.ts";
