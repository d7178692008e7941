// The fault suite: real processes failing in every way a long-lived host must survive. Each
// test asserts the error names the pack, the node and the cause; that the next prompt to the
// same pack and to other packs succeeds; and that this process's children, file descriptors,
// sockets and /dev/shm segments are back at their baseline.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHost, Logger, type Host } from "../src/mod.ts";
import type { RunResult } from "../src/executor/executor.ts";
import type { ExecutionEvent, Prompt } from "../src/executor/types.ts";
import { TensorRef } from "../src/values/tensors.ts";
import { viewTensor } from "../src/values/view.ts";
import { descendants, waitFor } from "./fault_util.ts";

const here = dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "pyisolate-faults-"));
const nodes = join(tmp, "custom_nodes");
const marker = join(tmp, "evil-marker");
const lines: { t: number; line: string }[] = [];
let host: Host;

const GRACE_MS = 1_500;
const HEALTH = { intervalMs: 250, timeoutMs: 1_500 };

function start(): Promise<Host> {
  return createHost({
    customNodes: nodes,
    cacheDir: join(tmp, "cache"),
    baseDir: tmp,
    logger: new Logger((_level, line) => lines.push({ t: Date.now(), line })),
    interruptGraceMs: GRACE_MS,
    healthCheck: HEALTH,
  });
}

/** What must be back after a fault: children, fds, sockets, segments not held by the cache. */
function snapshot() {
  const fds = readdirSync("/proc/self/fd");
  let sockets = 0;
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith("socket:")) sockets++;
    } catch {
      // closed meanwhile (readdir's own fd)
    }
  }
  const onDisk = host.segments.onDisk();
  const held = new Set(host.segments.retained());
  return { children: descendants(process.pid).length, fds: fds.length, sockets, segments: onDisk.length, unheld: onDisk.filter((s) => !held.has(s)) };
}

let baseline: ReturnType<typeof snapshot>;

/** The prompt every test ends with: each pack runs a node, tensors cross. */
const healthy = (seed: number): Prompt => ({
  f: { class_type: "FaultOk", inputs: { seed } },
  g: { class_type: "GoodImage", inputs: { seed } },
  gs: { class_type: "GoodShow", inputs: { value: ["g", 0] } },
  s: { class_type: "SharedShow", inputs: { value: ["f", 0] } },
});
let seed = 0;

async function recovered(): Promise<void> {
  const r = await host.run(healthy(seed++ % 3));
  expect(r.status, JSON.stringify(r.error)).toBe("success");
  expect(r.nodes.filter((n) => n.status === "executed").map((n) => n.pack).sort()).toEqual(["FaultPack", "GoodPack", "GoodPack", "SharedGood"]);
  await waitFor(() => {
    const now = snapshot();
    return now.children === baseline.children && now.fds === baseline.fds && now.sockets === baseline.sockets && now.segments === baseline.segments && now.unheld.length === 0;
  }, 15_000, () => `not back at baseline: ${JSON.stringify({ baseline, now: snapshot() })}`);
}

async function run(prompt: Prompt, opts: { interruptAfterMs?: number } = {}): Promise<{ r: RunResult; events: ExecutionEvent[] }> {
  const events: ExecutionEvent[] = [];
  const p = host.run(prompt, { onEvent: (e) => events.push(e) });
  if (opts.interruptAfterMs !== undefined) setTimeout(() => host.interrupt(), opts.interruptAfterMs);
  return { r: await p, events };
}

/** A one-node prompt (an output node after it, when the node is not one). */
const one = (classType: string, inputs: Record<string, unknown>): Prompt => ({ "1": { class_type: classType, inputs }, "2": { class_type: "GoodShow", inputs: { value: ["1", 0] } } });

function failedIn(r: RunResult, node = "1") {
  expect(r.status).toBe("error");
  const e = r.error as { node_id: string; node_type: string; exception_message: string; exception_type: string };
  expect(e.node_id).toBe(node);
  expect(r.nodes.find((n) => n.id === node)).toMatchObject({ status: "failed", pack: "FaultPack" });
  return e;
}

const faultPid = () => host.core.processFor("FaultPack").pid;

beforeAll(async () => {
  cpSync(join(here, "fixtures", "fault_packs"), nodes, { recursive: true });
  process.env.FAULT_MARKER = marker;
  host = await start();
  expect(host.packs.map((p) => [p.name, p.error?.message])).toEqual([
    ["FaultPack", undefined],
    ["GoodPack", undefined],
    ["SharedGood", undefined],
  ]);
  const r = await host.run(healthy(seed++));
  expect(r.status, JSON.stringify(r.error)).toBe("success");
  baseline = snapshot();
  expect(baseline.children).toBeGreaterThanOrEqual(6); // three runtimes and their watchdogs
});

