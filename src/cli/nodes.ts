/**
 * `pyisolate nodes`: the node classes each pack registers (from the metadata cache when it
 * is warm, else by starting the packs' processes), and the packs that registered none, with
 * why.
 * @module
 */
import { createHost, type PackStatus } from "../host.ts";
import { Logger } from "../log.ts";
import type { NodeInfo } from "../executor/types.ts";
import { hostOptions, type Command } from "./command.ts";
import { formatTable } from "./view.ts";

/** `pyisolate nodes`. */
export const nodesCommand: Command = {
  usage: "nodes [pack...] [--json]",
  summary: "list the node classes each pack registers (all packs, or the named ones)",
  description:
    "Registers every pack as `run` does — from the metadata cache when nothing changed (no process\n" +
    "starts), else by importing it — and prints each node class with its pack, category and display\n" +
    "name. A pack that failed to import is listed with the exception, file and line. With --json:\n" +
    "every pack with its node classes' /object_info entries (their schemas) and the HTTP routes it\n" +
    "registered at import time (which `pyisolate serve` serves). Exit code 1 when a pack failed.",
  flags: [{ name: "--json", help: "print JSON: packs with their nodes' /object_info entries and recorded routes" }],
  async run(ctx) {
    const lines: string[] = [];
    const host = await createHost({
      ...hostOptions(ctx.opts),
      ...(ctx.args.length > 0 ? { packs: ctx.args } : {}),
      logger: new Logger((level, line) => {
        if (ctx.opts.verbose || level === "warn") lines.push(line);
      }),
    });
    try {
      for (const l of lines) ctx.err(l.startsWith("][") && !ctx.opts.verbose ? `warning: ${l}` : l);
      const info = host.nodes();
      const byPack = new Map<string, Array<[string, NodeInfo]>>();
      for (const node of host.registry.nodes()) {
        const list = byPack.get(node.owner.pack) ?? [];
        list.push([node.classType, info[node.classType]!]);
        byPack.set(node.owner.pack, list);
      }
      const failed = host.packs.filter((p) => p.source === "failed");
      const routes = host.registry.packRoutes();
      if (ctx.flags.json) {
        const packs = host.packs.map((p) => ({
          name: p.name,
          kind: p.kind,
          source: p.source,
          nodes: Object.fromEntries(byPack.get(p.name) ?? []),
          routes: routes[p.name]?.routes ?? [],
          static_routes: routes[p.name]?.static_routes ?? [],
          ...(p.error ? { error: p.error.message } : {}),
          ...(p.importError ? { importError: p.importError } : {}),
        }));
        ctx.out(JSON.stringify({ comfyui: host.comfyui, packs }, null, 2));
        return failed.length > 0 ? 1 : 0;
      }
      const rows: string[][] = [];
      for (const p of host.packs) {
        for (const [cls, i] of (byPack.get(p.name) ?? []).sort((a, b) => a[0].localeCompare(b[0]))) {
          rows.push([p.name, cls, String(i.category ?? ""), String(i.display_name ?? cls)]);
        }
      }
      if (rows.length > 0) for (const line of formatTable(["PACK", "NODE CLASS", "CATEGORY", "DISPLAY NAME"], rows)) ctx.out(line);
      ctx.out();
      const summary = (p: PackStatus) => {
        if (p.source === "failed") return `${p.name} (${p.kind}): failed`;
        const r = (routes[p.name]?.routes.length ?? 0) + (routes[p.name]?.static_routes.length ?? 0);
        return `${p.name} (${p.kind}): ${p.nodes} ${p.nodes === 1 ? "node" : "nodes"}${r ? `, ${r} HTTP ${r === 1 ? "route" : "routes"} (served by pyisolate serve)` : ""}${p.source === "cache" ? ", from cache" : ""}`;
      };
      for (const p of host.packs) ctx.out(summary(p));
      for (const p of failed) ctx.err(`error: ${p.error?.message ?? `pack ${p.name} registered no nodes`}`);
      return failed.length > 0 ? 1 : 0;
    } finally {
      await host.close();
    }
  },
};
