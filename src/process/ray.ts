/**
 * The Ray backend: isolated packs run as Ray actors on a cluster's nodes. One driver process
 * per host (`python/pyisolate_runtime/ray_driver.py`, in an environment that has Ray) joins
 * the cluster and creates or ends actors on the host's request, over a private Unix socket
 * with a token (JSON lines). Each actor starts the pack's own Python running
 * `pyisolate_runtime` on its node, and that process connects back to the host over TCP with
 * its token: the frames, the handshake and everything after are those of a local process.
 *
 * Tensors between Ray nodes: each actor serves its node's segments to the other actors and
 * fetches other nodes' segments for its pack's process (through Ray's object store, never
 * through the host); a relay actor on the driver's node does the same for the host machine's
 * processes (see `ray_driver.py` and `values/ray_segments.py`).
 * @module
 */
import { mkdtempSync, chmodSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import process from "node:process";
import { randomBytes, timingSafeEqual } from "node:crypto";
import { PyisolateError } from "../errors.ts";
import { pythonRoot } from "../paths.ts";
import { asLogger, type Logger, type LoggerLike } from "../log.ts";
import { getRuntime } from "../runtime/detect.ts";
import type { ChildHandle, ExitStatus, Runtime, SocketConn, SocketServer, SpawnOptions } from "../runtime/contract.ts";
import type { Launcher } from "../../workers/broker_core.ts";
import { collectTensorRefs, type TensorRef } from "../values/tensors.ts";
import { registerRemoteSegments } from "../values/view.ts";
import { KeepAlive, unref } from "../util/os.ts";

/** What a pack's actor asks of its node (the manifest's `ray` settings). */
export interface RayResources {
  /** CPUs the actor holds while it runs. @default Ray's for actors: 1 to be placed, 0 held */
  numCpus?: number;
  /** GPUs the actor holds (Ray sets `CUDA_VISIBLE_DEVICES` on its node). */
  numGpus?: number;
  /** Memory the actor holds, in bytes (Ray's scheduling resource, not a limit). */
  memoryBytes?: number;
  /** Custom resources a node must offer (`{"pool_a": 1}`), as given to `ray start --resources`. */
  resources?: Record<string, number>;
}

/** Options of the Ray backend. */
export interface RayOptions {
  /** The cluster (`ray://…` or `host:port` of its head), or `"auto"`: a local cluster the driver starts and ends. */
  address: string;
  /** A Python that has Ray (`pip install ray`). @default `$PYISOLATE_RAY_PYTHON`, else the host Python */
  python?: string;
  /** The host's address as the cluster's nodes reach it; packs' processes connect back to it over TCP. @default `$PYISOLATE_RAY_HOST`, else 127.0.0.1 */
  hostAddress?: string;
  /** How long joining the cluster may take (ms). @default 120000 */
  connectTimeoutMs?: number;
  /** The id in this host's segment names: the actors write fetched tensors under it. @default `PYISOLATE_HOST_ID`, else the host's pid */
  hostId?: string;
}

/** The relay actor on the host machine's Ray node: it fetches tensors of other nodes for the host's processes. */
export interface RayRelay {
  /** The Ray node of the host's machine. */
  node: string;
  ip: string;
  /** The relay actor's name. */
  actor: string;
  /** Its Unix socket on this machine (`@name`: an abstract one). */
  socket: string;
  token: string;
}

/** What one actor relayed between Ray nodes (tensor segments). */
export interface RayRelayCounts {
  /** Segments of other nodes fetched for its process, and their bytes. */
  fetched: number;
  fetched_bytes: number;
  /** Segments of its node read by actors on other nodes, and their bytes. */
  served: number;
  served_bytes: number;
  /** Segments of its node it unlinked for the host (released there). */
  unlinked: number;
}

/** One node of the cluster, as `pyisolate doctor` reports it. */
export interface RayNodeInfo {
  id: string;
  ip: string;
  alive: boolean;
  resources: Record<string, number>;
}

/** The cluster: Ray's version and its nodes. */
export interface RayClusterInfo {
  version: string;
  address: string;
  nodes: RayNodeInfo[];
}

/** Where a pack's actor was placed. */
export interface RayPlacement {
  id: string;
  ip: string;
}

interface Pending {
  resolve(v: Record<string, unknown>): void;
  reject(e: Error): void;
}

interface Launch {
  pack: string;
  opts: SpawnOptions;
  done(s: ExitStatus): void;
}

/** Ray prefixes each line an actor prints with `(<actor repr> pid=…, ip=…)`; the actor's repr is `pyisolate[<pack>]`. */
const LINE_PREFIX = /^\((?:pid=\d+, )?pyisolate\[([^\]]+)\](?: pid=\d+)?(?:, ip=[^)]*)?\) ?(.*)$/;
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** How long an actor ended with SIGKILL may take to report its end before it is taken as gone. */
const KILL_REPORT_MS = 15_000;

