/**
 * `pyisolate serve`: ComfyUI's HTTP API and `/ws` over the node packs, until SIGINT or
 * SIGTERM. Shutting down empties the queue, interrupts the running prompt and waits for it,
 * closes the clients, stops every Python process and releases every tensor segment; a
 * second signal stops at once.
 * @module
 */
import { resolve } from "node:path";
import process from "node:process";
import { hostOptions, type Command } from "./command.ts";
import { FOLDER_FLAGS, folderChoice } from "./folder_flags.ts";
import { PyisolateError } from "../errors.ts";
import { createHost } from "../host.ts";
import { Logger, streamSink } from "../log.ts";
import { serve } from "../server/server.ts";
import { plural } from "../util/text.ts";

function intFlag(value: string | boolean | string[] | undefined, name: string, min: number, max: number): number | undefined {
  if (typeof value !== "string") return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new PyisolateError("USAGE", `${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}.`);
  return n;
}

/** `pyisolate serve`. */
export const serveCommand: Command = {
  usage: "serve [--listen ADDR] [--port N] [folder options] [--shared-modules DIRS] [--max-upload-size MB] [--max-concurrent-prompts N] [--front-end-root DIR]",
  summary: "serve the ComfyUI editor, its HTTP API and /ws over the node packs",
  description:
    "Starts the packs as `run` does (no process starts until a node or a pack route needs it)\n" +
    "and answers ComfyUI's API: /prompt, /queue, /history, /object_info, /view, /upload/image,\n" +
    "/ws and the rest (see docs/server.md), every route also under /api. Prompts queue and run\n" +
    "one at a time; packs' routes (route_manifest.json and @PromptServer.instance.routes\n" +
    "decorators) run in their own processes. Loopback only unless --listen says otherwise.\n" +
    "\n" +
    "--max-concurrent-prompts N runs up to N queued prompts at once, started in queue order,\n" +
    "each with its own output cache, its events going to its own client. A Python process runs\n" +
    "one node at a time: prompts over different packs run side by side, prompts that need the\n" +
    "same pack take turns in its process, node by node. POST /interrupt with a prompt_id stops\n" +
    "that prompt only; without one, every running prompt.\n" +
    "\n" +
    "The stock ComfyUI editor is served at /: the comfyui-frontend-package of the host\n" +
    "Python's environment (as ComfyUI finds it), or the build in --front-end-root DIR;\n" +
    "without either, / answers 404 and the API works alone.\n" +
    "\n" +
    "Folders follow ComfyUI's flags, as for run: --base-directory, --output-directory,\n" +
    "--input-directory (uploads go there), --temp-directory, --user-directory (users,\n" +
    "settings, user data), --extra-model-paths-config.\n" +
    "\n" +
    "SIGINT or SIGTERM shuts down gracefully: the running prompt is interrupted, the Python\n" +
    "processes stop, the tensor segments are released, and the exit code is 0; a second\n" +
    "signal stops at once (exit code 130).",
  flags: [
    { name: "--listen", value: "ADDR", help: "address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)" },
    { name: "--port", value: "N", help: "TCP port (default 8188; 0 picks a free one)" },
    ...FOLDER_FLAGS,
    { name: "--shared-modules", value: "DIRS", help: "folders (':'-separated) every Python process puts on sys.path, for shared modules such as ProxiedSingletons" },
    { name: "--max-upload-size", value: "MB", help: "largest request body accepted (default 100)" },
    { name: "--max-concurrent-prompts", value: "N", help: "how many queued prompts run at once, 1 to 64 (default 1: one at a time, as ComfyUI)" },
    { name: "--front-end-root", value: "DIR", help: "the ComfyUI editor build to serve at / (default: comfyui-frontend-package in the host Python's environment)" },
  ],
  async run(ctx) {
    if (ctx.args.length > 0) throw new PyisolateError("USAGE", `pyisolate serve takes no arguments, got: ${ctx.args.join(" ")}.`);
    const port = intFlag(ctx.flags.port, "--port", 0, 65535) ?? 8188;
    const maxUpload = intFlag(ctx.flags["max-upload-size"], "--max-upload-size", 1, 1_000_000);
    const concurrent = intFlag(ctx.flags["max-concurrent-prompts"], "--max-concurrent-prompts", 1, 64);
    const listen = typeof ctx.flags.listen === "string" ? ctx.flags.listen : "127.0.0.1";
    const logger = new Logger(streamSink((text) => ctx.io.stderr.write(text)));
    const started = performance.now();
    const folders = folderChoice(ctx);
    const host = await createHost({
      ...hostOptions(ctx.opts),
      ...folders,
      customNodes: folders.customNodes!,
      ...(typeof ctx.flags["shared-modules"] === "string" ? { sharedModules: ctx.flags["shared-modules"].split(":").filter(Boolean) } : {}),
      logger,
    });
    let server;
    try {
      const frontendRoot = typeof ctx.flags["front-end-root"] === "string" ? resolve(ctx.flags["front-end-root"]) : undefined;
      server = await serve(host, {
        listen,
        port,
        logger,
        ...(maxUpload !== undefined ? { maxUploadSizeMb: maxUpload } : {}),
        ...(concurrent !== undefined ? { maxConcurrentPrompts: concurrent } : {}),
        ...(frontendRoot ? { frontendRoot } : {}),
      });
    } catch (e) {
      await host.close();
      throw e;
    }
    const nodes = Object.keys(host.nodes()).length;
    const failed = host.packs.filter((p) => p.error).length;
    ctx.out(
      `${plural(nodes, "node")} from ${plural(host.packs.length - failed, "pack")}${failed ? ` (${failed} skipped)` : ""}, ${plural(server.packRoutes.length, "pack route")}, ready in ${((performance.now() - started) / 1000).toFixed(2)} s.`,
    );
    ctx.out(
      server.frontendRoot
        ? `Serving the ComfyUI editor and its API on ${server.url} (Ctrl-C stops)`
        : `Serving ComfyUI's API on ${server.url} (no editor: install comfyui-frontend-package or give --front-end-root; Ctrl-C stops)`,
    );

    return await new Promise<number>((done) => {
      let stopping = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (stopping) {
          // A second signal: no more waiting.
          logger.warn(`${signal} again: stopping at once.`);
          host.core.killAllNow();
          process.exit(130);
        }
        stopping = true;
        logger.info(`${signal}: shutting down (the running prompt is interrupted).`);
        void (async () => {
          try {
            await server.close();
          } finally {
            await host.close();
            process.off("SIGINT", onSignal);
            process.off("SIGTERM", onSignal);
            logger.info("Server stopped.");
            done(0);
          }
        })();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    });
  },
};
