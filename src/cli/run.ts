/**
 * `pyisolate run <workflow.json>`: the CLI's main job. Builds what the packs need (with
 * progress), runs an API-format prompt with a live display of each node (pack, isolated or
 * shared, cached or executed, time), and ends with a table; `--json` prints ComfyUI's events
 * as JSON lines instead.
 * @module
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { hostOptions, type Command, type CommandContext } from "./command.ts";
import { plural } from "../util/text.ts";
import { formatTable, ProgressView, SPINNER, StatusLine, type CliIo } from "./view.ts";
import { PyisolateError } from "../errors.ts";
import type { RunResult } from "../executor/executor.ts";
import type { ExecutionEvent, Prompt } from "../executor/types.ts";
import { displayPath } from "../util/fs.ts";
import { createHost, type Host } from "../host.ts";
import { CtrlC, INTERRUPTED_EXIT_CODE } from "./ctrl_c.ts";
import { FOLDER_FLAGS, folderChoice } from "./folder_flags.ts";
import { Logger, streamSink } from "../log.ts";
import { discoverPacks } from "../manifest/manifest.ts";
import { parseExactJson, stringifyExactJson } from "../util/exact_json.ts";
import { Buffer } from "node:buffer";
import { isUiWorkflow, type UiWorkflow } from "../workflow/ui_workflow.ts";

/**
 * Reads a workflow file: an API-format prompt, a `{"prompt": {...}}` body as posted to
 * ComfyUI's `/prompt`, or a workflow in the UI format (returned as it is, for
 * `host.toPrompt` to convert); a clear error for anything else.
 */
export function readWorkflow(file: string): Prompt | UiWorkflow {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new PyisolateError("NOT_FOUND", `Cannot read the workflow ${displayPath(file)}: ${(e as Error).message}.`);
  }
  let data: unknown;
  try {
    // Exact: a seed of 2^64 - 1 stays that seed (JSON.parse would round it).
    data = parseExactJson(text);
  } catch (e) {
    throw new PyisolateError("VALIDATION", `${displayPath(file)} is not valid JSON: ${(e as Error).message.replace(/\s+/g, " ")}.`);
  }
  if (!data || typeof data !== "object" || Array.isArray(data)) {
    throw new PyisolateError(
      "VALIDATION",
      `${displayPath(file)} must hold a workflow: ComfyUI's UI format ({"nodes", "links"}) or an API-format prompt ({"<id>": {"class_type", "inputs"}}).`,
    );
  }
  if (isUiWorkflow(data)) return data;
  const obj = data as Record<string, unknown>;
  // A `{"prompt": {...}}` body, as posted to ComfyUI's /prompt, is accepted too.
  if (obj.prompt && typeof obj.prompt === "object" && !("class_type" in (obj.prompt as object))) return obj.prompt as Prompt;
  return obj as unknown as Prompt;
}

/** Reads an API-format prompt file; a UI-format workflow is refused (convert it with a host). */
export function readPrompt(file: string): Prompt {
  const w = readWorkflow(file);
  if (isUiWorkflow(w)) {
    throw new PyisolateError("VALIDATION", `${displayPath(file)} is a workflow in ComfyUI's UI format; convert it first ("pyisolate convert").`);
  }
  return w;
}

/**
 * One event as a JSON line, `{type, data}` as ComfyUI's /ws sends it, every integer exact; a
 * binary event's payload as base64 (`{"type": 1, "data": {"base64": "…"}}`).
 */
function jsonLine(e: { type: unknown; data: Record<string, unknown> }): string {
  if (typeof e.type === "number" && e.data.bytes instanceof Uint8Array) {
    return stringifyExactJson({ type: e.type, data: { base64: Buffer.from(e.data.bytes).toString("base64") } });
  }
  return stringifyExactJson({ type: e.type, data: e.data });
}

