/**
 * pyisolate: run Python plugins — ComfyUI custom nodes first — each in its own process with
 * its own dependencies, from Node, Deno or Bun, and pass PyTorch tensors between them without
 * copying.
 *
 * This is what an embedding program needs: {@link createHost} and its options and results,
 * the errors, host services (`service`, `Remote`), the values that cross to Python (tuples,
 * floats, tensors) and the logger. The building blocks underneath (processes, brokers, the
 * executor, environments, the node registry) are in `pyisolate/internals`, for tools built on
 * pyisolate; they may change between minor versions.
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
export type { RunResult } from "./executor/executor.ts";
export type {
  ExecutionEvent,
  ExecutionEventType,
  NodeErrors,
  NodeInfo,
  Prompt,
  PromptNode,
  ValidationError,
} from "./executor/types.ts";
export type { BuildProgress, BuildResult } from "./env/env_manager.ts";
export type { SandboxMode } from "./process/sandbox.ts";
export type { HealthCheckOptions } from "./process/health.ts";
export type { PackInfo, PackManifest } from "./manifest/manifest.ts";

// Host services, which Python code (and TypeScript workers) call by name.
export { ServiceRegistry, service, currentCall, type CallContext, type Remote } from "./rpc/services.ts";
export { connectServices, exposeServices, type ServiceClient, type ConnectServicesOptions } from "./rpc/thread_services.ts";

// Values as they cross to and from Python.
export { Tuple, tuple, isTuple, PyFloat, pyFloat } from "./protocol/py_types.ts";
export { TensorRef } from "./values/tensors.ts";
export { viewTensor, tensorValues, type TensorView } from "./values/view.ts";

// Errors and logs.
export { PyisolateError, type PyisolateErrorCode, type PyisolateErrorDetails } from "./errors.ts";
export { RemoteError } from "./protocol/remote_error.ts";
export { Logger, stderrSink, streamSink, type LoggerLike, type LogLevel, type LogSink } from "./log.ts";
export { RUNTIME_VERSION } from "./version.ts";
