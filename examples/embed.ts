/**
 * Embedding pyisolate in a TypeScript program: start a host over the example packs, list
 * the nodes, run a workflow while printing ComfyUI's events, print the results, close.
 *
 *   npx deno run -A examples/embed.ts [workflow.json]        # Deno
 *   npx bun examples/embed.ts [workflow.json]                # Bun
 *   node --import ./workers/ts_register.mjs examples/embed.ts [workflow.json]   # Node 20+
 *
 * The default workflow is `examples/workflows/demo.json`. Environments and the metadata
 * cache go to `.pyisolate/` (a second run starts from the cache); saved images go to a
 * folder under the system's temp directory, printed at the end.
 * @module
 */
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createHost, type ExecutionEvent, type Prompt } from "../src/mod.ts";

const examples = dirname(fileURLToPath(import.meta.url));
const workflow = process.argv[2] ?? join(examples, "workflows", "demo.json");
const prompt = JSON.parse(readFileSync(workflow, "utf8")) as Prompt;
const outputDir = join(tmpdir(), "pyisolate-embed-output");

const host = await createHost({
  customNodes: join(examples, "custom_nodes"),
  cacheDir: ".pyisolate",
  inputDir: join(examples, "input"),
  outputDir,
  sharedModules: [join(examples, "shared_modules")], // where model_cache.py (a ProxiedSingleton) lives
});

try {
  for (const p of host.packs) console.log(`pack ${p.name.padEnd(18)} ${p.kind.padEnd(8)} ${p.source.padEnd(7)} ${p.nodes} node(s)`);
  console.log(`${Object.keys(host.nodes()).length} node classes: ${Object.keys(host.nodes()).sort().join(", ")}\n`);

  const onEvent = (e: ExecutionEvent) => {
    const d = e.data;
    if (e.type === "executing") console.log(`  executing ${d.node ?? "(done)"}`);
    else if (e.type === "executed") console.log(`  executed  ${d.node}: ${JSON.stringify(d.output)}`);
    else if (e.type === "execution_cached") console.log(`  cached    [${(d.nodes as string[]).join(", ")}]`);
    else if (e.type === "progress") console.log(`  progress  ${d.node} ${d.value}/${d.max}`);
    else console.log(`  ${e.type}`);
  };
  for (const run of [1, 2]) {
    console.log(`run ${run} of ${workflow}`);
    const t0 = performance.now();
    const result = await host.run(prompt, { onEvent });
    console.log(`status ${result.status} in ${(performance.now() - t0).toFixed(1)} ms`);
    if (result.status === "invalid") console.log(JSON.stringify(result.validation, null, 2));
    if (result.error) console.log(`error in node ${result.error.node_id}: ${result.error.exception_message}`);
    for (const n of result.nodes) {
      const where = n.isolated ? "isolated" : "shared";
      console.log(`  ${n.id.padStart(3)} ${n.classType.padEnd(22)} ${(n.pack ?? "?").padEnd(16)} ${where.padEnd(8)} ${n.status.padEnd(8)} ${n.ms.toFixed(1)} ms`);
    }
    console.log("");
  }
  console.log(`saved images are in ${outputDir}`);
} finally {
  await host.close();
}
