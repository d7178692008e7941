/**
 * What a CLI command is: its flags, what it receives, and the options every command takes.
 * One file per command (`run.ts`, `list.ts`, …) fills {@link Command}; `main.ts` lists them.
 * @module
 */
import { PyisolateError } from "../errors.ts";
import type { HostOptions } from "../host.ts";
import type { CliIo } from "./view.ts";

/** Options every command takes. */
export interface GlobalOptions {
  /** `--custom-nodes DIR` @default "./custom_nodes" */
  customNodes: string;
  /** `--cache-dir DIR` @default "./.pyisolate" */
  cacheDir: string;
  /** `--python PATH`: the host Python. */
  python?: string;
  /** `--comfyui DIR` (or `$PYISOLATE_COMFYUI`): a ComfyUI checkout, for core mode. */
  comfyui?: string;
  /** `--comfyui-args ARGS` (or `$PYISOLATE_COMFYUI_ARGS`): ComfyUI's own arguments, split on spaces. */
  comfyuiArgs?: string[];
  /** `--ray ADDRESS|auto` (or `$PYISOLATE_RAY`): isolated packs run as actors of that Ray cluster. */
  ray?: string;
  /** `--ray-python PATH` (or `$PYISOLATE_RAY_PYTHON`): a Python with Ray, for the Ray backend's driver. */
  rayPython?: string;
  /** `--verbose`: stack traces with errors, more detail. */
  verbose: boolean;
  /** The global flags given on the command line (long names with dashes), to tell a default from a choice. */
  given?: readonly string[];
}

/** A flag of one command. */
export interface FlagSpec {
  /** Long name with dashes, e.g. `--json`. */
  name: string;
  /** Short alias, e.g. `-f`. */
  short?: string;
  /** Name of the value it takes (`N`, `DIR`), or absent for a boolean switch. */
  value?: string;
  /** May be given more than once: the command receives every value, in order, as a list. */
  multiple?: boolean;
  /** One line of help. */
  help: string;
}

/** What a command receives. */
export interface CommandContext {
  opts: GlobalOptions;
  /** Positional arguments after the command name. */
  args: string[];
  /** The command's own flags, by long name without dashes (`concurrency`, `json`); a list for a `multiple` flag. */
  flags: Record<string, string | boolean | string[]>;
  io: CliIo;
  /** Writes a line to stdout. */
  out(line?: string): void;
  /** Writes a line to stderr. */
  err(line?: string): void;
}

/** One CLI command. */
export interface Command {
  /** `list [--json]`, shown in help. */
  usage: string;
  /** One line of help. */
  summary: string;
  /** More help, shown by `<command> --help`. */
  description?: string;
  flags: FlagSpec[];
  /** Runs the command; returns the exit code. Throw a PyisolateError for a one-line error. */
  run(ctx: CommandContext): Promise<number>;
}

/** Flags every command takes. */
export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: "--custom-nodes", value: "DIR", help: "folder of node packs (default ./custom_nodes)" },
  { name: "--cache-dir", value: "DIR", help: "environments and metadata cache (default ./.pyisolate)" },
  { name: "--python", value: "PATH", help: "host Python, whose environment holds torch (default: $PYISOLATE_PYTHON, the ComfyUI checkout's .venv or venv, ./.venv, python3 on PATH)" },
  { name: "--comfyui", value: "DIR", help: "a ComfyUI checkout: run on ComfyUI's real modules, with its built-in nodes (default: $PYISOLATE_COMFYUI; without one, shims)" },
  { name: "--comfyui-args", value: "ARGS", help: 'ComfyUI\'s own arguments for every process, e.g. "--cpu" (default: $PYISOLATE_COMFYUI_ARGS)' },
  { name: "--ray", value: "ADDRESS", help: "run isolated packs as actors of the Ray cluster at ADDRESS (host:port of its head), or `auto` for a local one (default: $PYISOLATE_RAY; without it, local processes)" },
  { name: "--ray-python", value: "PATH", help: "a Python with ray installed, for the Ray backend's driver (default: $PYISOLATE_RAY_PYTHON, else the host Python)" },
  { name: "--verbose", short: "-v", help: "more detail; stack traces with errors" },
  { name: "--help", short: "-h", help: "show help (for a command: pyisolate <command> --help)" },
  { name: "--version", short: "-V", help: "print the version" },
];

/** The {@link HostOptions} the global options stand for (folders, host Python, ComfyUI checkout). */
export function hostOptions(opts: GlobalOptions): Pick<HostOptions, "customNodes" | "cacheDir" | "python" | "comfyui" | "comfyuiArgs" | "backend" | "ray"> {
  return {
    customNodes: opts.customNodes,
    cacheDir: opts.cacheDir,
    ...(opts.python ? { python: opts.python } : {}),
    ...(opts.comfyui ? { comfyui: opts.comfyui } : {}),
    ...(opts.comfyuiArgs ? { comfyuiArgs: opts.comfyuiArgs } : {}),
    ...(opts.ray ? { backend: "ray" as const, ray: { address: opts.ray, ...(opts.rayPython ? { python: opts.rayPython } : {}) } } : {}),
    ...(!opts.ray && opts.rayPython ? { ray: { python: opts.rayPython } } : {}),
  };
}

/** A usage error: one line, exit code 2. */
export function usageError(message: string): PyisolateError {
  return new PyisolateError("USAGE", message);
}

/** `"1.5 s"`. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
