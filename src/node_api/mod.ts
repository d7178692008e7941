/**
 * The ComfyUI node API on the host: the services Python's `folder_paths`,
 * `comfy.model_management`, `server` and `comfy.utils` reach, and the event bus they feed.
 * {@link installNodeApi} wires them to a {@link HostCore}. (The registry of node classes is
 * `nodes/registry.ts`.)
 * @module
 */
import type { HostCore } from "../process/host_core.ts";
import { defaultRegistry } from "../rpc/services.ts";
import { EventBus } from "./events.ts";
import type { Logger } from "../log.ts";
import { FOLDER_PATHS_EXPOSED, FolderPaths, type FolderPathsOptions } from "./folder_paths.ts";
import { MODEL_MANAGEMENT_EXPOSED, ModelManagement } from "./model_management.ts";
import { PROGRESS_EXPOSED, PROMPT_SERVER_EXPOSED, Progress, PromptServer } from "./prompt_server.ts";

export { EventBus, defaultEventBus, type NodeApiEvent, type NodeApiListener } from "./events.ts";
export { FolderPaths, LEGACY_FOLDER_NAMES, SUPPORTED_PT_EXTENSIONS, resolveInside, splitAnnotation, type FolderInfo, type FolderPathsOptions } from "./folder_paths.ts";
export { MODEL_MANAGEMENT_SERVICE, ModelManagement, type ProcessFanOut } from "./model_management.ts";
export { Progress, PromptServer, type ProgressUpdate } from "./prompt_server.ts";

/** The node API services of one host. */
export interface NodeApi {
  folderPaths: FolderPaths;
  modelManagement: ModelManagement;
  promptServer: PromptServer;
  progress: Progress;
  /** Where `send_sync` and progress events arrive. */
  events: EventBus;
}

/** Options of {@link installNodeApi}. */
export interface NodeApiOptions {
  /** Folder layout. @default ComfyUI's, under the current directory */
  folders?: FolderPathsOptions;
  /** @default a new bus (the shared default bus when the core uses the default registry) */
  events?: EventBus;
  /** Where changes packs make to the folder table are logged. @default the shared `log` */
  logger?: Logger;
}

/**
 * Provides the node API services to a host core's processes. With the core's own
 * {@link ServiceRegistry}, fresh service objects are registered in it; with the default
 * registry (where `@service` put the classes), its singletons are configured instead.
 *
 * @example
 * ```ts
 * const core = new HostCore({ hostPython, packs, services: new ServiceRegistry() });
 * const api = installNodeApi(core, { folders: { baseDir: "/srv/comfy" } });
 * api.events.on((e) => console.log(e.type, e.data));
 * ```
 */
export function installNodeApi(core: HostCore, opts: NodeApiOptions = {}): NodeApi {
  const registry = core.services;
  if (registry === defaultRegistry) {
    const folderPaths = registry.instance("FolderPaths") as FolderPaths;
    const modelManagement = registry.instance("ModelManagement") as ModelManagement;
    const promptServer = registry.instance("PromptServer") as PromptServer;
    const progress = registry.instance("Progress") as Progress;
    folderPaths.configure(opts.folders ?? {});
    if (opts.logger) folderPaths.setLogger(opts.logger);
    modelManagement.bind(core);
    progress.bind(promptServer);
    return { folderPaths, modelManagement, promptServer, progress, events: promptServer.events };
  }
  const events = opts.events ?? new EventBus();
  const folderPaths = new FolderPaths(opts.folders ?? {});
  const modelManagement = new ModelManagement(core);
  const promptServer = new PromptServer(events);
  const progress = new Progress(events, promptServer);
  if (opts.logger) folderPaths.setLogger(opts.logger);
  registry.register("FolderPaths", folderPaths, { expose: FOLDER_PATHS_EXPOSED });
  registry.register("ModelManagement", modelManagement, { expose: MODEL_MANAGEMENT_EXPOSED });
  registry.register("PromptServer", promptServer, { expose: PROMPT_SERVER_EXPOSED });
  registry.register("Progress", progress, { expose: PROGRESS_EXPOSED });
  return { folderPaths, modelManagement, promptServer, progress, events };
}
