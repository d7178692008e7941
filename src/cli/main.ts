/**
 * The `pyisolate` command line: a table of commands over functions that tests call
 * in-process. {@link main} takes the arguments and returns the exit code; `bin.ts` is the
 * executable that calls it.
 *
 * Adding a command is one file (`<name>.ts`, exporting a {@link Command}) and one entry in
 * {@link commands}.
 * @module
 */
import process from "node:process";
import { PyisolateError } from "../errors.ts";
import { ensurePackageFiles } from "../paths.ts";
import { RUNTIME_VERSION } from "../version.ts";
import { parseArgs, type ParsedArgs } from "./args.ts";
import { buildCommand } from "./build.ts";
import { convertCommand } from "./convert.ts";
import { GLOBAL_FLAGS, type Command, type FlagSpec } from "./command.ts";
import { doctorCommand } from "./doctor.ts";
import { initCommand } from "./init.ts";
import { listCommand } from "./list.ts";
import { nodesCommand } from "./nodes.ts";
import { runCommand } from "./run.ts";
import { serveCommand } from "./serve.ts";
import { setupCommand } from "./setup.ts";
import type { CliIo } from "./view.ts";

export type { Command, CommandContext, FlagSpec, GlobalOptions } from "./command.ts";
export type { CliIo, CliStream } from "./view.ts";

/** Every command, by name. Adding a command is adding an entry here. */
export const commands: Record<string, Command> = {
  run: runCommand,
  serve: serveCommand,
  convert: convertCommand,
  list: listCommand,
  nodes: nodesCommand,
  build: buildCommand,
  doctor: doctorCommand,
  init: initCommand,
  setup: setupCommand,
};

function flagLines(flags: FlagSpec[]): string[] {
  const left = flags.map((f) => `${f.short ? `${f.short}, ` : "    "}${f.name}${f.value ? ` ${f.value}` : ""}`);
  const width = Math.max(0, ...left.map((l) => l.length));
  return flags.map((f, i) => `  ${left[i]!.padEnd(width)}  ${f.help}`);
}

/** The global help text. */
export function globalHelp(): string {
  const names = Object.keys(commands);
  return [
    `pyisolate ${RUNTIME_VERSION}: run ComfyUI custom nodes each in its own process and environment.`,
    "",
    "Usage: pyisolate <command> [options]",
    "",
    "Commands:",
    ...names.flatMap((n) => [`  ${commands[n]!.usage}`, `      ${commands[n]!.summary}`]),
    "  help [command]",
    "      show help for a command",
    "",
    "Options (every command):",
    ...flagLines(GLOBAL_FLAGS),
    "",
    "Environment: PYISOLATE_PYTHON (host Python), PYISOLATE_UV (uv binary), PYISOLATE_HOME (where setup makes the host environment),",
    "PYISOLATE_COMFYUI and PYISOLATE_COMFYUI_ARGS (a ComfyUI checkout and its arguments, for core mode).",
    'Run "pyisolate <command> --help" for a command\'s own options.',
  ].join("\n");
}

/** The help text of one command. */
export function commandHelp(name: string): string {
  const c = commands[name]!;
  return [
    `Usage: pyisolate ${c.usage}`,
    "",
    c.summary.charAt(0).toUpperCase() + c.summary.slice(1) + ".",
    ...(c.description ? ["", c.description] : []),
    ...(c.flags.length > 0 ? ["", "Options:", ...flagLines(c.flags)] : []),
    "",
    "Options (every command):",
    ...flagLines(GLOBAL_FLAGS),
  ].join("\n");
}

/**
 * Runs the CLI with the given arguments (without `node` and the script).
 * @returns the exit code: 0 success, 1 failure, 2 usage error.
 * @example
 * process.exitCode = await main(process.argv.slice(2));
 */
export async function main(argv: readonly string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const out = (line = "") => void io.stdout.write(`${line}\n`);
  const err = (line = "") => void io.stderr.write(`${line}\n`);
  let parsed: ParsedArgs | undefined;
  try {
    parsed = parseArgs(argv, commands);
    if (parsed.version) {
      out(RUNTIME_VERSION);
      return 0;
    }
    if (parsed.command === "help") {
      const topic = parsed.args[0];
      if (topic && !Object.hasOwn(commands, topic)) parseArgs([topic], commands); // throws the unknown-command error
      out(topic ? commandHelp(topic) : globalHelp());
      return 0;
    }
    if (parsed.command === null) {
      if (parsed.help) {
        out(globalHelp());
        return 0;
      }
      err(globalHelp());
      return 2;
    }
    const cmd = commands[parsed.command]!;
    if (parsed.help) {
      out(commandHelp(parsed.command));
      return 0;
    }
    await ensurePackageFiles();
    return await cmd.run({ opts: parsed.opts, args: parsed.args, flags: parsed.flags, io, out, err });
  } catch (e) {
    const verbose = parsed?.opts.verbose ?? (argv.includes("--verbose") || argv.includes("-v"));
    const message = e instanceof Error ? e.message : String(e);
    err(`error: ${message}`);
    if (verbose && e instanceof Error && e.stack) err(e.stack);
    if (e instanceof PyisolateError && e.code === "USAGE") return 2;
    return 1;
  }
}