/** The resolved backend settings from options and the environment (`PYISOLATE_RAY`, `PYISOLATE_RAY_PYTHON`, `PYISOLATE_RAY_HOST`). */
export function rayOptionsFrom(given: Partial<RayOptions> | undefined, hostPython: string): RayOptions | undefined {
  const address = given?.address ?? process.env.PYISOLATE_RAY;
  if (!address) return undefined;
  return {
    address,
    python: given?.python ?? process.env.PYISOLATE_RAY_PYTHON ?? hostPython,
    hostAddress: given?.hostAddress ?? process.env.PYISOLATE_RAY_HOST ?? "127.0.0.1",
    ...(given?.connectTimeoutMs ? { connectTimeoutMs: given.connectTimeoutMs } : {}),
  };
}

/**
 * A connection to a Ray cluster through the driver process.
 *
 * @example
 * ```ts
 * const ray = await RayCluster.connect({ address: "auto" });
 * console.log((await ray.info()).nodes.length);
 * await ray.close();
 * ```
 */
export class RayCluster {
  readonly address: string;
  readonly version: string;
  readonly hostAddress: string;
  /** The relay actor on the host machine's node; undefined when the host's machine is not a Ray node (Ray Client) or it could not start (`relayError`). */
  readonly relay: RayRelay | undefined;
  /** Why there is no relay on the host machine's node, when one was tried. */
  readonly relayError: string | undefined;
  #rt: Runtime;
  #conn: SocketConn;
  #server: SocketServer;
  #dir: string;
  #child: ChildHandle;
  #log: Logger;
  #next = 0;
  #pending = new Map<number, Pending>();
  #launches = new Map<string, Launch>();
  #byPack = new Map<string, string>();
  #placements = new Map<string, RayPlacement>();
  /** Actors whose processes run now (their segments can be fetched), by launch key. */
  #actors = new Map<string, string>();
  #closed = false;
  #buf = "";
  #unregister: (() => void) | undefined;

  private constructor(init: { rt: Runtime; conn: SocketConn; server: SocketServer; dir: string; child: ChildHandle; log: Logger; address: string; version: string; hostAddress: string; relay?: RayRelay; relayError?: string }) {
    this.#rt = init.rt;
    this.#conn = init.conn;
    this.#server = init.server;
    this.#dir = init.dir;
    this.#child = init.child;
    this.#log = init.log;
    this.address = init.address;
    this.version = init.version;
    this.hostAddress = init.hostAddress;
    this.relay = init.relay;
    this.relayError = init.relayError;
  }

