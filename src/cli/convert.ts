/**
 * `pyisolate convert <workflow.json>`: a workflow in ComfyUI's UI format as the API prompt
 * the editor's "Export (API)" writes, from the packs' node schemas.
 * @module
 */
import { resolve } from "node:path";
import { createHost } from "../host.ts";
import { Logger, streamSink } from "../log.ts";
import { PyisolateError } from "../errors.ts";
import { stringifyExactJson } from "../util/exact_json.ts";
import type { Command } from "./command.ts";
import { readWorkflow } from "./run.ts";

/** `pyisolate convert`. */
export const convertCommand: Command = {
  usage: "convert <workflow.json> [--shared-modules DIRS]",
  summary: "print a UI-format workflow as an API-format prompt",
  description:
    "Reads a workflow ComfyUI's editor saved (UI format: nodes, links, widget values by\n" +
    "position) and prints the API prompt the editor's \"Export (API)\" would write for it, on\n" +
    "stdout: widget values named from the node schemas (the packs' nodes, from the metadata\n" +
    "cache when it can), links resolved through Reroute and Primitive nodes, muted nodes\n" +
    "dropped, bypassed nodes passed through, subgraphs flattened (ids outer:inner). A node no\n" +
    "pack provides is an error naming it and its id, unless muted or bypassed. An API-format\n" +
    "prompt is printed as it is.\n" +
    "Integers beyond 2^53 (seeds) are written exactly. Exit code 0, or 1 on an error.",
  flags: [
    { name: "--shared-modules", value: "DIRS", help: "folders (':'-separated) every Python process puts on sys.path, for packs that import shared modules" },
  ],
  async run(ctx) {
    const file = ctx.args[0];
    if (!file) throw new PyisolateError("USAGE", 'Missing the workflow file: pyisolate convert <workflow.json>. Run "pyisolate convert --help" for details.');
    if (ctx.args.length > 1) throw new PyisolateError("USAGE", `pyisolate convert takes one workflow file, got ${ctx.args.length}: ${ctx.args.join(" ")}.`);
    const workflow = readWorkflow(resolve(file));
    const logger = new Logger(streamSink((text) => ctx.io.stderr.write(text)));
    const host = await createHost({
      customNodes: resolve(ctx.opts.customNodes),
      cacheDir: ctx.opts.cacheDir,
      ...(ctx.opts.python ? { python: ctx.opts.python } : {}),
      ...(typeof ctx.flags["shared-modules"] === "string" ? { sharedModules: ctx.flags["shared-modules"].split(":").filter(Boolean) } : {}),
      logger,
    });
    try {
      ctx.out(stringifyExactJson(host.toPrompt(workflow), 2));
      return 0;
    } finally {
      await host.close();
    }
  },
};
