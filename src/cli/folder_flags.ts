/**
 * ComfyUI's folder flags, for commands that start a host: `--base-directory`,
 * `--output-directory`, `--input-directory`, `--temp-directory`, `--user-directory` and
 * `--extra-model-paths-config`, with ComfyUI's meanings (`comfy/cli_args.py`, `main.py`), beside
 * the short `--output` and `--input`.
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { HostOptions } from "../host.ts";
import { displayPath } from "../util/fs.ts";
import { usageError, type CommandContext, type FlagSpec } from "./command.ts";

/** The folder flags. */
export const FOLDER_FLAGS: FlagSpec[] = [
  { name: "--base-directory", value: "DIR", help: "ComfyUI's base directory: models/, input/, output/, temp/, user/ and (unless --custom-nodes) custom_nodes/ under it (default .)" },
  { name: "--output-directory", value: "DIR", help: "where output nodes save (default <base>/output); --output is the same" },
  { name: "--output", value: "DIR", help: "short for --output-directory" },
  { name: "--input-directory", value: "DIR", help: "folder_paths' input directory (default <base>/input); --input is the same" },
  { name: "--input", value: "DIR", help: "short for --input-directory" },
  { name: "--temp-directory", value: "DIR", help: "as ComfyUI: temporary files go to DIR/temp (default <base>/temp)" },
  { name: "--user-directory", value: "DIR", help: "folder_paths' user directory, an existing folder (default <base>/user)" },
  {
    name: "--extra-model-paths-config",
    value: "FILE",
    multiple: true,
    help: "an extra_model_paths.yaml to read after the default one (repeatable); the default is the ComfyUI install's, else <base>/extra_model_paths.yaml, when it exists",
  },
];

/** What the folder flags ask for, as host options (and the custom nodes folder they imply). */
export type FolderChoice = Pick<HostOptions, "customNodes" | "baseDir" | "outputDir" | "inputDir" | "tempDir" | "userDir" | "extraModelPaths">;

function oneOf(ctx: CommandContext, long: string, short: string): string | undefined {
  const a = ctx.flags[long];
  const b = ctx.flags[short];
  const av = typeof a === "string" ? a : undefined;
  const bv = typeof b === "string" ? b : undefined;
  if (av !== undefined && bv !== undefined && resolve(av) !== resolve(bv)) {
    throw usageError(`--${long} ${av} and --${short} ${bv} name different folders; give one of them.`);
  }
  return av ?? bv;
}

function notAFile(flag: string, dir: string): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw usageError(`${flag} ${displayPath(dir)} is a file; give a folder (it is created when missing).`);
}

/**
 * Reads the folder flags of a command.
 * @throws {PyisolateError} `USAGE` for a file where a folder belongs, a `--user-directory` that is
 *   not an existing folder (ComfyUI requires one), a missing `--extra-model-paths-config` file,
 *   or `--output`/`--output-directory` (`--input`/`--input-directory`) naming different folders.
 */
export function folderChoice(ctx: CommandContext): FolderChoice {
  const str = (name: string) => (typeof ctx.flags[name] === "string" ? (ctx.flags[name] as string) : undefined);
  const base = str("base-directory");
  const out: FolderChoice = {};
  if (base !== undefined) {
    const dir = resolve(base);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw usageError(`--base-directory ${displayPath(dir)} is not a folder; give ComfyUI's base directory (the folder holding models/, custom_nodes/, …).`);
    out.baseDir = dir;
  }
  // ComfyUI's custom_nodes sit in the base directory; --custom-nodes still wins.
  const customGiven = ctx.opts.given?.includes("--custom-nodes") ?? true;
  out.customNodes = resolve(customGiven || out.baseDir === undefined ? ctx.opts.customNodes : join(out.baseDir, "custom_nodes"));
  const output = oneOf(ctx, "output-directory", "output");
  if (output !== undefined) {
    notAFile("--output-directory", resolve(output));
    out.outputDir = resolve(output);
  }
  const input = oneOf(ctx, "input-directory", "input");
  if (input !== undefined) {
    notAFile("--input-directory", resolve(input));
    out.inputDir = resolve(input);
  }
  const temp = str("temp-directory");
  if (temp !== undefined) {
    notAFile("--temp-directory", resolve(temp));
    out.tempDir = join(resolve(temp), "temp");
  }
  const user = str("user-directory");
  if (user !== undefined) {
    const dir = resolve(user);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw usageError(`--user-directory ${displayPath(dir)} is not an existing folder; ComfyUI requires one (create it first).`);
    out.userDir = dir;
  }
  const configs = ctx.flags["extra-model-paths-config"];
  if (Array.isArray(configs)) {
    for (const c of configs) {
      if (!existsSync(resolve(c))) throw usageError(`--extra-model-paths-config ${c}: no such file.`);
    }
    out.extraModelPaths = configs.map((c) => resolve(c));
  }
  return out;
}
