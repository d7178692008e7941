// `pyisolate serve` as a user runs it, under Node, Deno and Bun: a real process on a free
// port, a real prompt over HTTP and /ws, and SIGTERM or SIGINT while the prompt runs — the
// prompt is interrupted, the Python processes stop, no segment is left, the exit code is 0.
// And the CLI's exact JSON: a seed of 2^64 - 1 from a workflow file through `pyisolate run --json`.
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../src/cli/main.ts";
import { call, until, WsClient } from "./shared/server_client.ts";

const root = join(import.meta.dirname, "..");
const tmp = mkdtempSync(join(tmpdir(), "pyisolate-serve-"));
cpSync(join(root, "test", "shared", "server_packs"), join(tmp, "custom_nodes"), { recursive: true });
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const common = ["--custom-nodes", join(tmp, "custom_nodes"), "--cache-dir", join(tmp, "cache")];

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err };
}

/** Pids of live processes started by host `pid` (their environment names it). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, "latin1").split("\0").includes(`PYISOLATE_HOST_PID=${pid}`)) out.push(Number(d));
    } catch {
      // gone, or not ours
    }
  }
  return out;
}

/** The host id a process was started with (its segment folder is `/dev/shm/pyisolate-<id>`). */
/**
 * The id of the host running in process `pid`: the segment folder whose liveness socket
 * (`/dev/shm/pyisolate-<id>/alive`) that process listens on. (Its children's environment does
 * not say: they fork from a template process.)
 */
function hostIdOf(pid: number): string | undefined {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  for (const line of readFileSync("/proc/net/unix", "latin1").split("\n")) {
    const f = line.trim().split(/\s+/);
    const m = /\/pyisolate-([0-9A-Za-z]+)\/alive$/.exec(f[7] ?? "");
    if (m && inodes.has(f[6]!)) return m[1];
  }
  return undefined;
}

describe("pyisolate serve", () => {
  // The same CLI on each runtime's own HTTP server: SIGTERM under Node, Ctrl-C (SIGINT) under Deno and Bun.
  const bin = join(root, "node_modules", ".bin");
  const runtimes = [
    { runtime: "node", signal: "SIGTERM", argv: [process.execPath, "--import", "./workers/ts_register.mjs", "src/cli/bin.ts"] },
    { runtime: "deno", signal: "SIGINT", argv: [join(bin, "deno"), "run", "-A", "src/cli/bin.ts"] },
    { runtime: "bun", signal: "SIGINT", argv: [join(bin, "bun"), "src/cli/bin.ts"] },
  ] as const;
  it.each(runtimes)("serves under $runtime until $signal, which interrupts the running prompt, stops every process and releases every segment", { timeout: 240_000 }, async ({ signal, argv }) => {
    const child = spawn(argv[0], [...argv.slice(1), "serve", "--port", "0", ...common, "--output", join(tmp, "out"), "--input", join(tmp, "in")], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    onTestFinished(() => void child.kill("SIGKILL"));
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const base = await until("the server's address", () => /Serving .* on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1], 180_000);
    expect(out).toMatch(/6 nodes from 2 packs, 14 pack routes, ready in/);
    const ws = await WsClient.open(base);
    const r = await call(base, "/prompt", {
      body: { client_id: ws.sid, prompt: { "1": { class_type: "SlowProgress", inputs: { steps: 2000, delay: 0.05 } }, "2": { class_type: "SeedEcho", inputs: { seed: 1, after: ["1", 0] } } } },
    });
    expect(r.status, r.text).toBe(200);
    await ws.next((m) => m.type === "progress");
    const kids = childrenOf(child.pid!);
    expect(kids.length).toBeGreaterThan(0);
    const hostId = hostIdOf(child.pid!);
    expect(hostId).toMatch(/^[0-9A-Za-z]+$/);
    expect(existsSync(`/dev/shm/pyisolate-${hostId}`)).toBe(true);
    child.kill(signal);
    expect(await exited, err).toBe(0);
    expect(err).toContain(`${signal}: shutting down`);
    expect(err).toContain("Server stopped.");
    // The client saw the prompt interrupted before the server went away.
    expect(ws.messages.some((m) => m.type === "execution_interrupted")).toBe(true);
    await until("the client to be closed", () => (ws.closed !== null ? true : undefined));
    await until("the Python processes to exit", () => (kids.every((p) => !childrenOf(child.pid!).includes(p)) ? true : undefined), 10_000);
    expect(existsSync(`/dev/shm/pyisolate-${hostId}`), "the host's segment folder is gone").toBe(false);
  });

  it("says which port is in use (a usage error: exit code 2)", { timeout: 120_000 }, async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await cli("serve", "--port", String(port), ...common);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`Cannot listen on 127.0.0.1:${port}: port ${port} is in use; pass another --port (0 picks a free one).`);
      expect((await cli("serve", "--port", "70000", ...common)).err).toContain("--port must be a whole number from 0 to 65535");
    } finally {
      blocker.close();
    }
  });

  it("pyisolate run --json: a seed of 2^64 - 1 from a workflow file reaches the node and is printed exactly", { timeout: 120_000 }, async () => {
    const file = join(tmp, "seed.json");
    writeFileSync(file, '{"1": {"class_type": "SeedEcho", "inputs": {"seed": 18446744073709551615}}}');
    const r = await cli("run", file, ...common, "--output", join(tmp, "out"), "--json");
    expect(r.code, r.err).toBe(0);
    const executed = r.out.split("\n").find((l) => l.startsWith('{"type":"executed"'))!;
    expect(executed).toContain('"text":["18446744073709551615|int"],"seed":[18446744073709551615]');
    expect(r.out.trim().split("\n").map((l) => (JSON.parse(l) as { type: string }).type)).toEqual([
      "execution_start",
      "execution_cached",
      "progress_state",
      "executing",
      "executed",
      "progress_state",
      "execution_success",
      "executing",
    ]);
  });
});