afterAll(async () => {
  await host?.close();
  delete process.env.FAULT_MARKER;
  rmSync(tmp, { recursive: true, force: true });
});

describe("every failure is an error, named, in bounded time", () => {
  it("an output that does not fit in shared memory (a full /dev/shm)", async () => {
    const e = failedIn((await run(one("FaultShmFull", { seed: 1 }))).r);
    expect(e.exception_type).toBe("pyisolate_runtime.tensors.SharedMemoryFullError");
    expect(e.exception_message).toMatch(/Node FaultShmFull \(#1\) of pack FaultPack: output 0 \(IMAGE\) cannot be sent to the host: Not enough shared memory in \/dev\/shm for a float32 tensor of shape \[1, 512, 512, 4\]/);
    await recovered();
  });

  it("an output whose segment folder is missing", async () => {
    const e = failedIn((await run(one("FaultShmGone", { seed: 1 }))).r);
    expect(e.exception_type).toBe("FileNotFoundError");
    expect(e.exception_message).toContain("Node FaultShmGone (#1) of pack FaultPack: output 0 (IMAGE) cannot be sent to the host: The shared-memory folder /nonexistent-pyisolate-shm does not exist");
    await new Promise((r) => setTimeout(r, 1_100)); // the node's own environment change is undone
    await recovered();
  });

  it("an output when the process has no file descriptor left (EMFILE)", async () => {
    const e = failedIn((await run(one("FaultEmfile", { seed: 1 }))).r);
    expect(e.exception_message).toContain("Node FaultEmfile (#1) of pack FaultPack: output 0 (IMAGE) cannot be sent to the host: Too many open files");
    await new Promise((r) => setTimeout(r, 1_100));
    await recovered();
  });

  it("sparse, meta and quantized tensors and numpy object arrays: TensorCrossingError", async () => {
    const why = { sparse: "to_dense", meta: "meta device", quantized: "dequantize", object: "holds Python objects" };
    for (const [kind, text] of Object.entries(why)) {
      const e = failedIn((await run(one("FaultCrossing", { kind }))).r);
      expect(e.exception_type).toBe("pyisolate_runtime.tensors.TensorCrossingError");
      expect(e.exception_message).toContain("Node FaultCrossing (#1) of pack FaultPack: output 0 (*) cannot be sent to the host");
      expect(e.exception_message).toContain(text);
    }
    await recovered();
  });

  it("a node that never checks the interrupt flag: the interrupt escalates, the prompt ends interrupted", async () => {
    const pid = faultPid();
    const t0 = Date.now();
    const { r, events } = await run(one("FaultBusy", { seed: 1 }), { interruptAfterMs: 500 });
    expect(Date.now() - t0).toBeLessThan(500 + GRACE_MS + 10_000);
    expect(r.status).toBe("interrupted");
    expect(events.map((e) => e.type)).toContain("execution_interrupted");
    expect(r.nodes.find((n) => n.id === "1")).toMatchObject({ status: "interrupted", pack: "FaultPack" });
    expect(lines.some((l) => l.line === `][ FaultPack - stopping the isolated custom_node: node #1 (FaultBusy) did not stop within 1.5 s of the interrupt`)).toBe(true);
    await recovered();
    expect(faultPid()).not.toBe(pid); // killed, and started again for the next prompt
  });

  it("a node over its time limit: asked to stop, then its process is killed", async () => {
    const coop = failedIn((await run(one("FaultCooperative", { seconds: 30 }))).r);
    expect(coop.exception_type).toBe("pyisolate.TIMEOUT");
    expect(coop.exception_message).toBe('Node #1 (FaultCooperative) in pack "FaultPack" did not finish within its time limit of 4 s; it was stopped. Raise node_timeout in the pack\'s manifest (or the host\'s nodeTimeoutMs) if it needs longer.');
    const pid = faultPid();
    const hard = failedIn((await run(one("FaultSleep", { seconds: 60 }))).r);
    expect(hard.exception_type).toBe("pyisolate.TIMEOUT");
    expect(hard.exception_message).toContain('Node #1 (FaultSleep) in pack "FaultPack" did not finish within its time limit of 4 s; it did not stop within 1.5 s after being asked to, so its process was killed');
    await recovered();
    expect(faultPid()).not.toBe(pid);
  });

  it("a stopped child is declared failed by the health check", async () => {
    const pending = run(one("FaultSleep", { seconds: 3 }));
    await new Promise((r) => setTimeout(r, 300));
    process.kill(faultPid()!, "SIGSTOP");
    const e = failedIn((await pending).r);
    expect(e.exception_type).toBe("pyisolate.PROCESS_EXITED");
    expect(e.exception_message).toMatch(/^Node #1 \(FaultSleep\) in pack "FaultPack" failed: \$nodes\.execute in pack "FaultPack" failed: the Python process \(pid \d+\) was killed by SIGKILL \(it did not answer the health check within 1\.5 s: it is stopped or deadlocked\)/);
    await recovered();
  });

  it("a child holding the GIL in C code (deadlocked) is declared failed by the health check", async () => {
    const e = failedIn((await run(one("FaultHoldGil", { seconds: 60 }))).r);
    expect(e.exception_message).toContain("(it did not answer the health check within 1.5 s: it is stopped or deadlocked)");
    await recovered();
  });

  it("a pack that breaks the protocol is stopped; the next prompt to it starts it again at once", async () => {
    const pid = faultPid();
    const e = failedIn((await run(one("FaultProtocol", { seed: 1 }))).r);
    expect(e.exception_type).toBe("pyisolate.PROTOCOL");
    expect(e.exception_message).toMatch(/^Node #1 \(FaultProtocol\) in pack "FaultPack" failed: \$nodes\.execute in pack "FaultPack" failed: Pack "FaultPack" sent a frame that breaks the protocol/);
    // No stale error for the next node of that pack: it waits for the exit and starts again.
    await recovered();
    expect(faultPid()).not.toBe(pid);
  });

  it("a close with a stopped child ends in bounded time", async () => {
    const second = await start();
    try {
      const r = await second.run(healthy(7));
      expect(r.status, JSON.stringify(r.error)).toBe("success");
      const pids = second.core.live().map((p) => p.pid!);
      for (const pid of pids) process.kill(pid, "SIGSTOP");
      const t0 = Date.now();
      await second.close();
      expect(Date.now() - t0).toBeLessThan(30_000);
      await waitFor(() => pids.every((pid) => !existsSync(`/proc/${pid}`)), 5_000);
    } finally {
      await second.close();
    }
    await recovered();
  });
});

describe("values", () => {
  it("a dict with tuple and bytes keys crosses to another process; nothing is killed", async () => {
    const pid = faultPid();
    const r = (await run(one("FaultTupleKeys", { seed: 3 }))).r;
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    expect(r.outputs["2"]).toEqual({ text: [`[('bytes', "b'raw'"), ('str', "'plain'"), ('tuple', '(1, 2)')]`] });
    expect(faultPid()).toBe(pid);
    await recovered();
  });

  it("deeply nested lists are a clear error of the node; nothing is killed", async () => {
    const pid = faultPid();
    const e = failedIn((await run(one("FaultDeep", { levels: 2000 }))).r);
    expect(e.exception_message).toContain("Node FaultDeep (#1) of pack FaultPack: output 0 (*) cannot be sent to the host");
    expect(e.exception_message).toContain("nest at most about 500 levels");
    expect(faultPid()).toBe(pid);
    await recovered();
  });

  it("NaN and infinity inputs are refused with ComfyUI's wording", async () => {
    const r = (await run({ "1": { class_type: "FaultOk", inputs: { seed: Number.NaN } }, "2": { class_type: "SharedShow", inputs: { value: ["1", 0] } } })).r;
    expect(r.status).toBe("invalid");
    expect(r.validation.node_errors["1"]!.errors[0]).toMatchObject({ message: "Failed to convert an input value to a INT value", details: "seed, nan, cannot convert float NaN to integer" });
    await recovered();
  });
});

describe("linear cost", () => {
  it("a 10 MB widget value goes to its node only; the prompt goes only to nodes that declare PROMPT", async () => {
    const p: Prompt = { big: { class_type: "SharedText", inputs: { text: "x".repeat(10 << 20) } }, show: { class_type: "SharedShow", inputs: { value: ["big", 0] } } };
    for (let i = 0; i < 200; i++) p[`e${i}`] = { class_type: "GoodEcho", inputs: { value: i } };
    p.seen = { class_type: "GoodSeesPrompt", inputs: { value: ["e0", 0] } };
    for (let i = 0; i < 200; i++) p[`s${i}`] = { class_type: "SharedShow", inputs: { value: [`e${i}`, 0] } };
    const good = host.core.processFor("GoodPack");
    const before = good.traffic.sent;
    const r = (await run(p)).r;
    expect(r.status, JSON.stringify(r.error)).toBe("success");
    expect(r.outputs.show).toEqual({ value: [10 << 20] });
    // The one node that declares PROMPT got it: 10 MB once, not 200 times.
    expect(r.outputs.seen).toEqual({ text: [`${Object.keys(p).length} nodes`] });
    const sent = good.traffic.sent - before;
    expect(sent).toBeGreaterThan(10 << 20);
    expect(sent).toBeLessThan((10 << 20) + (1 << 20));
    await recovered();
  });

  it("a 2,000-node prompt runs through real processes", async () => {
    const p: Prompt = {};
    for (let i = 0; i < 1000; i++) {
      p[`e${i}`] = { class_type: "GoodEcho", inputs: { value: i } };
      p[`s${i}`] = { class_type: "SharedShow", inputs: { value: [`e${i}`, 0] } };
    }
    const r = (await run(p)).r;
    expect(r.status).toBe("success");
    expect(Object.keys(r.outputs)).toHaveLength(1000);
    await recovered();
  });
});

describe("output streams", () => {
  it("\\r ends a line, long lines are cut, a partial line is logged after a while", async () => {
    const from = lines.length;
    const started = Date.now();
    const r = (await run(one("FaultChatter", { seed: 5 }))).r;
    const finished = Date.now();
    expect(r.status).toBe("success");
    const mine = lines.slice(from).filter((l) => l.line.startsWith("][ FaultPack "));
    const text = mine.map((l) => l.line);
    for (const pct of [0, 25, 50, 75, 100]) expect(text).toContain(`][ FaultPack ! progress ${pct}%`);
    const pieces = text.filter((l) => /^\]\[ FaultPack \| x+$/.test(l));
    expect(pieces.length).toBe(64); // 1 MiB in 16 KiB pieces: bounded, nothing held back
    const partial = mine.find((l) => l.line === "][ FaultPack | still waiting");
    expect(partial, text.join("\n")).toBeDefined();
    expect(partial!.t).toBeGreaterThanOrEqual(started);
    expect(partial!.t).toBeLessThan(finished); // logged by the timer while the node still ran
    expect(text).toContain("][ FaultPack |  - done");
    await recovered();
  });
});

describe("no orphan, no leaked segment", () => {
  const script = join(here, "fixtures", "fault_host.mjs");

  function startHostProcess(mode: string): Promise<{ child: ReturnType<typeof spawn>; info: { hostId: string; pids: number[] } }> {
    const pidsFile = join(tmp, `pids-${mode}`);
    const child = spawn(process.execPath, [script, mode, nodes, join(tmp, "cache"), tmp], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FAULT_PIDS_FILE: pidsFile } });
    let out = "";
    let err = "";
    child.stdout!.on("data", (c) => (out += c));
    child.stderr!.on("data", (c) => (err += c));
    return new Promise((resolve, reject) => {
      const t = setInterval(() => {
        const line = out.split("\n").find((l) => l.startsWith("{"));
        if (line && (mode !== "orphans" || existsSync(pidsFile))) {
          clearInterval(t);
          const info = JSON.parse(line) as { hostId: string; pids: number[] };
          if (mode === "orphans") info.pids.push(...readFileSync(pidsFile, "utf8").trim().split(" ").map(Number));
          resolve({ child, info });
        }
      }, 50);
      child.once("exit", (code) => {
        clearInterval(t);
        reject(new Error(`the host exited (${code}): ${err}`));
      });
    });
  }

  it("a SIGKILLed host leaves no process: not a child stuck in C holding the GIL, not a subprocess a pack started", async () => {
    const { child, info } = await startHostProcess("orphans");
    expect(info.pids.length).toBeGreaterThanOrEqual(3);
    for (const pid of info.pids) expect(existsSync(`/proc/${pid}`)).toBe(true);
    child.kill("SIGKILL");
    await waitFor(() => info.pids.every((pid) => !alive(pid)), 15_000, () => `still alive: ${info.pids.filter(alive).join(", ")}`);
    // Its segment folder is left (nothing ran at its death), and the next host's sweep removes it.
    expect(existsSync(join("/dev/shm", `pyisolate-${info.hostId}`))).toBe(true);
    const next = await start();
    await next.close();
    expect(existsSync(join("/dev/shm", `pyisolate-${info.hostId}`))).toBe(false);
    await recovered();
  });

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`${signal} to the host removes its segments and its children`, async () => {
      const { child, info } = await startHostProcess("segments");
      const folder = join("/dev/shm", `pyisolate-${info.hostId}`);
      expect(readdirSync(folder).filter((n) => n.startsWith("pyisolate-")).length).toBeGreaterThan(0);
      const exited = new Promise((r) => child.once("exit", r));
      child.kill(signal);
      await exited;
      expect(existsSync(folder)).toBe(false);
      await waitFor(() => info.pids.every((pid) => !alive(pid)), 10_000);
    });
  }

  it("two hosts in one process keep each other's segments", async () => {
    const held = host.segments.onDisk();
    expect(held.length).toBeGreaterThan(0);
    const second = await start();
    expect((await second.run(healthy(11))).status).toBe("success");
    expect(second.segments.onDisk().length).toBeGreaterThan(0);
    await second.close();
    expect(host.segments.onDisk()).toEqual(held);
    for (const s of held) expect(existsSync(host.segments.path(s))).toBe(true);
    await recovered();
  });

  it("a segment shorter than its reference is refused, not mapped (no SIGBUS)", async () => {
    const [name] = host.segments.onDisk();
    const ref = new TensorRef({ segment: name!, offset: 0, nbytes: 1 << 30, dtype: "float32", shape: [1 << 28], strides: [1], device: "cpu" });
    await expect(viewTensor(ref)).rejects.toThrow(/Cannot map 1073741824 bytes of ".*": the file holds only \d+/);
    await recovered();
  });
});

