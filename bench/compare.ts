/**
 * Side by side: this framework and the Python pyisolate (0.10.x from PyPI) on the same
 * workloads, in one run, interleaved (each row alternates rounds of the two), with the ratio
 * per row. The peer is installed by the bench into a throwaway venv under
 * `.pyisolate/bench/peer-venv` that sees the host's torch through a `.pth` file (nothing is
 * downloaded but pyisolate itself), and driven by `bench/peer/peer_driver.py`.
 *
 * Rows: RPC round trip; a 12 MB tensor into a node and a fresh one out; first execution of a
 * pack (process start → node ran, torch imported); memory per process (USS); per-node cost in
 * a 20-node isolated chain; warm start-up of 20 packs; tensors 1 KB – 1 GB in and fresh out;
 * 32 packs started at once; a method call from a node on an object of another process (ours:
 * the proxy `npm run bench handles` times, owner in another process, via the host; the peer: a
 * `ProxiedSingleton` in the host). Prints one table and writes `bench/results/compare.json`.
 * @module
 */
import { spawn as nodeSpawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, freemem, totalmem } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createHost, type Host } from "../src/host.ts";
import { Logger } from "../src/log.ts";
import { HostCore } from "../src/process/host_core.ts";
import { PythonProcess } from "../src/process/python_process.ts";
import { SegmentRegistry } from "../src/values/segments.ts";
import { measureInNode, writeHandlePacks } from "./handle_call.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const WORK = join(ROOT, ".pyisolate", "bench");
const PEER_VERSION = "pyisolate==0.10.2";
const IMAGE = 1 * 1024 * 1024 * 3 * 4;
const MB = 1 << 20;

/** Options of {@link run}. */
export interface CompareOptions {
  /** The host Python. @default `PYISOLATE_PYTHON`, else the repo's `.venv` */
  python?: string;
  /** Tensor sizes, bytes. @default 1 KB, 64 KB, 1 MB, 12 MB IMAGE, 64 MB, 256 MB, 1 GB */
  sizes?: number[];
  /** Rounds each row alternates between the two systems. @default 3 */
  rounds?: number;
  /** Where to write the JSON. @default `bench/results/compare.json`; `null`: do not write */
  out?: string | null;
}

/** One row: both systems' figure (ms or MB), and the ratio peer / this framework. */
export interface CompareRow {
  row: string;
  unit: "ms" | "µs" | "MB";
  ours: number | null;
  peer: number | null;
  /** peer / ours: above 1, this framework is faster (or smaller). */
  ratio: number | null;
  target?: string;
  met?: boolean;
  note?: string;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : Number.NaN;
};

// --- the peer ---------------------------------------------------------------------------------

class Peer {
  #child: ReturnType<typeof nodeSpawn>;
  #buf = "";
  #waiting: Array<(r: { ok: boolean; result?: unknown; error?: string; traceback?: string }) => void> = [];

  constructor(python: string, hostPython: string) {
    this.#child = nodeSpawn(python, [join(ROOT, "bench", "peer", "peer_driver.py")], {
      stdio: ["pipe", "pipe", "inherit"],
      // uv (which it builds venvs with) comes from the host environment.
      env: { ...process.env, PYTHONUNBUFFERED: "1", PYTHONPATH: "", PATH: `${dirname(hostPython)}:${process.env.PATH ?? ""}` },
    });
    this.#child.stdout!.setEncoding("utf8");
    this.#child.stdout!.on("data", (c: string) => {
      this.#buf += c;
      let nl: number;
      while ((nl = this.#buf.indexOf("\n")) >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        const at = line.indexOf("\x1ePEER ");
        if (at >= 0) this.#waiting.shift()?.(JSON.parse(line.slice(at + 6)));
      }
    });
  }

  async do<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const reply = new Promise<{ ok: boolean; result?: unknown; error?: string; traceback?: string }>((r) => this.#waiting.push(r));
    this.#child.stdin!.write(JSON.stringify({ op, ...args }) + "\n");
    const r = await reply;
    if (!r.ok) throw new Error(`The Python pyisolate failed at ${op}: ${r.error}\n${r.traceback ?? ""}`);
    return r.result as T;
  }

  async close(): Promise<void> {
    await this.do("quit").catch(() => undefined);
    this.#child.stdin!.end();
    await new Promise((r) => this.#child.once("exit", r));
  }
}