function ms(n: number): string {
  return n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(1)} ms`;
}

/** The live node display: a line per finished node, and on a terminal a status line for running ones. */
class NodeView {
  #io: CliIo;
  #tty: boolean;
  #running = new Map<string, { classType: string; started: number; progress?: string }>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #status = false;
  #frame = 0;

  readonly describe: (classType: string) => { pack: string; kind: string };

  constructor(io: CliIo, describe: (classType: string) => { pack: string; kind: string }) {
    this.describe = describe;
    this.#io = io;
    this.#tty = Boolean(io.stdout.isTTY);
    if (this.#tty) this.#timer = setInterval(() => this.#drawStatus(), 100);
  }

  /** Removes the live status line (before anything else is written to the terminal). */
  clearStatus(): void {
    if (this.#status) this.#io.stdout.write("\x1b[2K\r");
    this.#status = false;
  }

  #drawStatus(): void {
    if (this.#running.size === 0) return this.clearStatus();
    const now = performance.now();
    const parts = [...this.#running].map(([id, r]) => `#${id} ${r.classType} ${((now - r.started) / 1000).toFixed(1)}s${r.progress ? ` ${r.progress}` : ""}`);
    const columns = Math.max(40, (this.#io.stdout.columns ?? 100) - 1);
    let line = `${SPINNER[this.#frame++ % SPINNER.length]} running: ${parts.join(", ")}`;
    if ([...line].length > columns) line = `${[...line].slice(0, columns - 3).join("")}...`;
    this.#io.stdout.write(`\x1b[2K\r${line}`);
    this.#status = true;
  }

  line(text: string): void {
    this.clearStatus();
    this.#io.stdout.write(`${text}\n`);
  }

  event(e: ExecutionEvent, classOf: (id: string) => string): void {
    const d = e.data;
    if (e.type === "executing" && typeof d.node === "string") {
      this.#running.set(d.node, { classType: classOf(d.node), started: performance.now() });
    } else if (e.type === "progress" && typeof d.node === "string") {
      const r = this.#running.get(d.node);
      if (r) r.progress = `${String(d.value)}/${String(d.max)}`;
    } else if (e.type === "execution_cached" && Array.isArray(d.nodes)) {
      for (const id of d.nodes as string[]) {
        const c = classOf(id);
        const o = this.describe(c);
        this.line(`  cached    #${id.padEnd(4)} ${c} (${o.pack}, ${o.kind})`);
      }
    }
  }

  finished(id: string, classType: string, status: string, took: number): void {
    this.#running.delete(id);
    const o = this.describe(classType);
    const mark = status === "executed" ? "✓" : status === "failed" ? "✗" : status === "interrupted" ? "■" : " ";
    this.line(`${mark} ${status.padEnd(9)} #${id.padEnd(4)} ${classType} (${o.pack}, ${o.kind}) ${ms(took)}`);
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.clearStatus();
  }
}

function printValidation(ctx: CommandContext, r: RunResult, skippedPacks: string[]): void {
  const v = r.validation;
  const ids = Object.keys(v.node_errors);
  if (ids.length === 0) {
    ctx.err(`error: the prompt failed validation: ${v.error?.message ?? "invalid prompt"}${v.error?.details ? `: ${v.error.details}` : ""}`);
    return;
  }
  ctx.err(`error: the prompt failed validation (${plural(ids.length, "node")}):`);
  for (const [id, e] of Object.entries(v.node_errors)) {
    for (const x of e.errors) {
      // "Node ID '#3'" repeats what the line already says.
      const details = x.details && !/^Node ID '#/.test(x.details) ? `: ${x.details}` : "";
      ctx.err(`  node ${id} (${e.class_type || "?"}): ${x.message.replace(/\.$/, "")}${details}`);
    }
  }
  if (skippedPacks.length > 0 && Object.values(v.node_errors).some((e) => e.errors.some((x) => x.type === "invalid_prompt"))) {
    ctx.err(`note: ${plural(skippedPacks.length, "pack")} could not load (see above), so their nodes are missing: ${skippedPacks.join(", ")}`);
  }
}