describe("what a pack may do to the host", () => {
  it("$singleton never imports a module because it was named", async () => {
    const e = failedIn((await run(one("FaultHostCalls", { what: "singleton" }))).r);
    expect(e.exception_type).toBe("pyisolate.NotCallable");
    expect(e.exception_message).toContain("evil_marker.Anything is not a ProxiedSingleton class known to the shared process");
    expect(existsSync(marker)).toBe(false);
    const other = failedIn((await run(one("FaultHostCalls", { what: "singleton_other" }))).r);
    expect(other.exception_message).toContain('$singleton."load" cannot be called');
    await recovered();
  });

  it("redirecting the output directory is refused; model folders are logged with the pack's name", async () => {
    const e = failedIn((await run(one("FaultHostCalls", { what: "output_dir" }))).r);
    expect(e.exception_message).toContain('Pack "FaultPack" may not redirect the host\'s output directory (folder_paths.set_output_directory)');
    expect(host.api.folderPaths.get_output_directory()).toBe(join(tmp, "output"));
    const r = (await run(one("FaultHostCalls", { what: "model_folder" }))).r;
    expect(r.status).toBe("success");
    expect(lines.map((l) => l.line)).toContain('][ FaultPack - folder_paths: added /etc to model folder "checkpoints"');
    host.api.folderPaths.remove_folder("checkpoints");
    await recovered();
  });

  it("a pack cannot send the executor's events, nor call what a service does not expose", async () => {
    const { r, events } = await run(one("FaultHostCalls", { what: "impersonate" }));
    expect(r.status).toBe("success");
    expect(events.filter((e) => e.type === "execution_success").map((e) => e.data.prompt_id)).toEqual([r.promptId]);
    expect(events.some((e) => e.type === "fault_pack_event")).toBe(true);
    await waitFor(() => lines.some((l) => l.line.includes('Pack "FaultPack" may not send the executor\'s own event "execution_success"')), 5_000);
    const e = failedIn((await run(one("FaultHostCalls", { what: "private" }))).r);
    expect(e.exception_message).toContain('Service "ModelManagement" does not expose "interrupt"');
    await recovered();
  });

  it("a pack over its memory limit is stopped with a clear error, not by the machine's OOM killer", async () => {
    const e = failedIn((await run(one("FaultMemory", { mib: 3072 }))).r);
    expect(e.exception_message).toMatch(/^Node #1 \(FaultMemory\) in pack "FaultPack" failed: .*was killed by SIGKILL \(it used \d+ MiB of memory, more than its limit of 1024 MiB\)/);
    await recovered();
  });
});

describe("host.run queues", () => {
  it("concurrent prompts run one after another, in call order", async () => {
    const order: number[] = [];
    const runs = [1, 2, 3].map((i) => host.run(one("FaultSleep", { seconds: 0.2 + i / 1000 })).then((r) => (order.push(i), r)));
    const results = await Promise.all(runs);
    expect(results.map((r) => r.status)).toEqual(["success", "success", "success"]);
    expect(order).toEqual([1, 2, 3]);
    await recovered();
  });
});

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z/.test(stat); // a zombie is gone, waiting for its parent to notice
  } catch {
    return false;
  }
}