  /**
   * Starts the driver and joins the cluster.
   * @throws {PyisolateError} `RAY` when Ray is not installed in the driver's Python, or the cluster cannot be joined.
   */
  static async connect(opts: RayOptions, logger?: Logger | LoggerLike): Promise<RayCluster> {
    const rt = await getRuntime();
    const log = asLogger(logger);
    const python = opts.python ?? process.env.PYISOLATE_RAY_PYTHON ?? "python3";
    const dir = mkdtempSync(join(tmpdir(), "pyisolate-ray-"));
    chmodSync(dir, 0o700);
    const path = join(dir, "s");
    const token = randomBytes(32).toString("hex");
    let first: ((c: SocketConn) => void) | undefined;
    const server = await rt.listenUnix(path, (c) => (first ? (first(c), (first = undefined)) : c.close()));
    chmodSync(path, 0o600);
    const stderr: string[] = [];
    let cluster: RayCluster | undefined;
    const lines = (stream: "stdout" | "stderr") => {
      let rest = "";
      return (chunk: Uint8Array) => {
        rest += new TextDecoder().decode(chunk);
        const parts = rest.split("\n");
        rest = parts.pop() ?? "";
        for (const raw of parts) {
          const line = raw.replace(ANSI, "");
          if (cluster) cluster.#line(stream, line);
          else {
            stderr.push(line);
            if (stderr.length > 30) stderr.shift();
          }
        }
      };
    };
    const child = rt.spawn({
      cmd: python,
      args: [join(pythonRoot(), "pyisolate_runtime", "ray_driver.py")],
      env: { ...(process.env as Record<string, string>), PYISOLATE_RAY_SOCKET: path, PYISOLATE_RAY_TOKEN: token, PYISOLATE_RAY_ADDRESS: opts.address, PYISOLATE_RAY_NODE_IP: opts.hostAddress ?? "127.0.0.1", PYISOLATE_HOST_ID: opts.hostId ?? process.env.PYISOLATE_HOST_ID ?? String(process.pid), PYTHONUNBUFFERED: "1" },
      onStdout: lines("stdout"),
      onStderr: lines("stderr"),
      unref: true,
    });
    const fail = (why: string) => {
      child.kill("SIGKILL");
      void server.close();
      rmSync(dir, { recursive: true, force: true });
      return new PyisolateError("RAY", `The Ray backend could not start (driver ${python}, cluster ${opts.address}): ${why}${stderr.length ? `. Last driver lines:\n${stderr.slice(-10).join("\n")}` : ""}`);
    };
    const timeoutMs = opts.connectTimeoutMs ?? 120_000;
    const hello = await new Promise<{ conn: SocketConn; msg: Record<string, unknown> }>((resolve, reject) => {
      // Not unref'd: it keeps the host alive while it joins.
      const timer = setTimeout(() => reject(fail(`it did not join within ${timeoutMs} ms`)), timeoutMs);
      child.exited.then((s) => {
        clearTimeout(timer);
        reject(fail(`the driver exited (${s.signal ?? `code ${s.code}`})`));
      });
      first = (conn) => {
        let buf = "";
        conn.onData((chunk) => {
          buf += new TextDecoder().decode(chunk);
          const nl = buf.indexOf("\n");
          if (nl < 0) return;
          clearTimeout(timer);
          const msg = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
          const given = new TextEncoder().encode(String(msg.token));
          const want = new TextEncoder().encode(token);
          if (given.length !== want.length || !timingSafeEqual(given, want)) return reject(fail("the driver connected with a wrong token"));
          if (msg.error) return reject(fail(String(msg.error)));
          resolve({ conn, msg: { ...msg, rest: buf.slice(nl + 1) } });
        });
      };
    });
    const relay = hello.msg.relay as RayRelay | undefined;
    const relayError = hello.msg.relay_error === undefined ? undefined : String(hello.msg.relay_error);
    cluster = new RayCluster({ rt, conn: hello.conn, server, dir, child, log, address: String(hello.msg.address ?? opts.address), version: String(hello.msg.version ?? "?"), hostAddress: opts.hostAddress ?? "127.0.0.1", ...(relay ? { relay } : {}), ...(relayError ? { relayError } : {}) });
    const c = cluster;
    hello.conn.onData((chunk) => c.#data(new TextDecoder().decode(chunk)));
    hello.conn.onClose(() => c.#lost("the Ray driver closed its connection"));
    child.exited.then((s) => c.#lost(`the Ray driver exited (${s.signal ?? `code ${s.code}`})`));
    if (hello.msg.rest) c.#data(String(hello.msg.rest));
    c.#unregister = registerRemoteSegments(opts.hostId ?? process.env.PYISOLATE_HOST_ID ?? String(process.pid), {
      remote: (ref) => c.whereIs(ref)?.remote === true,
      fetch: (ref) => c.fetchSegment(ref),
    });
    log.pack("ray", `- joined the Ray cluster at ${c.address} (Ray ${c.version})`, "debug");
    if (relay) log.pack("ray", `- tensors of other Ray nodes reach this machine (Ray node ${relay.node.slice(0, 12)}) through its relay actor`, "debug");
    else log.pack("ray", `- this machine has no relay actor${relayError ? ` (${relayError})` : ""}: tensors of packs on other Ray nodes cannot reach the host's processes`, "warn");
    return cluster;
  }

  /** The cluster's nodes and resources. */
  async info(): Promise<RayClusterInfo> {
    const r = await this.#request({ op: "info" });
    return { version: String(r.version), address: this.address, nodes: r.nodes as RayNodeInfo[] };
  }

  /**
   * The environment of a process of the host's machine (the shared process): its Ray node and
   * relay, so that it fetches tensors of other nodes through Ray and tags its own.
   */
  localEnv(): Record<string, string> {
    const r = this.relay;
    // "-": this machine is no Ray node (Ray Client): its processes read only segments of this machine.
    const env: Record<string, string> = { PYISOLATE_RAY_HOST_NODE: r?.node ?? "", PYISOLATE_RAY_NODE: "-" };
    if (r) Object.assign(env, { PYISOLATE_RAY_NODE: r.node, PYISOLATE_RAY_ACTOR: r.actor, PYISOLATE_RAY_RELAY: r.socket, PYISOLATE_RAY_RELAY_TOKEN: r.token });
    return env;
  }

  /** What each actor relayed between Ray nodes, by pack name (`"host"`: the host machine's relay). */
  async relays(): Promise<Record<string, RayRelayCounts>> {
    const r = await this.#request({ op: "relays" });
    return r.relays as Record<string, RayRelayCounts>;
  }

  /**
   * Where a tensor's bytes live under this backend: the Ray node and actor of its `ray` field,
   * or the host's machine. `remote`: on a Ray node other than the host machine's.
   */
  whereIs(ref: TensorRef): { node: string; actor: string; remote: boolean } | undefined {
    const w = ref.map.ray as { node?: unknown; actor?: unknown } | undefined;
    if (!w || typeof w.node !== "string") return undefined;
    return { node: w.node, actor: String(w.actor ?? ""), remote: w.node !== this.relay?.node };
  }

  /**
   * Whether a value holds a tensor of another Ray node whose actor is gone (its pack's process
   * ended or restarted): nothing can fetch it any more, so a cached value holding it is stale.
   */
  holdsLostTensor(value: unknown): boolean {
    const live = new Set(this.#actors.values());
    for (const ref of collectTensorRefs(value)) {
      const w = this.whereIs(ref);
      if (w?.remote && !live.has(w.actor)) return true;
    }
    return false;
  }

  /**
   * Unlinks a segment that lives on another Ray node, through the actor that wrote it (the
   * host's segment registry calls this when it lets go of one). False when it lives here.
   */
  unlinkRemote(segment: string, ref: TensorRef): boolean {
    const w = this.whereIs(ref);
    if (!w?.remote) return false;
    this.#send({ op: "unlink", actor: w.actor, segment });
    return true;
  }

  /**
   * Copies a tensor of another Ray node into a new segment of this host on this machine, through
   * Ray (the driver fetches it from the actor that wrote it); returns the copy's name, which
   * the caller unlinks. `viewTensor` does this for such refs.
   * @throws {PyisolateError} `RAY` naming the Ray node and the cause when it cannot be fetched.
   */
  async fetchSegment(ref: TensorRef): Promise<string> {
    const w = this.whereIs(ref);
    if (!w) throw new PyisolateError("USAGE", `Tensor segment ${ref.segment} does not live on a Ray node.`);
    try {
      const r = await this.#request({ op: "fetch", segment: ref.segment, offset: ref.offset, nbytes: ref.nbytes, actor: w.actor }, 0);
      return String(r.segment);
    } catch (e) {
      throw new PyisolateError("RAY", `A ${ref.dtype} tensor of shape [${ref.shape.join(", ")}] lives on Ray node ${w.node.slice(0, 12)}; the host could not fetch it through Ray: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Where the pack's actor runs (or ran last). */
  placement(pack: string): RayPlacement | undefined {
    return this.#placements.get(pack);
  }

  /** A launcher that starts the pack's process in an actor with these resources. */
  launcher(pack: string, resources: RayResources = {}): Launcher {
    return { tcpHost: this.hostAddress, spawn: (opts) => this.#launch(pack, resources, opts) };
  }

  /** Ends every actor and the driver. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unregister?.();
    try {
      this.#conn.write(new TextEncoder().encode(JSON.stringify({ op: "shutdown" }) + "\n"));
    } catch {
      // already gone
    }
    // The driver is unref'd: hold the loop while it shuts down, or a program whose last step
    // is `await host.close()` would end (exit code 13) before close returns.
    const alive = new KeepAlive();
    alive.hold();
    try {
      let t: ReturnType<typeof setTimeout> | undefined;
      const gone = await Promise.race([this.#child.exited.then(() => true), new Promise<boolean>((r) => ((t = setTimeout(() => r(false), 15_000)), unref(t)))]);
      clearTimeout(t);
      if (!gone) this.#child.kill("SIGKILL");
      this.#conn.close();
      await this.#server.close();
      rmSync(this.#dir, { recursive: true, force: true });
    } finally {
      alive.release();
    }
  }

  /** Kills the driver now (the host's exit hook): its actors end with it. */
  killNow(): void {
    this.#child.kill("SIGKILL");
    rmSync(this.#dir, { recursive: true, force: true });
  }

  // --- internals ----------------------------------------------------------------------------

  #launch(pack: string, res: RayResources, opts: SpawnOptions): ChildHandle {
    const key = `${pack}#${++this.#next}`;
    let done!: (s: ExitStatus) => void;
    let ended = false;
    const exited = new Promise<ExitStatus>((r) => (done = (s) => (ended ? undefined : ((ended = true), this.#launches.delete(key), this.#actors.delete(key), r(s)))));
    this.#launches.set(key, { pack, opts, done });
    this.#byPack.set(pack, key);
    const env: Record<string, string> = { PYISOLATE_RAY_HOST_NODE: this.relay?.node ?? "" };
    for (const [k, v] of Object.entries(opts.env ?? {})) {
      // The actor's node has its own environment; only what pyisolate sets travels.
      if (k.startsWith("PYISOLATE_") || k === "PYTHONPATH" || k === "PYTHONUNBUFFERED" || !(k in process.env) || process.env[k] !== v) env[k] = v;
    }
    const resources: Record<string, unknown> = {};
    if (res.numCpus !== undefined) resources.num_cpus = res.numCpus;
    if (res.numGpus) resources.num_gpus = res.numGpus;
    if (res.memoryBytes) resources.memory = res.memoryBytes;
    if (res.resources) resources.resources = res.resources;
    this.#request({ op: "launch", key, name: pack, cmd: [opts.cmd, ...opts.args], env, cwd: opts.cwd ?? null, resources }, 0).then(
      (r) => {
        const node = r.node as RayPlacement;
        this.#placements.set(pack, node);
        if (!ended && typeof r.actor === "string") this.#actors.set(key, r.actor);
        this.#log.pack(pack, `- runs as a Ray actor on Ray node ${node.id.slice(0, 12)} (${node.ip})`, "debug");
      },
      (e: Error) => done({ code: null, signal: null, reason: `its Ray actor could not start: ${e.message}` }),
    );
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const alive = new KeepAlive();
    let holding = false;
    exited.finally(() => clearTimeout(killTimer)).catch(() => {});
    return {
      pid: -1,
      exited,
      kill: (signal = "SIGTERM") => {
        if (ended) return;
        // Nothing local holds the loop while a remote process ends (a local child would): hold it
        // until the end is reported, so that a stop awaited as a program's last step completes.
        if (!holding) {
          holding = true;
          alive.hold();
          exited.finally(() => alive.release()).catch(() => {});
        }
        this.#send({ op: "kill", key, signal });
        if (signal === "SIGKILL" && !killTimer) {
          killTimer = setTimeout(() => {
            const node = this.#placements.get(pack);
            done({ code: null, signal: "SIGKILL", reason: `its Ray actor${node ? ` on Ray node ${node.id.slice(0, 12)} (${node.ip})` : ""} did not report its end within ${KILL_REPORT_MS} ms of SIGKILL` });
          }, KILL_REPORT_MS);
          unref(killTimer);
        }
      },
    };
  }

  #line(stream: "stdout" | "stderr", line: string): void {
    const m = LINE_PREFIX.exec(line);
    const key = m ? this.#byPack.get(m[1]!) : undefined;
    const launch = key ? this.#launches.get(key) : undefined;
    if (m && launch) {
      const cb = stream === "stdout" ? launch.opts.onStdout : launch.opts.onStderr;
      cb?.(new TextEncoder().encode(`${m[2]}\n`));
      return;
    }
    if (line.trim()) this.#log.pack("ray", `- ${line}`, "debug");
  }

  #data(text: string): void {
    this.#buf += text;
    let nl: number;
    while ((nl = this.#buf.indexOf("\n")) >= 0) {
      const msg = JSON.parse(this.#buf.slice(0, nl)) as Record<string, unknown>;
      this.#buf = this.#buf.slice(nl + 1);
      if (msg.ev === "line") {
        this.#launches.get(String(msg.key))?.opts.onStderr?.(new TextEncoder().encode(`${String(msg.text)}\n`));
        continue;
      }
      if (msg.ev === "exit") {
        const launch = this.#launches.get(String(msg.key));
        const s: ExitStatus = { code: (msg.code as number | null) ?? null, signal: (msg.signal as string | null) ?? null };
        if (msg.reason) s.reason = String(msg.reason);
        launch?.done(s);
        continue;
      }
      const p = this.#pending.get(Number(msg.id));
      if (!p) continue;
      this.#pending.delete(Number(msg.id));
      if (msg.ok) p.resolve(msg);
      else p.reject(new Error(String(msg.error)));
    }
  }

  #send(msg: Record<string, unknown>): void {
    if (this.#closed && msg.op !== "shutdown") return;
    try {
      this.#conn.write(new TextEncoder().encode(JSON.stringify(msg) + "\n"));
    } catch {
      // the driver is gone: #lost reports it
    }
  }

  #request(msg: Record<string, unknown>, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    if (this.#closed) return Promise.reject(new PyisolateError("RAY", "The Ray backend is closed."));
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      let t: ReturnType<typeof setTimeout> | undefined;
      if (timeoutMs > 0) {
        t = setTimeout(() => {
          this.#pending.delete(id);
          reject(new PyisolateError("TIMEOUT", `The Ray driver did not answer "${String(msg.op)}" within ${timeoutMs} ms.`));
        }, timeoutMs); // not unref'd: a pending request keeps the host alive
      }
      this.#pending.set(id, {
        resolve: (v) => (clearTimeout(t), resolve(v)),
        reject: (e) => (clearTimeout(t), reject(e)),
      });
      this.#send({ ...msg, id });
    });
  }

  #lost(why: string): void {
    for (const p of this.#pending.values()) p.reject(new PyisolateError("RAY", why));
    this.#pending.clear();
    for (const l of [...this.#launches.values()]) l.done({ code: null, signal: null, reason: why });
    if (!this.#closed) this.#log.pack("ray", `- ${why}`, "warn");
  }
}
