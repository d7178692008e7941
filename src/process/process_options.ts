/**
 * What a {@link PythonProcess} is made with: its options, its states and its default times.
 * @module
 */
import type { Launcher } from "../../workers/broker_core.ts";
import type { Logger, LoggerLike } from "../log.ts";
import type { IncomingHandler } from "../rpc/endpoint.ts";
import type { PackRef } from "../protocol/messages.ts";
import type { BrokerExit } from "../../workers/broker_core.ts";
import type { BrokerMode } from "./broker_link.ts";
import type { HealthCheckOptions } from "./health.ts";
import type { PythonProcess } from "./python_process.ts";
import type { HandleHooks } from "../values/handles.ts";
import type { TemplateChoice } from "./template.ts";

/** Time a process has to send `ready` after it is spawned (imports can be slow). */
export const DEFAULT_START_TIMEOUT_MS = 120_000;

/** Time `close()` waits after `bye`, and again after SIGTERM, before escalating. */
export const DEFAULT_CLOSE_GRACE_MS = 2_000;

/** How long `close()` waits beyond its grace periods before it gives up on the broker. */
export const CLOSE_MARGIN_MS = 10_000;

/** Life of a {@link PythonProcess}: `idle` until the first call, `exited` after a crash (restarts on the next call), `closed` for good. */
export type ProcessState = "idle" | "starting" | "ready" | "stopping" | "exited" | "closed";

/** Options of {@link PythonProcess}. */
export interface PythonProcessOptions {
  /** Process name: the pack name for an isolated process. Log lines and errors carry it. */
  name: string;
  kind: "isolated" | "shared";
  /** The Python executable, or a function resolving it when the process first starts. */
  python: string | (() => Promise<string>);
  /** Packs the process imports. @default [] */
  packs?: PackRef[];
  /** Answers the child's calls to the host. @default every call fails with `NOT_CALLABLE` */
  handler?: IncomingHandler;
  /** Host service names the child may call (sent in `config.services`). @default [] */
  services?: string[] | (() => string[]);
  /** `config.options`. @default {} */
  options?: Record<string, unknown>;
  /** `config.sys_path`. @default [] */
  sysPath?: string[];
  /** Extra environment variables for the child. */
  env?: Record<string, string>;
  /** Working directory of the child. @default the host's */
  cwd?: string;
  /** @default {@link DEFAULT_CALL_TIMEOUT_MS} */
  defaultTimeoutMs?: number;
  /** @default {@link DEFAULT_START_TIMEOUT_MS} */
  startTimeoutMs?: number;
  /** @default the shared `log` */
  logger?: Logger | LoggerLike;
  /** @default `PYISOLATE_BROKER` from the environment, else `"inline"` */
  broker?: BrokerMode;
  /** Called after every exit of the process (crash or close). */
  onExit?: (info: BrokerExit) => void;
  /** Told of every remote object handle that crosses to or from the process (the host's `HandleTable`). */
  handles?: HandleHooks;
  /** The id the child's segment names carry (`PYISOLATE_HOST_ID`). @default this process's pid */
  hostId?: string;
  /** Pings the running process; `false` turns the check off. @default on, with the defaults */
  healthCheck?: HealthCheckOptions | false;
  /** Kill the process when its memory (with its children's) exceeds this many bytes. @default no limit */
  memoryLimitBytes?: number;
  /** The command the Python command runs under, and its arguments (the sandbox, see `sandbox.ts`). @default none */
  sandbox?: (python: string) => { cmd: string; args: string[] };
  /** Where to fork the process from (a template, `template.ts`), or why to spawn it plainly (always plainly when sandboxed). @default spawn it */
  template?: (python: string) => Promise<TemplateChoice>;
  /** Start the process elsewhere (the Ray backend: an actor on a cluster node); its broker then runs on this thread. */
  launcher?: () => Launcher;
}

