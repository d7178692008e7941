/**
 * The CLI's argument parser, on `node:util`'s `parseArgs` (which Node, Deno and Bun all
 * provide): global flags anywhere, a command's own flags after the command, `--` ends the
 * flags. Unknown commands and flags get a "did you mean" suggestion.
 * @module
 */
import { parseArgs as parseTokens } from "node:util";
import { splitArgs } from "../env/comfyui.ts";
import { closest } from "../util/text.ts";
import { GLOBAL_FLAGS, usageError, type Command, type FlagSpec, type GlobalOptions } from "./command.ts";

/** What the command line asks for. */
export interface ParsedArgs {
  /** The first positional argument: the command's name (not checked here). */
  command: string | null;
  /** Positional arguments after the command. */
  args: string[];
  /** The command's own flags, by long name without dashes (a list for a `multiple` flag). */
  flags: Record<string, string | boolean | string[]>;
  opts: GlobalOptions;
  help: boolean;
  version: boolean;
}

type TokenOptions = Record<string, { type: "string" | "boolean"; short?: string }>;

function tokenOptions(flags: readonly FlagSpec[]): TokenOptions {
  const out: TokenOptions = {};
  for (const f of flags) {
    out[f.name.slice(2)] = { type: f.value ? "string" : "boolean", ...(f.short ? { short: f.short.slice(1) } : {}) };
  }
  return out;
}

/** The tokens of `argv` as `parseArgs` reads them, unknown options included (as switches). */
function tokensOf(argv: readonly string[], flags: readonly FlagSpec[]) {
  return parseTokens({ args: [...argv], options: tokenOptions(flags), strict: false, allowPositionals: true, tokens: true }).tokens;
}

/** "Did you mean …?", or nothing. */
function suggestion(word: string, candidates: readonly string[]): string {
  const best = closest(word, candidates);
  return best ? ` Did you mean ${JSON.stringify(best)}?` : "";
}

/**
 * Parses argv (without `node` and the script) against the global flags and, once the command
 * is known, its own flags.
 * @throws {PyisolateError} `USAGE` for an unknown command or flag, a missing value, or a value given to a switch.
 */
export function parseArgs(argv: readonly string[], commands: Readonly<Record<string, Command>>): ParsedArgs {
  const out: ParsedArgs = {
    command: null,
    args: [],
    flags: {},
    opts: { customNodes: "./custom_nodes", cacheDir: "./.pyisolate", verbose: false, given: [] },
    help: false,
    version: false,
  };
  // The command is the first positional argument, found with the global flags alone.
  const first = tokensOf(argv, GLOBAL_FLAGS).find((t) => t.kind === "positional");
  const command = first?.kind === "positional" ? first.value : null;
  const cmd = command !== null && Object.hasOwn(commands, command) ? commands[command] : undefined;
  if (command !== null && command !== "help" && !cmd) {
    throw usageError(`Unknown command ${JSON.stringify(command)}.${suggestion(command, Object.keys(commands))} Commands: ${Object.keys(commands).join(", ")}.`);
  }
  out.command = command;
  const specs = [...GLOBAL_FLAGS, ...(cmd?.flags ?? [])];
  const byName = new Map(specs.map((f) => [f.name.slice(2), f]));
  const where = cmd ? ` for "${command}"` : "";
  const seeHelp = `Run "pyisolate ${cmd ? `${command} ` : ""}--help" for the options.`;
  let seenCommand = false;
  for (const t of tokensOf(argv, specs)) {
    if (t.kind === "positional") {
      if (seenCommand) out.args.push(t.value);
      seenCommand = true;
      continue;
    }
    if (t.kind !== "option") continue;
    const spec = byName.get(t.name);
    if (!spec) {
      const known = specs.flatMap((f) => [f.name, ...(f.short ? [f.short] : [])]);
      throw usageError(`Unknown option ${t.rawName}${where}.${suggestion(t.rawName, known)} ${seeHelp}`);
    }
    if (spec.value && t.value === undefined) throw usageError(`Option ${spec.name} needs a value (${spec.value}).`);
    if (!spec.value && t.inlineValue) throw usageError(`Option ${spec.name} takes no value.`);
    const value = spec.value ? t.value! : true;
    if (GLOBAL_FLAGS.includes(spec)) (out.opts.given as string[]).push(spec.name);
    switch (spec.name) {
      case "--custom-nodes":
        out.opts.customNodes = value as string;
        break;
      case "--cache-dir":
        out.opts.cacheDir = value as string;
        break;
      case "--python":
        out.opts.python = value as string;
        break;
      case "--comfyui":
        out.opts.comfyui = value as string;
        break;
      case "--comfyui-args":
        out.opts.comfyuiArgs = splitArgs(value as string);
        break;
      case "--ray":
        out.opts.ray = value as string;
        break;
      case "--ray-python":
        out.opts.rayPython = value as string;
        break;
      case "--verbose":
        out.opts.verbose = true;
        break;
      case "--help":
        out.help = true;
        break;
      case "--version":
        out.version = true;
        break;
      default:
        if (spec.multiple) out.flags[t.name] = [...((out.flags[t.name] as string[] | undefined) ?? []), value as string];
        else out.flags[t.name] = value;
    }
  }
  return out;
}