function printFailure(ctx: CommandContext, r: RunResult, describe: (c: string) => { pack: string; kind: string }): void {
  const e = r.error ?? {};
  if (r.status === "interrupted") {
    ctx.err(`interrupted${e.node_id ? ` at node ${String(e.node_id)} (${String(e.node_type)})` : ""}.`);
    return;
  }
  const where = e.node_type ? describe(String(e.node_type)) : undefined;
  ctx.err(`error: node ${String(e.node_id)} (${String(e.node_type)}${where ? `, pack ${where.pack}` : ""}) failed: ${String(e.exception_type)}: ${String(e.exception_message)}`);
  const tb = e.traceback as string[] | undefined;
  if (tb && tb.length > 0) {
    // The runtime's own frames (how the call reached the node) only with --verbose.
    const frames = ctx.opts.verbose ? tb : tb.filter((f) => !/[\\/]pyisolate_runtime[\\/]/.test(f));
    ctx.err(`Traceback (most recent call last)${frames.length < tb.length ? `, without ${plural(tb.length - frames.length, "frame")} of pyisolate's runtime (--verbose shows them)` : ""}:`);
    for (const frame of frames) ctx.err(frame.replace(/\n$/, ""));
  }
}

/** Strings worth showing from a node's ui output: text, and the files it saved. */
function uiSummary(ui: Record<string, unknown>): string[] {
  const lines: string[] = [];
  const text = ui.text;
  if (Array.isArray(text)) for (const t of text) lines.push(String(t));
  for (const key of ["images", "audio", "files"]) {
    const items = ui[key];
    if (!Array.isArray(items)) continue;
    for (const it of items as { filename?: string; subfolder?: string; type?: string }[]) {
      if (it && typeof it.filename === "string") lines.push(`${it.type ?? "output"}: ${it.subfolder ? `${it.subfolder}/` : ""}${it.filename}`);
    }
  }
  return lines;
}

/** What Ctrl-C stopped, for people: what ran, what was stopped, what never started. */
function interruptSummary(prompt: Prompt, r: RunResult | undefined): string {
  if (!r) return "Interrupted (Ctrl-C) during start-up: no node ran.";
  const seen = new Set(r.nodes.map((n) => n.id));
  const list = (ns: { id: string; classType: string }[]) => ns.map((n) => `#${n.id} ${n.classType}`).join(", ");
  const ran = r.nodes.filter((n) => n.status === "executed" || n.status === "cached");
  const stopped = r.nodes.filter((n) => n.status === "interrupted" || n.status === "failed");
  const never = Object.keys(prompt).filter((id) => !seen.has(id) || r.nodes.find((n) => n.id === id)?.status === "skipped");
  return [
    `Interrupted (Ctrl-C): ran ${plural(ran.length, "node")}${ran.length ? ` (${list(ran)})` : ""}`,
    `stopped ${plural(stopped.length, "running node")}${stopped.length ? ` (${list(stopped)})` : ""}`,
    `${plural(never.length, "node")} not started${never.length ? ` (${never.map((id) => `#${id}`).join(", ")})` : ""}.`,
  ].join("; ");
}

/** `pyisolate run`. */
export const runCommand: Command = {
  usage: "run <workflow.json> [folder options] [--shared-modules DIRS] [--json]",
  summary: "run a workflow (UI or API format) over the node packs",
  description:
    "Builds the environments the packs need (with progress), registers their nodes (from the\n" +
    "metadata cache when it can: no process starts until a node runs), validates the prompt\n" +
    "and runs it. The workflow is a file ComfyUI's editor saved (UI format: converted as its\n" +
    "\"Export (API)\" does, see pyisolate convert) or an API-format prompt. Each node shows\n" +
    "its pack, isolated or shared, cached or executed, and time; a table follows. Output\n" +
    "nodes save into the output folder.\n" +
    "\n" +
    "Folders follow ComfyUI's flags: --base-directory (models/, input/, output/, temp/, user/,\n" +
    "custom_nodes/ under it), --output-directory, --input-directory, --temp-directory,\n" +
    "--user-directory, and extra_model_paths.yaml (the ComfyUI install's or the base directory's,\n" +
    "then each --extra-model-paths-config), read as ComfyUI reads them.\n" +
    "\n" +
    "--json prints one JSON object per line instead: ComfyUI's events as\n" +
    '{"type": "<event>", "data": {...}}, in the order and shapes pyisolate serve sends them\n' +
    "on /ws (execution_start, execution_cached, then per node progress_state, executing,\n" +
    "progress…, executed — with the node's ui output —; execution_success, execution_error\n" +
    "or execution_interrupted; executing with node null); a binary event (a preview) as\n" +
    '{"type": <number>, "data": {"base64": "..."}}; or {"type": "prompt_error", "data":\n' +
    '{"error", "node_errors"}} when the prompt fails validation. Logs go to stderr.\n' +
    "\n" +
    "Ctrl-C interrupts the running prompt, says what ran and what was stopped, stops every\n" +
    "process and releases every tensor segment; a second Ctrl-C exits at once.\n" +
    "\n" +
    "Exit code 0 when the prompt ran, 1 when it failed validation or a node failed, 130 after Ctrl-C.",
  flags: [
    ...FOLDER_FLAGS,
    { name: "--shared-modules", value: "DIRS", help: "folders (':'-separated) every Python process puts on sys.path, for shared modules such as ProxiedSingletons" },
    { name: "--json", help: "print ComfyUI events as JSON lines on stdout" },
  ],
  async run(ctx) {
    const file = ctx.args[0];
    if (!file) throw new PyisolateError("USAGE", 'Missing the workflow file: pyisolate run <workflow.json>. Run "pyisolate run --help" for details.');
    if (ctx.args.length > 1) throw new PyisolateError("USAGE", `pyisolate run takes one workflow file, got ${ctx.args.length}: ${ctx.args.join(" ")}.`);
    const workflow = readWorkflow(resolve(file));
    const json = ctx.flags.json === true;
    const folders = folderChoice(ctx);
    const customNodes = folders.customNodes!;
    const outputDir = folders.outputDir ?? join(folders.baseDir ?? resolve("."), "output");
    // In --json mode stdout carries only events; everything for people goes to stderr.
    const human: CliIo = json ? { stdout: ctx.io.stderr, stderr: ctx.io.stderr } : ctx.io;
    const say = (line = "") => void human.stdout.write(`${line}\n`);

    const started = performance.now();
    const found = discoverPacks(customNodes).packs;
    const isolated = found.filter((p) => p.kind === "isolated").map((p) => p.name);
    // The build view appears only when an environment really builds, and is finished as soon
    // as every pack's environment is settled (before processes start and log). Otherwise a
    // status line with a spinner and the elapsed time shows that start-up is under way.
    let view: ProgressView | undefined;
    const settled = new Set<string>();
    let nodeView: NodeView | undefined;
    const startup = new StatusLine(human.stdout);
    const clearLive = () => {
      nodeView?.clearStatus();
      startup.clear();
    };
    // Log lines clear the live status lines first, so the two never share a line.
    const toStderr = streamSink((text) => ctx.io.stderr.write(text));
    const logger = new Logger((level, line) => {
      clearLive();
      toStderr(level, line);
      const spawning = /^\]\[ (\S+) .*spawning/.exec(line);
      if (spawning) startup.detail(`starting ${spawning[1]}'s process`);
    });
    let host: Host | undefined;
    let result: RunResult | undefined;
    const ctrlC = new CtrlC(
      () => host?.interrupt(),
      (line) => {
        clearLive();
        ctx.io.stderr.write(`${line}\n`);
      },
    );
    try {
      startup.set(`starting: ${plural(found.length, "pack")}`);
      host = await createHost({
        ...hostOptions(ctx.opts),
        ...folders,
        customNodes,
        ...(typeof ctx.flags["shared-modules"] === "string" ? { sharedModules: ctx.flags["shared-modules"].split(":").filter(Boolean) } : {}),
        logger,
        onBuildProgress: (p) => {
          const done = p.phase === "built" || p.phase === "cached" || p.phase === "failed" || p.phase === "shared";
          if (!view && (p.phase === "waiting" || p.phase === "venv" || p.phase === "install")) {
            startup.stop();
            view = new ProgressView(human, isolated);
          }
          if (view && !view.finished) {
            view.update(p);
            if (done) settled.add(p.pack);
            if (isolated.every((n) => settled.has(n))) {
              view.finish();
              startup.set("starting: registering nodes", "", true);
            }
          } else if (done) settled.add(p.pack);
        },
      });
      if (view && !view.finished) view.finish();
      startup.stop();
      const startupMs = performance.now() - started;
      if (ctrlC.interrupted) {
        ctx.err(interruptSummary({}, undefined));
        return INTERRUPTED_EXIT_CODE;
      }
      const h = host;
      const info = h.nodes();
      // A UI-format workflow becomes the prompt the editor's "Export (API)" would write.
      const prompt = h.toPrompt(workflow);
      const owners = new Map<string, { pack: string; kind: string }>();
      const describe = (classType: string) => {
        let o = owners.get(classType);
        if (!o) {
          const w = h.registry.owner(classType);
          o = w ? { pack: w.pack, kind: w.isolated ? "isolated" : "shared" } : { pack: "?", kind: "?" };
          owners.set(classType, o);
        }
        return o;
      };
      const classOf = (id: string) => prompt[id]?.class_type ?? "?";
      const failedPacks = h.packs.filter((p) => p.error);
      if (!json) {
        say(`${plural(Object.keys(info).length, "node")} from ${plural(h.packs.length - failedPacks.length, "pack")} ready in ${ms(startupMs)}${failedPacks.length ? ` (${plural(failedPacks.length, "pack")} skipped: ${failedPacks.map((p) => p.name).join(", ")})` : ""}.`);
      }
      nodeView = json ? undefined : new NodeView(ctx.io, describe);
      const nv = nodeView;
      const t0 = performance.now();
      try {
        result = await h.run(prompt, {
          onEvent: (e) => {
            if (json) ctx.out(jsonLine(e));
            else nv!.event(e, classOf);
          },
          onNode: (n) => nv?.finished(n.id, n.classType, n.status, n.ms),
        });
      } finally {
        nodeView?.close();
      }
      const r = result;
      const runMs = performance.now() - t0;

      if (r.status === "invalid") {
        if (json) ctx.out(jsonLine({ type: "prompt_error", data: { error: r.validation.error, node_errors: r.validation.node_errors } }));
        printValidation(json ? { ...ctx, err: (l = "") => void ctx.io.stderr.write(`${l}\n`) } : ctx, r, failedPacks.map((p) => p.name));
        return ctrlC.interrupted ? INTERRUPTED_EXIT_CODE : 1;
      }
      if (json) {
        if (ctrlC.interrupted) ctx.err(interruptSummary(prompt, r));
        return ctrlC.interrupted ? INTERRUPTED_EXIT_CODE : r.status === "success" ? 0 : 1;
      }

      ctx.out();
      const rows = r.nodes.map((n) => {
        const o = describe(n.classType);
        return [`#${n.id}`, n.classType, o.pack, o.kind, n.status, n.status === "cached" || n.status === "skipped" ? "-" : ms(n.ms)];
      });
      for (const line of formatTable(["NODE", "CLASS", "PACK", "KIND", "RESULT", "TIME"], rows)) ctx.out(line);
      const shown = Object.entries(r.outputs).flatMap(([id, ui]) => uiSummary(ui).map((s) => `  #${id} ${classOf(id)}: ${s}`));
      if (shown.length > 0) {
        ctx.out();
        ctx.out("Outputs:");
        for (const s of shown) ctx.out(s);
      }
      const count = (s: string) => r.nodes.filter((n) => n.status === s).length;
      ctx.out();
      const extra = (["failed", "interrupted", "skipped"] as const).filter((s) => count(s) > 0).map((s) => `, ${count(s)} ${s}`).join("");
      ctx.out(`${count("executed")} executed, ${count("cached")} cached${extra} in ${ms(runMs)} (start-up ${ms(startupMs)}); outputs in ${displayPath(outputDir)}`);
      if (ctrlC.interrupted) {
        ctx.err(interruptSummary(prompt, r));
        return INTERRUPTED_EXIT_CODE;
      }
      if (r.status !== "success") {
        printFailure(ctx, r, describe);
        return 1;
      }
      return 0;
    } finally {
      startup.stop();
      if (view && !view.finished) view.finish();
      if (host) {
        const segments = host.segments.onDisk().length;
        await host.close();
        if (ctrlC.interrupted) ctx.err(`Stopped every process and released ${plural(segments, "shared-memory segment")}.`);
      }
      ctrlC.dispose();
    }
  },
};
