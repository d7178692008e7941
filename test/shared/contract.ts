/**
 * The Runtime-contract suite: what pyisolate needs from Node, Deno and Bun, checked against
 * the adapter {@link getRuntime} picks, with real processes, real Unix sockets, real workers and
 * a real `/dev/shm` file. Runner-neutral: each runtime's caller passes its `describe`/`it`.
 * @module
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, readFileSync, openSync, writeSync, closeSync, existsSync, realpathSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { randomBytes } from "node:crypto";
import process from "node:process";
import { Channel } from "../../src/rpc/channel.ts";
import { workerLink } from "../../src/process/broker_link.ts";
import type { PyisolateError } from "../../src/errors.ts";
import type { BrokerExit, BrokerStartOptions } from "../../workers/broker_core.ts";
import { detectRuntime, getRuntime } from "../../src/runtime/detect.ts";
import type { ExitStatus, Runtime, SocketConn, SpawnOptions } from "../../src/runtime/contract.ts";
import type { RuntimeName, TestApi } from "./api.ts";

// --- helpers ----------------------------------------------------------------------------------

const text = new TextDecoder();

/** Deterministic bytes: `(i * 31 + seed) & 255`. */
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255;
  return b;
}

/** Asserts two byte arrays are equal, naming the first difference (no giant diff). */
function assertBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

/** Runs a process to its end, collecting its output. */
async function run(rt: Runtime, opts: Omit<SpawnOptions, "onStdout" | "onStderr">): Promise<{ status: ExitStatus; stdout: string; stderr: string }> {
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const child = rt.spawn({ ...opts, onStdout: (c) => out.push(c.slice()), onStderr: (c) => err.push(c.slice()) });
  const status = await child.exited;
  return { status, stdout: text.decode(concat(out)), stderr: text.decode(concat(err)) };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const n = chunks.reduce((s, c) => s + c.length, 0);
  const all = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return all;
}

/** Waits until `cond()` holds, polling; fails after `ms` (a ceiling for an event, not a speed check). */
async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The fields of `/proc/<pid>/stat` after the command name, or null once the process is gone. */
function procStat(pid: number): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** Dead: gone, or a zombie nobody has reaped yet. */
function isDead(pid: number): boolean {
  const st = procStat(pid);
  return st === null || st[0] === "Z" || st[0] === "X";
}

function frame(payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(4 + payload.length);
  new DataView(f.buffer).setUint32(0, payload.length);
  f.set(payload, 4);
  return f;
}

