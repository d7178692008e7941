// The sandbox, proven with real processes under bubblewrap: a denied network connection (and
// an allowed one), a denied write outside the allowed folders (and the allowed ones), tensors
// crossing from a sandboxed pack, and the example packs' workflows under `sandbox: "required"`.
// Where bubblewrap cannot run, one line says these tests did not run and why.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:net";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHost, Logger, type Host } from "../src/mod.ts";
import type { Prompt } from "../src/executor/types.ts";
import { sandboxAvailability } from "../src/process/sandbox.ts";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..");
const available = sandboxAvailability();
if (!available.ok) process.stdout.write(`sandbox tests did not run: ${available.reason}\n`);

interface Report {
  sandboxed: string | null;
  connect: { ok: boolean; value?: string; error?: string };
  write_outside: { ok: boolean; error?: string };
  write_own: { ok: boolean };
  write_output: { ok: boolean };
  write_tmp: { ok: boolean };
  tmp_entries: string[];
}

describe.runIf(available.ok)("packs under bubblewrap", () => {
  const tmp = mkdtempSync(join(tmpdir(), "pyisolate-sandbox-"));
  const nodes = join(tmp, "custom_nodes");
  // Outside every allowed folder, and outside /tmp (which the sandbox replaces): visible, read-only.
  const outside = join(repo, ".pyisolate", `sandbox-outside-${process.pid}`);
  let host: Host;
  let server: Server;
  let port = 0;
  const received: string[] = [];
  const lines: string[] = [];

  beforeAll(async () => {
    cpSync(join(here, "fixtures", "sandbox_packs"), nodes, { recursive: true });
    mkdirSync(outside, { recursive: true });
    server = createServer((s) => s.on("data", (d) => received.push(String(d))));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as { port: number }).port;
    host = await createHost({ customNodes: nodes, cacheDir: join(tmp, "cache"), baseDir: tmp, logger: new Logger((_l, line) => lines.push(line)) });
  });

  afterAll(async () => {
    await host?.close();
    server?.close();
    rmSync(tmp, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  const probe = async (classType: string): Promise<Report> => {
    const p: Prompt = { "1": { class_type: classType, inputs: { port, outside: join(outside, `${classType}.txt`) } }, "2": { class_type: "SandboxReader", inputs: { image: ["1", 0] } } };
    const r = await host.run(p);
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    // The tensor it made crossed to an unsandboxed pack through /dev/shm.
    expect(r.outputs["2"]).toEqual({ text: ["12.00"] });
    return JSON.parse((r.outputs["1"] as { text: string[] }).text[0]!) as Report;
  };

  it("denies the network and writes outside the allowed folders; allows its own folder, output and a private /tmp", async () => {
    const r = await probe("SandboxProbe");
    expect(r.sandboxed).toBe("1");
    // Never forked from a template (that would escape the sandbox): spawned under bwrap, and the log says why.
    expect(lines.some((l) => l.includes("plain spawn: it runs in a sandbox"))).toBe(true);
    expect(r.connect.ok).toBe(false);
    expect(r.connect.error).toMatch(/Network is unreachable|Connection refused/);
    // Read-only where the folder is visible; not there at all where it lies under the private /tmp (a checkout in /tmp).
    expect(r.write_outside.ok).toBe(false);
    expect(r.write_outside.error).toBe(outside.startsWith("/tmp/") ? "FileNotFoundError: No such file or directory" : "OSError: Read-only file system");
    expect(existsSync(join(outside, "SandboxProbe.txt"))).toBe(false);
    expect(r.write_own.ok).toBe(true);
    expect(readFileSync(join(nodes, "Boxed", "scratch.txt"), "utf8")).toBe("written");
    expect(r.write_output.ok).toBe(true);
    expect(readFileSync(join(tmp, "output", "from_sandbox.txt"), "utf8")).toBe("written");
    // Its /tmp is its own: only what the host bound there (its socket folder) and what it wrote.
    expect(r.write_tmp.ok).toBe(true);
    expect(existsSync("/tmp/pyisolate-sandbox-private.txt")).toBe(false);
    expect(r.tmp_entries.filter((n) => !n.startsWith("pyisolate-sock-"))).toEqual(["pyisolate-sandbox-private.txt", ...[tmp, repo].filter((d) => d.startsWith("/tmp/")).map((d) => d.slice(5).split("/")[0]!)].filter((n, i, all) => all.indexOf(n) === i).sort());
    expect(received).toEqual([]);
  });

  it("allows the network when the manifest says network: true", async () => {
    const r = await probe("SandboxNetProbe");
    expect(r.sandboxed).toBe("1");
    expect(r.connect).toEqual({ ok: true, value: "connected" });
    await new Promise((res) => setTimeout(res, 100));
    expect(received).toContain("hello from the pack");
    expect(r.write_outside.ok).toBe(false);
  });

  it("a pack that requires a sandbox is refused, with the reason, when the host runs with sandbox off", async () => {
    const off = await createHost({ customNodes: nodes, cacheDir: join(tmp, "cache"), baseDir: tmp, sandbox: "off", logger: new Logger(() => {}) });
    try {
      const boxed = off.packs.find((p) => p.name === "Boxed")!;
      expect(boxed.error?.code).toBe("SANDBOX");
      expect(boxed.error?.message).toBe(`Pack "Boxed" requires a sandbox (its manifest's sandbox setting), but this host runs with sandbox "off". Run with sandbox "auto" or "required", or remove the setting from the pack's manifest.`);
      expect(off.packs.find((p) => p.name === "Reader")!.error).toBeUndefined();
    } finally {
      await off.close();
    }
  });
});

describe.runIf(available.ok)("the example packs under sandbox: required", () => {
  const tmp = mkdtempSync(join(tmpdir(), "pyisolate-sandbox-examples-"));
  const examples = join(repo, "examples");
  let host: Host;

  beforeAll(async () => {
    cpSync(join(examples, "custom_nodes"), join(tmp, "custom_nodes"), { recursive: true });
    host = await createHost({
      customNodes: join(tmp, "custom_nodes"),
      cacheDir: join(repo, ".pyisolate", "sandbox-examples"),
      baseDir: tmp,
      inputDir: join(examples, "input"),
      sharedModules: [join(examples, "shared_modules")],
      sandbox: "required",
      logger: new Logger(() => {}),
    });
  }, 600_000);

  afterAll(async () => {
    await host?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("every example workflow succeeds with every pack sandboxed", async () => {
    expect(host.packs.filter((p) => p.error).map((p) => p.error!.message)).toEqual([]);
    for (const name of ["demo.json", "image_pipeline.json", "model_cache.json"]) {
      const prompt = JSON.parse(readFileSync(join(examples, "workflows", name), "utf8")) as Prompt;
      const r = await host.run(prompt);
      expect(r.status, `${name}: ${JSON.stringify(r.error)}`).toBe("success");
    }
    expect(host.core.live().length).toBeGreaterThanOrEqual(5);
    // They really ran sandboxed: each process's parent is bubblewrap.
    for (const p of host.core.live()) expect(readFileSync(`/proc/${p.pid}/comm`, "utf8").trim()).toBe("bwrap");
  });
});