/** The peer's venv: pyisolate from the registry, the host's torch through a `.pth` file. */
function peerPython(hostPython: string): string {
  const venv = join(WORK, "peer-venv");
  const py = join(venv, "bin", "python");
  const stamp = join(venv, ".pyisolate-bench");
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === PEER_VERSION) return py;
  rmSync(venv, { recursive: true, force: true });
  const probe = spawnSync(hostPython, ["-c", "import sys, site; print(sys._base_executable); print(site.getsitepackages()[0])"], { encoding: "utf8" });
  const [base, hostSite] = probe.stdout.trim().split("\n");
  const step = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { stdio: "inherit" });
    if (r.status !== 0) throw new Error(`Could not prepare the Python pyisolate: ${cmd} ${args.join(" ")} exited with ${r.status}`);
  };
  step(base!, ["-m", "venv", venv]);
  const site = spawnSync(py, ["-c", "import site; print(site.getsitepackages()[0])"], { encoding: "utf8" }).stdout.trim();
  writeFileSync(join(site, "_pyisolate_bench_host.pth"), `${hostSite}\n`);
  // --no-deps: its dependencies (uv, packaging) come from the host environment; torch is never resolved.
  step(py, ["-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps", PEER_VERSION]);
  writeFileSync(stamp, PEER_VERSION);
  return py;
}

// --- this framework's side --------------------------------------------------------------------

const SERVICES = String.raw`
import time

import torch
from pyisolate_runtime import rpc


class BenchIO:
    held = None

    @rpc.inline
    def take(self, t):
        self.held = t
        return None if t is None else t.numel()

    def make(self, nbytes, shape):
        t = torch.empty(list(shape) if shape else [nbytes // 4], dtype=torch.float32)
        t.fill_(0.5)
        return t

    def memcpy_ms(self, nbytes, iters):
        """The floor of a fresh output: one copy of nbytes into memory already faulted in."""
        src = torch.full([nbytes // 4], 0.5, dtype=torch.float32)
        dst = torch.zeros_like(src)
        times = []
        for _ in range(iters):
            started = time.perf_counter()
            dst.copy_(src)
            times.append((time.perf_counter() - started) * 1000.0)
        return sorted(times)[len(times) // 2]

    def make_none(self, nbytes, shape):
        t = torch.empty(list(shape) if shape else [nbytes // 4], dtype=torch.float32)
        t.fill_(0.5)
        return None


rpc.serve("BenchIO", BenchIO())
`;

function packSource(name: string): string {
  return `import time
import torch  # a pack that uses torch, as the peer's extensions do


class ${name}Inc:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0, "min": -(2**62), "max": 2**62}),
                             "work_ms": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1e12, "step": 0.001})}}

    RETURN_TYPES = ("INT", "FLOAT")
    FUNCTION = "inc"
    OUTPUT_NODE = True
    CATEGORY = "bench"

    def inc(self, value, work_ms):
        started = time.perf_counter()
        out = value + 1
        work_ms = work_ms + (time.perf_counter() - started) * 1000.0
        return {"ui": {"value": [out], "work_ms": [work_ms]}, "result": (out, work_ms)}


NODE_CLASS_MAPPINGS = {"${name}Inc": ${name}Inc}
`;
}

function memoryOf(pid: number): { rss: number; pss: number; uss: number } {
  const kb: Record<string, number> = {};
  try {
    for (const line of readFileSync(`/proc/${pid}/smaps_rollup`, "utf8").split("\n")) {
      const m = /^(\w+):\s+(\d+) kB/.exec(line);
      if (m) kb[m[1]!] = Number(m[2]);
    }
  } catch {
    // gone
  }
  return { rss: (kb.Rss ?? 0) / 1024, pss: (kb.Pss ?? 0) / 1024, uss: ((kb.Private_Clean ?? 0) + (kb.Private_Dirty ?? 0)) / 1024 };
}