/** Splits a byte stream into length-prefixed frames, across chunk boundaries. */
class Frames {
  #chunks: Uint8Array[] = [];
  #have = 0;
  readonly frames: Uint8Array[] = [];
  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#have += chunk.length;
    for (;;) {
      if (this.#have < 4) return;
      const head = concat(this.#chunks);
      const n = new DataView(head.buffer, head.byteOffset).getUint32(0);
      if (this.#have < 4 + n) {
        this.#chunks = [head];
        return;
      }
      this.frames.push(head.slice(4, 4 + n));
      const rest = head.subarray(4 + n);
      this.#chunks = rest.length ? [rest] : [];
      this.#have = rest.length;
    }
  }
}

/** How a connection's close was reported. */
function closeWatch(conn: SocketConn): { closed: boolean; err: Error | undefined; count: number } {
  const w = { closed: false, err: undefined as Error | undefined, count: 0 };
  conn.onClose((err) => {
    w.closed = true;
    w.err = err;
    w.count++;
  });
  return w;
}

/** The URL of the contract worker: its TypeScript source, or a transpiling entry on older Node. */
function workerUrl(name: RuntimeName): URL {
  const nodeStrips = (process as unknown as { features?: { typescript?: unknown } }).features?.typescript;
  if (name === "node" && !nodeStrips) return new URL("./contract_worker_node.mjs", import.meta.url);
  return new URL("./contract_worker.ts", import.meta.url);
}

const SOCKET_PAYLOADS = [1, 100, 65_536, 1_000_003, 9 * 1024 * 1024 + 7];

// --- the suite --------------------------------------------------------------------------------

/**
 * Registers the Runtime-contract tests with `t`, expecting the adapter of `expected`.
 * Node reports `zeroCopy` from `mapFile` as its adapter can (koffi); Deno and Bun must map.
 */
export function defineContractTests(t: TestApi, expected: RuntimeName): void {
  t.describe(`Runtime contract (${expected})`, () => {
    let rt: Runtime;
    const getRt = async (): Promise<Runtime> => (rt ??= await getRuntime());

    t.it("detects the runtime and loads its adapter", async () => {
      assert.equal(detectRuntime(), expected);
      assert.equal((await getRt()).name, expected);
      assert.equal((await getRt()).workerSelf(), null, "the main thread is no worker");
    });

    t.describe("spawn", () => {
      t.it("runs with exactly the given environment and working directory, stdout and stderr apart", async () => {
        const rt = await getRt();
        const cwd = mkdtempSync(join(tmpdir(), "pyi-contract-"));
        process.env.PYI_CONTRACT_PARENT = "inherited";
        try {
          const r = await run(rt, {
            cmd: "/bin/sh",
            args: ["-c", 'echo "$FOO"; pwd; echo "${PYI_CONTRACT_PARENT-absent}"; echo oops >&2; echo done'],
            env: { FOO: "two words", PATH: process.env.PATH ?? "/usr/bin:/bin" },
            cwd,
          });
          assert.deepEqual(r.status, { code: 0, signal: null });
          assert.equal(r.stdout, `two words\n${realpathSync(cwd)}\nabsent\ndone\n`);
          assert.equal(r.stderr, "oops\n");
        } finally {
          delete process.env.PYI_CONTRACT_PARENT;
          rmSync(cwd, { recursive: true, force: true });
        }
      });

      t.it("inherits the parent's environment when none is given", async () => {
        const rt = await getRt();
        process.env.PYI_CONTRACT_PARENT = "inherited";
        try {
          const r = await run(rt, { cmd: "/bin/sh", args: ["-c", 'printf %s "$PYI_CONTRACT_PARENT"'] });
          assert.equal(r.stdout, "inherited");
        } finally {
          delete process.env.PYI_CONTRACT_PARENT;
        }
      });

      t.it("streams output while the process runs, and kill() ends it with SIGTERM", async () => {
        const rt = await getRt();
        let seen = "";
        const child = rt.spawn({
          cmd: "/bin/sh",
          args: ["-c", "echo ready; exec sleep 30"],
          onStdout: (c) => (seen += text.decode(c)),
        });
        assert.ok(child.pid > 0);
        await waitFor(() => seen.includes("ready\n"), "the child's first line");
        assert.equal(isDead(child.pid), false, "the child still runs while its output arrives");
        child.kill();
        assert.deepEqual(await child.exited, { code: null, signal: "SIGTERM" });
        child.kill("SIGKILL"); // after exit: nothing happens
      });

      t.it("reports exit codes and deaths by signal", async () => {
        const rt = await getRt();
        assert.deepEqual((await run(rt, { cmd: "/bin/sh", args: ["-c", "exit 3"] })).status, { code: 3, signal: null });
        assert.deepEqual((await run(rt, { cmd: "/bin/sh", args: ["-c", "exit 0"] })).status, { code: 0, signal: null });
        assert.deepEqual((await run(rt, { cmd: "/bin/sh", args: ["-c", "kill -KILL $$"] })).status, { code: null, signal: "SIGKILL" });
        const child = rt.spawn({ cmd: "sleep", args: ["30"] });
        child.kill("SIGUSR1");
        assert.deepEqual(await child.exited, { code: null, signal: "SIGUSR1" });
      });

      t.it("passes large output through whole", async () => {
        const rt = await getRt();
        // 4 MiB of "0123456789abcdef" lines, 16 bytes each with the newline... 262144 lines.
        const r = await run(rt, { cmd: "/bin/sh", args: ["-c", "yes 0123456789abcde | head -n 262144"] });
        assert.deepEqual(r.status, { code: 0, signal: null });
        assert.equal(r.stdout.length, 262_144 * 16);
        assert.equal(r.stdout, "0123456789abcde\n".repeat(262_144));
      });

      t.it("puts a detachedGroup child in its own process group and kills the whole group", async () => {
        const rt = await getRt();
        let out = "";
        const child = rt.spawn({
          cmd: "/bin/sh",
          args: ["-c", "sleep 30 & echo $!; wait"],
          detachedGroup: true,
          onStdout: (c) => (out += text.decode(c)),
        });
        await waitFor(() => out.includes("\n"), "the grandchild's pid");
        const grandchild = Number(out.trim());
        assert.ok(grandchild > 0);
        // /proc/<pid>/stat after the name: state, ppid, pgrp, session, …
        assert.equal(procStat(child.pid)?.[2], String(child.pid), "the child leads its own process group");
        assert.equal(procStat(grandchild)?.[2], String(child.pid), "the grandchild is in that group");
        child.kill("SIGTERM");
        assert.deepEqual(await child.exited, { code: null, signal: "SIGTERM" });
        await waitFor(() => isDead(grandchild), "the grandchild to die with its group");
      });

      t.it("rejects `exited` when the executable does not exist", async () => {
        const rt = await getRt();
        const child = rt.spawn({ cmd: "/nonexistent/pyisolate-no-such-binary", args: [] });
        await assert.rejects(child.exited, (e: Error & { code?: string }) => {
          assert.equal(e.code, "ENOENT");
          return true;
        });
        child.kill(); // nothing to kill: no error
      });
    });

    t.describe("Unix sockets", () => {
      let dir = "";
      const sockPath = (): string => {
        dir ||= mkdtempSync(join(tmpdir(), "pyi-contract-"));
        return join(dir, `s${randomBytes(4).toString("hex")}`);
      };
      const cleanup = (): void => {
        if (dir) rmSync(dir, { recursive: true, force: true });
        dir = "";
      };

      t.it("moves several frames both ways, up to 9 MiB, byte for byte", async () => {
        const rt = await getRt();
        try {
          const path = sockPath();
          const serverFrames = new Frames();
          let serverConn: SocketConn | undefined;
          const server = await rt.listenUnix(path, (conn) => {
            serverConn = conn;
            // Answers each frame with its bytes + 1, as its own frame.
            conn.onData((chunk) => {
              const before = serverFrames.frames.length;
              serverFrames.push(chunk);
              for (const f of serverFrames.frames.slice(before)) conn.write(frame(f.map((b) => (b + 1) & 255)));
            });
          });
          assert.equal(server.path, path);
          assert.ok(existsSync(path), "the socket file exists while listening");
          const client = await rt.connectUnix(path);
          const clientFrames = new Frames();
          client.onData((chunk) => clientFrames.push(chunk));
          const sent = SOCKET_PAYLOADS.map((n, i) => pattern(n, i));
          for (const p of sent) client.write(frame(p));
          await waitFor(() => clientFrames.frames.length === sent.length, "every answer", 60_000);
          assert.equal(serverFrames.frames.length, sent.length);
          for (let i = 0; i < sent.length; i++) {
            assertBytes(serverFrames.frames[i]!, sent[i]!, `frame ${i} at the server`);
            assertBytes(clientFrames.frames[i]!, sent[i]!.map((b) => (b + 1) & 255), `answer ${i} at the client`);
          }
          assert.ok(serverConn);
          client.close();
          await server.close();
        } finally {
          cleanup();
        }
      }, 120_000);

      t.it("tells each side once when the other closes, and after its own close()", async () => {
        const rt = await getRt();
        try {
          const path = sockPath();
          const accepted: SocketConn[] = [];
          const server = await rt.listenUnix(path, (conn) => {
            accepted.push(conn);
            conn.onData(() => {});
          });
          // Client closes: the server side hears it.
          const c1 = await rt.connectUnix(path);
          c1.onData(() => {});
          const c1w = closeWatch(c1);
          await waitFor(() => accepted.length === 1, "the first connection");
          const s1w = closeWatch(accepted[0]!);
          c1.close();
          await waitFor(() => s1w.closed, "the server to see the client close");
          assert.equal(s1w.err, undefined);
          await waitFor(() => c1w.closed, "the client's own close report");
          assert.equal(c1w.err, undefined);
          // Server closes: the client side hears it.
          const c2 = await rt.connectUnix(path);
          const got: Uint8Array[] = [];
          c2.onData((c) => got.push(c));
          const c2w = closeWatch(c2);
          await waitFor(() => accepted.length === 2, "the second connection");
          accepted[1]!.write(new TextEncoder().encode("bye"));
          accepted[1]!.close();
          await waitFor(() => c2w.closed, "the client to see the server close");
          assert.equal(text.decode(concat(got)), "bye", "data written before close arrives first");
          assert.equal(c2w.err, undefined);
          // Writes after close are dropped, and close reports stay single.
          c2.write(new Uint8Array([1]));
          c2.close();
          await new Promise((r) => setTimeout(r, 50));
          assert.equal(c2w.count, 1);
          assert.equal(s1w.count, 1);
          await server.close();
        } finally {
          cleanup();
        }
      });

      t.it("close() removes the socket file; connecting then fails", async () => {
        const rt = await getRt();
        try {
          const path = sockPath();
          const server = await rt.listenUnix(path, (conn) => conn.onData(() => {}));
          await server.close();
          assert.equal(existsSync(path), false);
          await assert.rejects(rt.connectUnix(path));
        } finally {
          cleanup();
        }
      });

      t.it("refuses to listen on a path that exists", async () => {
        const rt = await getRt();
        try {
          const path = sockPath();
          writeFileSync(path, "");
          await assert.rejects(rt.listenUnix(path, () => {}));
        } finally {
          cleanup();
        }
      });
    });

    t.describe("workers", () => {
      t.it("round-trips calls and transferred buffers through a Channel, with start-up data", async () => {
        const rt = await getRt();
        const data = { greeting: "hello", n: 3, list: [1, "two", null] };
        const worker = rt.startWorker(workerUrl(expected), data);
        worker.unref();
        const answers: ArrayBuffer[] = [];
        const channel = new Channel(worker, { name: "the contract worker", onData: (d) => answers.push(d as ArrayBuffer) });
        try {
          // Posted at once: the worker is still starting and must not lose it.
          assert.equal(await channel.call("add", [2, 40]), 42);
          assert.deepEqual(await channel.call("info"), { runtime: expected, data, inWorker: true });
          // Binary data, as the broker's frames: buffers cross transferred, both ways.
          const sent = [pattern(10, 1), pattern(1 << 20, 2)];
          for (const s of sent) {
            const copy = s.slice();
            channel.send(copy.buffer as ArrayBuffer);
            assert.equal(copy.byteLength, 0, "a transferred buffer is detached at the sender");
          }
          await waitFor(() => answers.length === sent.length, "the echoed buffers");
          for (let i = 0; i < sent.length; i++) assertBytes(new Uint8Array(answers[i]!), sent[i]!.slice().reverse(), `echo ${i}`);
          await assert.rejects(channel.call("nope"), (e: PyisolateError) => e.code === "NOT_CALLABLE" && /no handler "nope"/.test(e.message));
          await assert.rejects(channel.call("hang", [], { timeoutMs: 50 }), (e: PyisolateError) => e.code === "TIMEOUT" && /hang on the contract worker did not answer within 50 ms/.test(e.message));
        } finally {
          channel.close("CANCELLED", "the test is over");
          await worker.terminate();
        }
      });
    });

    t.describe("worker failures", () => {
      t.it("reports a worker whose module fails to load through onError", async () => {
        const rt = await getRt();
        const worker = rt.startWorker(new URL("./contract_worker_broken.mjs", import.meta.url), null);
        worker.unref();
        const err = await new Promise<Error>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("onError was not called within 10 s")), 10_000);
          worker.onError((e) => {
            clearTimeout(timer);
            resolve(e);
          });
        });
        assert.match(err.message, /fails on purpose|exited/);
        await worker.terminate();
      });

      t.it("a worker that dies rejects the pending call to its service, and every later call", async () => {
        const rt = await getRt();
        const worker = rt.startWorker(workerUrl(expected), null);
        worker.unref();
        const channel = new Channel(worker, { name: "the contract worker", defaultTimeoutMs: 0 });
        worker.onError((e) => channel.close("PROCESS_FAILED", `the worker died: ${e.message}`));
        try {
          await assert.rejects(channel.call("hangThenDie"), (e: PyisolateError) => {
            assert.equal(e.code, "PROCESS_FAILED");
            assert.match(e.message, /^hangThenDie on the contract worker failed: the worker died: ([^]*dies on purpose|[^]*exited)/);
            return true;
          });
          await assert.rejects(channel.call("add", [1, 2]), (e: PyisolateError) => e.code === "PROCESS_FAILED");
        } finally {
          await worker.terminate();
        }
      });

      for (const dieOn of ["start", "stop"] as const) {
        t.it(`a broker worker that dies during ${dieOn} rejects it with a clear error`, async () => {
          const rt = await getRt();
          const exits: BrokerExit[] = [];
          const sink = { frames() {}, lines() {}, spawned() {}, exit: (i: BrokerExit) => void exits.push(i) };
          const link = workerLink(rt, sink, "Dying", workerUrl(expected), { role: "dying-broker", dieOn });
          const opts = { name: "Dying", python: "python3", config: {}, env: {}, startTimeoutMs: 60_000 } as unknown as BrokerStartOptions;
          try {
            const pending = dieOn === "start" ? link.start(opts) : link.start(opts).then(() => link.stop(30_000));
            await assert.rejects(pending, (e: PyisolateError) => {
              assert.equal(e.code, "PROCESS_FAILED");
              assert.match(e.message, new RegExp(`^${dieOn} on the broker worker of "Dying" failed: the worker died: `));
              return true;
            });
            if (dieOn === "stop") await waitFor(() => exits.length === 1, "the exit report");
            if (dieOn === "stop") assert.match(exits[0]!.reason ?? "", /the broker worker died/);
          } finally {
            await link.dispose();
          }
        });
      }
    });

    t.describe("mapFile", () => {
      t.it(`maps a /dev/shm file${expected === "node" ? "" : " without copying"}, privately`, async () => {
        const rt = await getRt();
        const path = `/dev/shm/pyi-contract-${process.pid}-${randomBytes(4).toString("hex")}`;
        const size = (1 << 20) + 123;
        const content = pattern(size, 7);
        writeFileSync(path, content);
        try {
          const length = size - 100;
          const m = rt.mapFile(path, length);
          try {
            assert.equal(typeof m.zeroCopy, "boolean");
            if (expected !== "node") assert.equal(m.zeroCopy, true, `${expected} maps files without copying`);
            assertBytes(m.bytes, content.subarray(0, length), "mapped bytes");
            // A change to the file shows through a mapping, never through a copy.
            const fd = openSync(path, "r+");
            try {
              writeSync(fd, new Uint8Array([0xaa, 0xbb]), 0, 2, 4096);
            } finally {
              closeSync(fd);
            }
            const shows = m.bytes[4096] === 0xaa && m.bytes[4097] === 0xbb;
            assert.equal(shows, m.zeroCopy, m.zeroCopy ? "the mapping sees the file's pages" : "a copy does not change");
            // Writing into the view never reaches the file.
            m.bytes[0] = (content[0]! + 1) & 255;
            assert.equal(m.bytes[0], (content[0]! + 1) & 255);
            assert.equal(readFileSync(path)[0], content[0], "the file is unchanged by writes into the view");
          } finally {
            m.unmap();
            m.unmap(); // twice: harmless
          }
          const empty = rt.mapFile(path, 0);
          assert.equal(empty.bytes.length, 0);
          empty.unmap();
        } finally {
          unlinkSync(path);
        }
      });
    });
  });
}
