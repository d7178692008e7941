/**
 * `pyisolate/internals`: the building blocks under `createHost`, for tools built on
 * pyisolate (a custom executor, a server, a benchmark). Everything here is real and tested,
 * but its shape may change between minor versions; embedding programs use `pyisolate`.
 *
 * One export per stage of a call's journey (see `docs/architecture.md`): manifests,
 * environments, processes and their router, the wire protocol and RPC, values and tensors,
 * the node API's host side, the node registry and its metadata cache, the executor, runtimes.
 *
 * @example
 * ```ts
 * import { HostCore } from "pyisolate/internals";
 *
 * const core = new HostCore({ hostPython: ".venv/bin/python", packs: [] });
 * console.log(await core.shared.call("$rt", "echo", [42])); // 42
 * await core.close();
 * ```
 * @module
 */
// Manifests and environments.
export { discoverPacks, loadPack, type ManifestError, type PackInfo, type PackManifest } from "./manifest/manifest.ts";
export { EnvManager, type BuildOptions, type BuildProgress, type BuildResult } from "./env/env_manager.ts";
export { resolveHostPython, resolveUv, type HostPython, type HostPythonSource } from "./env/host_python.ts";
export { setupHostEnv, type SetupOptions, type SetupProgress, type SetupResult } from "./env/setup_env.ts";
export { ensurePackageFiles } from "./paths.ts";

// Processes and their router.
export { HostCore, type HostCoreOptions, type HostPack } from "./process/host_core.ts";
export { PythonProcess, type PythonProcessOptions } from "./process/python_process.ts";
export type { BrokerMode } from "./process/broker_link.ts";
export { planSandbox, sandboxAvailability, type SandboxAvailability, type SandboxDecision, type SandboxPlan, type SandboxRequest } from "./process/sandbox.ts";

// The wire protocol and RPC.
export { registerTag, type TagCodec } from "./protocol/codec.ts";
export { DEFAULT_CALL_TIMEOUT_MS, RpcEndpoint, type CallOptions, type IncomingCall } from "./rpc/endpoint.ts";
export { Channel, DEFAULT_CHANNEL_TIMEOUT_MS, type ChannelOptions } from "./rpc/channel.ts";
export { defaultRegistry } from "./rpc/services.ts";

// Values: tensors, segments, io types.
export { NdArrayRef, collectTensorRefs } from "./values/tensors.ts";
export { SegmentRegistry, newHostId, type SegmentRegistryOptions } from "./values/segments.ts";
export { IO_TYPES, IO_TYPE_BY_NAME, validateIoValue, isOpaqueIoType, type IoTypeInfo } from "./values/io_types.gen.ts";

// The ComfyUI node API's host side, the node registry and its metadata cache.
export {
  installNodeApi,
  FolderPaths,
  ModelManagement,
  PromptServer,
  Progress,
  EventBus,
  type NodeApi,
  type NodeApiEvent,
  type FolderPathsOptions,
} from "./node_api/mod.ts";
export { applyComfyStartupPaths, readExtraModelPaths, type ExtraModelPath } from "./node_api/extra_model_paths.ts";
export { NodeRegistry } from "./nodes/registry.ts";
export { MetadataCache, logCacheHit } from "./nodes/metadata_cache.ts";

// The executor.
export { PromptExecutor, type NodeRecord, type RunOptions } from "./executor/executor.ts";
export { validatePrompt } from "./executor/validate.ts";
export type { HiddenValues, NodeBackend, NodeOwner, NodeRunResult, ValidationResult } from "./executor/types.ts";

// Logs and runtimes.
export { log } from "./log.ts";
export { getRuntime, detectRuntime } from "./runtime/detect.ts";
export type { Runtime, MappedFile } from "./runtime/contract.ts";