const packName = (i: number) => `Cmp${String(i).padStart(2, "0")}`;

/** Runs the comparison; prints the table and writes the JSON. */
export async function run(opts: CompareOptions = {}): Promise<CompareRow[]> {
  const python = opts.python ?? process.env.PYISOLATE_PYTHON ?? join(ROOT, ".venv", "bin", "python");
  const sizes = opts.sizes ?? [1 << 10, 64 << 10, MB, IMAGE, 64 * MB, 256 * MB, 1 << 30];
  const rounds = opts.rounds ?? 3;
  const say = (s: string) => process.stderr.write(`[compare] ${s}\n`);
  mkdirSync(WORK, { recursive: true });
  const started = performance.now();
  const rows: CompareRow[] = [];
  const add = (r: CompareRow) => {
    r.ratio = r.ours !== null && r.peer !== null && r.ours > 0 ? r.peer / r.ours : null;
    rows.push(r);
  };

  say(`preparing the Python pyisolate (${PEER_VERSION}) next to the host's torch`);
  const peer = new Peer(peerPython(python), python);
  const info = await peer.do<{ version: string; torch: string }>("setup", { root: join(WORK, "peer") });

  // Packs: 3 for first execution, 32 for the start at once; the chain reuses 20 of those.
  const FIRST = 3;
  const MANY = 32;
  const nodes = join(WORK, "custom_nodes");
  rmSync(nodes, { recursive: true, force: true });
  for (let i = 0; i < FIRST + MANY; i++) {
    mkdirSync(join(nodes, packName(i)), { recursive: true });
    writeFileSync(join(nodes, packName(i), "pyisolate.yaml"), "isolated: true\nshare_torch: true\n");
    writeFileSync(join(nodes, packName(i), "__init__.py"), packSource(packName(i)));
  }
  const peerNames = Array.from({ length: FIRST + MANY }, (_, i) => `peer${String(i).padStart(2, "0")}`);
  say("building environments (this framework: uv venvs and the metadata cache; the peer: its venvs), not measured");
  const hostOpts = { customNodes: nodes, cacheDir: join(WORK, "cache"), baseDir: WORK, python, logger: new Logger(() => {}) };
  await (await createHost(hostOpts)).close();
  await peer.do("prepare", { names: peerNames });

  // --- process start: first execution, 32 at once, memory, per-node chain --------------------
  const host: Host = await createHost(hostOpts);
  await host.core.templates?.prewarm();
  const firstOurs: number[] = [];
  const firstPeer: number[] = [];
  let nonce = 0;
  const runNode = async (pack: string) => {
    const r = await host.run({ "1": { class_type: `${pack}Inc`, inputs: { value: ++nonce, work_ms: 0 } } });
    if (r.status !== "success") throw new Error(`${pack} failed: ${JSON.stringify(r.error)}`);
  };
  for (let i = 0; i < FIRST; i++) {
    let t = performance.now();
    await runNode(packName(i));
    firstOurs.push(performance.now() - t);
    firstPeer.push((await peer.do<{ ms: number }>("first", { name: peerNames[i] })).ms);
  }
  add({ row: "first execution of a pack, torch shared (process start → node ran)", unit: "ms", ours: median(firstOurs), peer: median(firstPeer), ratio: null, target: "≤ 60 ms", met: median(firstOurs) <= 60 });

  const manyNames = Array.from({ length: MANY }, (_, i) => packName(FIRST + i));
  let t = performance.now();
  const prompt: Record<string, { class_type: string; inputs: Record<string, unknown> }> = {};
  manyNames.forEach((p, i) => (prompt[String(i + 1)] = { class_type: `${p}Inc`, inputs: { value: ++nonce, work_ms: 0 } }));
  const many = await host.run(prompt);
  if (many.status !== "success") throw new Error(`32 packs at once failed: ${JSON.stringify(many.error)}`);
  const manyOurs = performance.now() - t;
  const enoughMemory = freemem() > 12 * 1024 ** 3 || totalmem() > 64 * 1024 ** 3;
  const manyPeer = enoughMemory ? (await peer.do<{ ms: number }>("many", { names: peerNames.slice(FIRST) })).ms : null;
  add({
    row: `${MANY} packs started at once, until each ran a node`,
    unit: "ms",
    ours: manyOurs,
    peer: manyPeer,
    ratio: null,
    ...(enoughMemory ? {} : { note: `the peer's ${MANY} processes need more free memory than this machine has now` }),
  });

  const pids = manyNames.map((p) => host.core.processFor(p).pid!).filter(Boolean);
  const ours = pids.map(memoryOf);
  const peerMem = enoughMemory ? await peer.do<Array<{ rss_mb: number; uss_mb: number; pss_mb: number }>>("memory", { names: peerNames.slice(FIRST) }) : [];
  add({ row: "memory per isolated process, USS (unique)", unit: "MB", ours: median(ours.map((m) => m.uss)), peer: peerMem.length ? median(peerMem.map((m) => m.uss_mb)) : null, ratio: null, target: "≤ 30 MB", met: median(ours.map((m) => m.uss)) <= 30 });
  add({ row: "memory per isolated process, RSS (shared pages counted)", unit: "MB", ours: median(ours.map((m) => m.rss)), peer: peerMem.length ? median(peerMem.map((m) => m.rss_mb)) : null, ratio: null });

  // Per-node: a 20-node chain through 20 isolated packs (already running), interleaved.
  const chainPacks = manyNames.slice(0, 20);
  const chainPeer = enoughMemory ? peerNames.slice(FIRST, FIRST + 20) : [];
  if (!enoughMemory) for (let i = 0; i < 20; i++) await peer.do("first", { name: peerNames[FIRST + i] });
  const chainOursS: number[] = [];
  const chainPeerS: number[] = [];
  for (let r = 0; r < rounds * 2 + 2; r++) {
    const p: Record<string, { class_type: string; inputs: Record<string, unknown> }> = {};
    const start = ++nonce * 1000;
    chainPacks.forEach((pk, i) => (p[String(i + 1)] = { class_type: `${pk}Inc`, inputs: i === 0 ? { value: start, work_ms: 0 } : { value: [String(i), 0], work_ms: [String(i), 1] } }));
    const t0 = performance.now();
    const res = await host.run(p);
    const wall = performance.now() - t0;
    const last = res.outputs["20"] as { value: number[]; work_ms: number[] };
    if (res.status !== "success" || last.value[0] !== start + 20) throw new Error(`The chain failed: ${JSON.stringify(res.error)}`);
    const peerRuns = await peer.do<number[]>("chain", { names: chainPeer.length ? chainPeer : peerNames.slice(FIRST, FIRST + 20), runs: 5 });
    if (r >= 2) {
      chainOursS.push((wall - last.work_ms[0]!) / 20);
      chainPeerS.push(...peerRuns);
    }
  }
  add({ row: "per-node overhead, 20-node isolated chain", unit: "ms", ours: median(chainOursS), peer: median(chainPeerS), ratio: null, target: "≤ 0.3 ms", met: median(chainOursS) <= 0.3, note: "peer: 20 sequential calls through 20 extensions (it has no executor)" });
  await host.close();
  await peer.do("stop");

  // --- RPC and tensors: one process each side ------------------------------------------------
  const svcDir = join(WORK, "services");
  mkdirSync(join(svcDir, "BenchIO"), { recursive: true });
  writeFileSync(join(svcDir, "BenchIO", "__init__.py"), SERVICES);
  const segments = new SegmentRegistry();
  const core = new HostCore({ hostPython: python, packs: [{ name: "BenchIO", path: join(svcDir, "BenchIO"), kind: "isolated" }], logger: new Logger(() => {}) });
  const io = core.processFor("BenchIO");
  await io.start();
  await peer.do("first", { name: peerNames[0] });
  const rpcOurs: number[] = [];
  const rpcPeer: number[] = [];
  const arg = (i: number) => ({ i, name: "seed", v: 1.5 });
  for (let i = 0; i < 500; i++) await io.call("$rt", "echo", [arg(i)]);
  await peer.do("rpc", { name: peerNames[0], calls: 200 });
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < 2000; i++) {
      const a = performance.now();
      await io.call("$rt", "echo", [arg(i)]);
      rpcOurs.push(performance.now() - a);
    }
    rpcPeer.push(...(await peer.do<number[]>("rpc", { name: peerNames[0], calls: 500 })));
  }
  add({ row: "RPC round trip, small payload, p50 (default broker)", unit: "µs", ours: median(rpcOurs) * 1000, peer: median(rpcPeer) * 1000, ratio: null, target: "≤ 100 µs", met: median(rpcOurs) * 1000 <= 100 });

  const shm = (bytes: number) => (bytes === IMAGE ? [1, 1024, 1024, 3] : null);
  const label = (b: number) => (b === IMAGE ? "12 MB IMAGE" : b >= 1 << 30 ? `${b / (1 << 30)} GB` : b >= MB ? `${b / MB} MB` : `${b / 1024} KB`);
  const iters = (b: number) => (b <= MB ? 60 : b <= IMAGE ? 30 : b <= 64 * MB ? 10 : b <= 256 * MB ? 4 : 2);
  for (const bytes of sizes) {
    if (performance.now() - started > 8 * 60_000 && bytes > 64 * MB) {
      add({ row: `tensor ${label(bytes)}, in / fresh out`, unit: "ms", ours: null, peer: null, ratio: null, note: "skipped: the bench's 10-minute budget" });
      continue;
    }
    // In: a tensor the host holds (made once by the producer), into a node; minus the same call with None.
    const made = await io.call("BenchIO", "make", [bytes, shm(bytes)], { timeoutMs: 0 });
    segments.retain(made);
    const inOurs: number[] = [];
    const inPeer: number[] = [];
    const outOurs: number[] = [];
    const outPeer: number[] = [];
    const n = iters(bytes);
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < n; i++) {
        const a = performance.now();
        await io.call("BenchIO", "take", [made]);
        const b = performance.now();
        await io.call("BenchIO", "take", [null]);
        inOurs.push(b - a - (performance.now() - b));
      }
      inPeer.push(...(await peer.do<number[]>("tensor_in", { name: peerNames[0], bytes, shape: shm(bytes), iters: n })));
      for (let i = 0; i < n; i++) {
        const a = performance.now();
        const fresh = await io.call("BenchIO", "make", [bytes, shm(bytes)], { timeoutMs: 0 });
        const b = performance.now();
        await io.call("BenchIO", "make_none", [bytes, shm(bytes)], { timeoutMs: 0 });
        outOurs.push(b - a - (performance.now() - b));
        segments.retain(fresh);
        segments.release(fresh);
      }
      outPeer.push(...(await peer.do<number[]>("tensor_out", { name: peerNames[0], bytes, shape: shm(bytes), iters: n })));
    }
    await io.call("BenchIO", "take", [null]);
    segments.release(made);
    const image = bytes === IMAGE;
    add({ row: `tensor ${label(bytes)} into a node (what the tensor adds)`, unit: "ms", ours: median(inOurs), peer: median(inPeer), ratio: null, ...(image ? { target: "≤ 0.1 ms", met: median(inOurs) <= 0.1 } : {}) });
    add({ row: `tensor ${label(bytes)} fresh out of a node (what the tensor adds)`, unit: "ms", ours: median(outOurs), peer: median(outPeer), ratio: null, ...(image ? { target: "≤ 2 ms", met: median(outOurs) <= 2 } : {}) });
    if (image) {
      // The floor of a fresh output on this machine now: one memcpy of the same bytes in the producer.
      const floor = (await io.call("BenchIO", "memcpy_ms", [bytes, 30], { timeoutMs: 0 })) as number;
      add({ row: `memcpy of ${label(bytes)} in the producer (the floor of a fresh output)`, unit: "ms", ours: floor, peer: null, ratio: null, note: "this machine, this run" });
    }
  }
  await core.close();
  segments.releaseAll();

  // --- a method call on an object of another process, from a node ----------------------------
  // Ours: `npm run bench handles`' isolated node calling obj.ping on an object the shared process
  // made (caller → host → owner and back). The peer: its child calling ping on a ProxiedSingleton
  // whose instance lives in the host (child → host and back). Both timed per call in Python.
  const handleNodes = join(WORK, "handle_nodes");
  rmSync(handleNodes, { recursive: true, force: true });
  writeHandlePacks(handleNodes);
  const handleHost = await createHost({ ...hostOpts, customNodes: handleNodes });
  const proxyOurs: number[] = [];
  const proxyPeer: number[] = [];
  const proxyCalls = 2000;
  try {
    await measureInNode(handleHost, { calls: 200, warmup: 100, variants: ["proxy"] });
    await peer.do("shared", { name: peerNames[0], calls: 200, warmup: 100 });
    for (let r = 0; r < rounds; r++) {
      const got = await measureInNode(handleHost, { calls: proxyCalls, warmup: 100, variants: ["proxy"], samples: true, round: r + 1 });
      proxyOurs.push(...got.proxy!.samples_ms!);
      proxyPeer.push(...(await peer.do<number[]>("shared", { name: peerNames[0], calls: proxyCalls, warmup: 100 })));
    }
  } finally {
    await handleHost.close();
  }
  const proxyRow = {
    row: "proxied-object method call from a node, p50 (ours: object in another process, via the host; peer: ProxiedSingleton in the host)",
    unit: "µs" as const,
    ours: median(proxyOurs) * 1000,
    peer: median(proxyPeer) * 1000,
    ratio: null,
    note: "obj.ping([i, {name, v}]) one call at a time, timed in the calling Python process",
  };
  await peer.close();

  // --- warm start-up: this framework only (the peer has no metadata cache) -------------------
  const { run: startup } = await import("./startup.ts");
  const warm = await startup({ packs: 20, runs: 5, out: null, print: false, python });
  add({ row: "warm start-up (metadata cache hit), 20 packs, per pack", unit: "ms", ours: warm.warmPerPackP50Ms, peer: null, ratio: null, target: "keep (0.35 ms)", met: warm.warmPerPackP50Ms <= 2, note: "the peer has no metadata cache: every start spawns" });
  add(proxyRow);

  const result = { bench: "compare", peer: `pyisolate ${info.version}`, torch: info.torch, cpus: cpus().length, node: process.version, date: new Date().toISOString(), seconds: (performance.now() - started) / 1000, rows };
  const outPath = opts.out === undefined ? join(ROOT, "bench", "results", "compare.json") : opts.out;
  if (outPath) {
    mkdirSync(dirname(outPath), { recursive: true });
    writeFileSync(outPath, JSON.stringify(result, null, 2) + "\n");
  }
  process.stdout.write(formatTable(rows, `this framework vs the Python pyisolate ${info.version} (${cpus().length} CPUs, torch ${info.torch}, interleaved, ${rounds} rounds)`) + "\n");
  if (outPath) process.stdout.write(`wrote ${outPath} (${result.seconds.toFixed(0)} s)\n`);
  return rows;
}

/** The table as Markdown. */
export function formatTable(rows: CompareRow[], title: string): string {
  const f = (x: number | null, unit: string) => (x === null ? "n/a" : `${x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(0)} ${unit}`);
  const lines = [title, "", "| row | this framework | Python pyisolate | ratio (peer / ours) | target |", "|---|---|---|---|---|"];
  for (const r of rows) {
    const target = r.target ? `${r.target}${r.met === undefined ? "" : r.met ? " ✓" : " ✗"}` : "";
    const ratio = r.ratio === null ? "" : `${r.ratio.toFixed(1)}×`;
    lines.push(`| ${r.row}${r.note ? ` (${r.note})` : ""} | ${f(r.ours, r.unit)} | ${f(r.peer, r.unit)} | ${ratio} | ${target} |`);
  }
  return lines.join("\n");
}
