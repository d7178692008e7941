/**
 * End to end: real Python processes (`python -m pyisolate_runtime`) behind real broker
 * workers and Unix sockets, driven through HostCore/PythonProcess; and the RPC endpoint alone
 * over a real socket pair.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { HostCore } from "../src/process/host_core.ts";
import { PythonProcess } from "../src/process/python_process.ts";
import { ServiceRegistry, currentCall } from "../src/rpc/services.ts";
import { RpcEndpoint } from "../src/rpc/endpoint.ts";
import { FrameDecoder } from "../src/protocol/frames.ts";
import { RemoteError } from "../src/protocol/remote_error.ts";
import { isTuple, tuple } from "../src/protocol/py_types.ts";
import { PyisolateError } from "../src/errors.ts";
import { Logger } from "../src/log.ts";
import { getRuntime } from "../src/runtime/detect.ts";
import type { SocketConn } from "../src/runtime/contract.ts";

const PY = fileURLToPath(new URL("../.venv/bin/python", import.meta.url));
const FIX = fileURLToPath(new URL("./fixtures/rpc/", import.meta.url));
const UV = fileURLToPath(new URL("../.venv/bin/uv", import.meta.url));

/** A logger that keeps every line. */
function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: new Logger((_level, line) => lines.push(line)), lines };
}

/** Whether a pid still runs (a zombie has exited: it only waits for its reaper). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2)[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

async function rejection(p: Promise<unknown>): Promise<PyisolateError> {
  try {
    await p;
  } catch (e) {
    return e as PyisolateError;
  }
  throw new Error("expected the call to fail");
}

describe("RpcEndpoint over a real socket pair", () => {
  let a: RpcEndpoint;
  let b: RpcEndpoint;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const rt = await getRuntime();
    const dir = mkdtempSync(join(tmpdir(), "pyisolate-rpc-"));
    let accept: (c: SocketConn) => void = () => {};
    const accepted = new Promise<SocketConn>((r) => (accept = r));
    const server = await rt.listenUnix(join(dir, "s"), (c) => accept(c));
    const client = await rt.connectUnix(join(dir, "s"));
    const srv = await accepted;
    const wire = (conn: SocketConn, ep: () => RpcEndpoint) => {
      const frames = new FrameDecoder();
      conn.onData((chunk) => {
        for (const p of frames.push(chunk)) ep().receive(p);
      });
    };
    a = new RpcEndpoint({
      name: "B-side",
      send: (f) => client.write(f),
      handler: (call) => {
        if (call.method === "slow") return new Promise((r) => setTimeout(() => r("late"), 5000));
        if (call.method === "wait") return new Promise((_r, reject) => call.signal.addEventListener("abort", () => reject(new Error("aborted"))));
        if (call.method === "ask") return a.call("S", "twice", call.args);
        return { got: call.args, kw: call.kwargs ?? null };
      },
    });
    b = new RpcEndpoint({
      name: "A-side",
      send: (f) => srv.write(f),
      handler: async (call) => {
        if (call.method === "twice") return (call.args[0] as number) * 2;
        if (call.method === "apply") return (call.args[0] as (x: number) => Promise<number>)(call.args[1] as number);
        if (call.method === "fail") throw new TypeError("broken on purpose");
        if (call.method === "nested") return b.call("S", "ask", call.args);
        return null;
      },
    });
    wire(client, () => a);
    wire(srv, () => b);
    close = async () => {
      client.close();
      srv.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    };
  });
  afterAll(() => close());

  it("calls both ways with args, kwargs, tuples and big integers", async () => {
    const r = (await b.call("S", "echo", [1, tuple<unknown>("x", 2n ** 64n - 1n)], { kwargs: { k: 2 ** 40 } })) as { got: unknown[]; kw: unknown };
    expect(r.got[0]).toBe(1);
    expect(isTuple(r.got[1])).toBe(true);
    expect((r.got[1] as unknown[])[1]).toBe(2n ** 64n - 1n);
    expect(r.kw).toEqual({ k: 2 ** 40 });
    expect(await a.call("S", "twice", [21])).toBe(42);
  });

  it("nests calls in both directions without deadlock", async () => {
    // a → b.nested → a.ask → b.twice
    expect(await a.call("S", "nested", [5])).toBe(10);
  });

  it("carries callbacks as functions", async () => {
    const seen: number[] = [];
    const r = await a.call("S", "apply", [(x: number) => (seen.push(x), x + 100), 7]);
    expect(r).toBe(107);
    expect(seen).toEqual([7]);
  });

  it("raises the peer's error as RemoteError naming the pack and method", async () => {
    const e = await rejection(a.call("S", "fail"));
    expect(e).toBeInstanceOf(RemoteError);
    expect((e as RemoteError).pythonType).toBe("TypeError");
    expect(e.message).toBe('S.fail in pack "B-side" raised TypeError: broken on purpose');
  });

  it("times out, cancels by signal, and the peer sees the cancel", async () => {
    const t = await rejection(b.call("S", "slow", [], { timeoutMs: 50 }));
    expect(t.code).toBe("TIMEOUT");
    expect(t.message).toContain('S.slow in pack "A-side" did not answer within 50 ms');
    const ac = new AbortController();
    const p = b.call("S", "wait", [], { signal: ac.signal, timeoutMs: 0 });
    setTimeout(() => ac.abort(), 20);
    const c = await rejection(p);
    expect(c.code).toBe("CANCELLED");
    expect(b.pending).toBe(0);
  });

  it("rejects every pending call on close with the cause", async () => {
    const p1 = rejection(b.call("S", "slow", [], { timeoutMs: 0 }));
    const p2 = rejection(b.call("S", "wait", [], { timeoutMs: 0 }));
    b.close("PROCESS_EXITED", "the peer went away");
    for (const p of [p1, p2]) {
      const e = await p;
      expect(e.code).toBe("PROCESS_EXITED");
      expect(e.message).toMatch(/^S\.(slow|wait) in pack "A-side" failed: the peer went away$/);
    }
    expect((await rejection(b.call("S", "x"))).code).toBe("PROCESS_EXITED");
  });
});

describe("real Python processes", () => {
  const registry = new ServiceRegistry();
  const { logger, lines } = capture();
  let core: HostCore;
  let cborVenv = "";

  class Greeter {
    hello(name: string): string {
      return `hello ${name} from ${currentCall()?.caller}`;
    }
    async slowAdd(a: number, b: number): Promise<number> {
      await new Promise((r) => setTimeout(r, 10));
      return a + b;
    }
    kw(a: number, kwargs?: { scale?: number }): number {
      return a * (kwargs?.scale ?? 1);
    }
    big(x: bigint): bigint {
      return x + 1n;
    }
    fail(): never {
      throw new RangeError("host side failure");
    }
  }
  class Nested {
    down(depth: number): Promise<unknown> {
      return core.processFor("rpc_pack").call("Fixture", "nested", [depth]);
    }
  }
  registry.register("Greeter", Greeter);
  registry.register("Nested", Nested);

  beforeAll(async () => {
    cborVenv = mkdtempSync(join(tmpdir(), "pyisolate-cbor2-"));
    execFileSync(UV, ["venv", "-q", "--python", PY, join(cborVenv, "venv")]);
    execFileSync(UV, ["pip", "install", "-q", "--python", join(cborVenv, "venv", "bin", "python"), "cbor2==5.4.6"]);
    core = new HostCore({
      hostPython: PY,
      resolvePython: async (pack) => (pack === "cbor_pin_pack" ? join(cborVenv, "venv", "bin", "python") : PY),
      packs: [
        { name: "rpc_pack", path: join(FIX, "rpc_pack"), kind: "isolated" },
        { name: "cache_user_a", path: join(FIX, "cache_user_a"), kind: "isolated" },
        { name: "cache_user_b", path: join(FIX, "cache_user_b"), kind: "isolated" },
        { name: "cbor_pin_pack", path: join(FIX, "cbor_pin_pack"), kind: "isolated" },
      ],
      sysPath: [join(FIX, "shared_lib")],
      services: registry,
      logger,
    });
  });
  afterAll(async () => {
    await core?.close();
    rmSync(cborVenv, { recursive: true, force: true });
  });

  const fixture = (method: string, args: unknown[] = [], opts = {}) => core.processFor("rpc_pack").call("Fixture", method, args, opts);

  it("spawns just in time, logs it, and reuses the process", async () => {
    const proc = core.processFor("rpc_pack");
    expect(proc.state).toBe("idle");
    expect(proc.pid).toBeUndefined();
    expect(await fixture("add", [2, 3])).toBe(5);
    expect(lines).toContain("][ rpc_pack - just-in-time spawning of isolated custom_node");
    expect(lines).toContain("][ rpc_pack | rpc_pack imported");
    const pid = proc.pid;
    expect(pid).toBe(await fixture("pid"));
    expect(await fixture("add", ["a", "b"])).toBe("ab");
    expect(proc.pid).toBe(pid);
    expect(proc.starts).toBe(1);
    expect(proc.readyInfo?.packs.map((p) => [p.name, p.ok])).toEqual([["rpc_pack", true]]);
    expect(proc.readyInfo?.pid).toBe(pid);
  });

  it("turns the child's stdout and stderr into prefixed log lines", async () => {
    await fixture("print_lines");
    expect(await until(() => lines.includes("][ rpc_pack ! hello from stderr"), 2000)).toBe(true);
    expect(lines).toContain("][ rpc_pack | hello from stdout");
  });

  it("calls the host from the child: services by name, kwargs, async methods, the caller's name", async () => {
    expect(await fixture("call_host", ["Greeter", "hello", "ann"])).toBe("hello ann from rpc_pack");
    expect(await fixture("call_host", ["Greeter", "slowAdd", 2, 40])).toBe(42);
    expect(await core.processFor("rpc_pack").call("Fixture", "call_host_kw", ["Greeter", "kw", 5], { kwargs: { scale: 3 } })).toBe(15);
  });

  it("keeps integers above 2^53 exact both ways", async () => {
    const max = 2n ** 64n - 1n;
    expect(await fixture("describe", [max])).toEqual({ type: "int", value: max });
    expect(await fixture("describe", [2 ** 40])).toEqual({ type: "int", value: 2 ** 40 });
    expect(await fixture("describe", [-(2n ** 64n)])).toEqual({ type: "int", value: -(2n ** 64n) });
    expect(await fixture("describe", [2n ** 100n])).toEqual({ type: "int", value: 2n ** 100n });
    expect(await fixture("big")).toEqual([max, -(2n ** 64n), 2n ** 53n + 1n, 2n ** 100n, 2 ** 40]);
    // child → host → child: the host adds one to 2^64 - 1
    expect(await fixture("call_host", ["Greeter", "big", max])).toBe(2n ** 64n);
  });

  it("keeps tuples, lists, bytes, None and floats apart", async () => {
    const k = (await fixture("kinds")) as Record<string, unknown>;
    expect(isTuple(k.tuple)).toBe(true);
    expect(isTuple(k.list)).toBe(false);
    expect(Array.from(k.bytes as Uint8Array)).toEqual([0, 1]);
    expect(k.none).toBeNull();
    expect(k.float).toBe(1.5);
    expect(await fixture("describe", [tuple(1, 2)])).toMatchObject({ type: "tuple" });
    expect(await fixture("describe", [[1, 2]])).toMatchObject({ type: "list" });
    expect(await fixture("describe", [1.5])).toEqual({ type: "float", value: 1.5 });
  });

  it("nests calls host → child → host → child", async () => {
    const r = (await fixture("nested", [3])) as unknown[];
    expect(r.slice(0, 4)).toEqual([3, 2, 1, "bottom"]);
    expect(r[4]).toBe(core.processFor("rpc_pack").pid);
  });

  it("passes callbacks both ways", async () => {
    const seen: unknown[] = [];
    expect(await fixture("apply", [(x: number) => (seen.push(x), x * 10), 4])).toBe(40);
    expect(await fixture("apply_async", [async (x: string) => `${x}!`, "hey"])).toBe("hey!");
    expect(seen).toEqual([4]);
    const add3 = (await fixture("make_adder", [3])) as (x: number) => Promise<number>;
    expect(typeof add3).toBe("function");
    expect(await add3(5)).toBe(8);
  });

  it("surfaces a Python exception with its type and traceback", async () => {
    const e = await rejection(fixture("boom", ["x"]));
    expect(e).toBeInstanceOf(RemoteError);
    const r = e as RemoteError;
    expect(r.code).toBe("REMOTE");
    expect(r.pack).toBe("rpc_pack");
    expect(r.method).toBe("Fixture.boom");
    expect(r.pythonType).toBe("ValueError");
    expect(r.pythonMessage).toBe("bad value: x");
    expect(r.traceback).toContain("Traceback (most recent call last)");
    expect(r.traceback).toContain('raise ValueError(f"bad value: {text}")');
    expect(r.message).toMatch(/^Fixture\.boom in pack "rpc_pack" raised ValueError: bad value: x\nTraceback/);
  });

  it("carries a host error back into Python and out again", async () => {
    const e = (await rejection(fixture("call_host", ["Greeter", "fail"]))) as RemoteError;
    expect(e).toBeInstanceOf(RemoteError);
    expect(e.message).toContain("host side failure");
  });

  it("refuses private methods, unknown services and unknown host services with NotCallable", async () => {
    const priv = (await rejection(fixture("_private"))) as RemoteError;
    expect(priv.pythonType).toBe("pyisolate.NotCallable");
    const unknown = (await rejection(core.processFor("rpc_pack").call("Nope", "x"))) as RemoteError;
    expect(unknown.pythonType).toBe("pyisolate.NotCallable");
    const hostSide = (await rejection(fixture("call_host", ["Greeter", "constructor"]))) as RemoteError;
    expect(hostSide.pythonType).toBe("pyisolate.NotCallable");
    expect(hostSide.message).toContain('Service "Greeter" has no public method "constructor"');
    const noService = (await rejection(fixture("call_host", ["Missing", "x"]))) as RemoteError;
    expect(noService.message).toContain('No host service is named "Missing"');
  });

  it("times out a call, cancels it in the child, and stays usable", async () => {
    const e = await rejection(fixture("sleep", [3], { timeoutMs: 200 }));
    expect(e.code).toBe("TIMEOUT");
    expect(e.message).toContain('Fixture.sleep in pack "rpc_pack" did not answer within 200 ms');
    expect(await fixture("add", [1, 1])).toBe(2);
    const ac = new AbortController();
    const p = fixture("sleep", [3], { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    expect((await rejection(p)).code).toBe("CANCELLED");
    expect(await core.processFor("rpc_pack").call("$rt", "ping")).toBe("pong");
  });

  it("rejects the pending call when the process crashes mid-call, and restarts on the next call", async () => {
    const proc = core.processFor("rpc_pack");
    const before = proc.pid!;
    const slow = rejection(fixture("sleep", [10], { timeoutMs: 0 }));
    const e = await rejection(fixture("crash", [3]));
    expect(e.code).toBe("PROCESS_EXITED");
    expect(e.message).toContain('Fixture.crash in pack "rpc_pack" failed');
    expect(e.message).toContain(`(pid ${before}) exited with code 3`);
    expect(e.message).toContain("Last stderr lines:");
    expect(e.message).toContain("about to crash with os._exit");
    expect(e.message).toContain("stderr line 59");
    expect(e.message).not.toContain("stderr line 5\n"); // only the last lines are kept
    const other = await slow;
    expect(other.code).toBe("PROCESS_EXITED");
    expect(other.message).toContain("Fixture.sleep");
    expect(proc.state).toBe("exited");
    expect(running(before)).toBe(false);

    const pid = await fixture("pid");
    expect(pid).not.toBe(before);
    expect(proc.starts).toBe(2);
    expect(lines.some((l) => l.startsWith("][ rpc_pack - restarting isolated custom_node (it exited with code 3)"))).toBe(true);

    const killed = await rejection(fixture("kill_self"));
    expect(killed.code).toBe("PROCESS_EXITED");
    expect(killed.message).toContain("was killed by SIGKILL");
    expect(await fixture("add", [2, 2])).toBe(4);
    expect(proc.starts).toBe(3);
  });

  it("shares one ModelCache (ProxiedSingleton) between two isolated packs", async () => {
    type Out = { model: { name: string; loaded_by_pid: number; load_number: number }; caller_pid: number };
    const a = core.processFor("cache_user_a");
    const b = core.processFor("cache_user_b");
    const ra = (await a.call("Node", "process", ["sd15"])) as Out;
    const rb = (await b.call("Node", "process", ["sd15"])) as Out;
    const sharedPid = core.shared.pid;
    expect(sharedPid).toBeGreaterThan(0);
    expect(ra.model).toEqual({ name: "sd15", loaded_by_pid: sharedPid, load_number: 1 });
    expect(rb.model).toEqual(ra.model); // the same instance: loaded once
    expect(ra.caller_pid).toBe(a.pid);
    expect(rb.caller_pid).toBe(b.pid);
    expect(new Set([a.pid, b.pid, sharedPid]).size).toBe(3);
    const rx = (await b.call("Node", "process", ["xl"])) as Out;
    expect(rx.model.load_number).toBe(2);
    expect(await a.call("Node", "loaded")).toEqual(["sd15", "xl"]);
    expect(await core.callSingleton("model_cache", "ModelCache", "loaded")).toEqual(["sd15", "xl"]);
  });

  it("runs a pack that ships its own cbor2 pin", async () => {
    const proc = core.processFor("cbor_pin_pack");
    const info = (await proc.call("Pinned", "info")) as Record<string, unknown>;
    expect(info.preloaded).toBe(false);
    expect(info.version).toBe("5.4.6");
    expect(String(info.file)).toContain(cborVenv);
    expect(info.roundtrip).toEqual({ x: [1, 2, 3] });
    expect(await proc.call("Pinned", "echo", [{ big: 2n ** 64n - 1n, t: tuple(1) }])).toEqual({ big: 2n ** 64n - 1n, t: tuple(1) });
    expect(proc.python).toBe(join(cborVenv, "venv", "bin", "python"));
  });

  it("loads shared packs together into one shared process", async () => {
    const local = new HostCore({
      hostPython: PY,
      packs: [
        { name: "rpc_pack", path: join(FIX, "rpc_pack"), kind: "shared" },
        { name: "cbor_pin_pack", path: join(FIX, "cbor_pin_pack"), kind: "shared" },
      ],
      services: registry,
      logger: new Logger(() => {}),
      exitHooks: false,
    });
    try {
      const p = local.processFor("rpc_pack");
      expect(local.processFor("cbor_pin_pack")).toBe(p);
      const info = await p.start();
      // the host env has no cbor2: that pack fails to import, the other still loads
      expect(info.packs.map((x) => [x.name, x.ok])).toEqual([
        ["rpc_pack", true],
        ["cbor_pin_pack", false],
      ]);
      expect(info.packs[1]!.error?.type).toBe("ModuleNotFoundError");
      expect(await p.call("Fixture", "call_host", ["Greeter", "hello", "shared"])).toBe("hello shared from shared");
    } finally {
      await local.close();
    }
  });

  it("closes cleanly: no process left, pending calls rejected", async () => {
    const local = new HostCore({ hostPython: PY, packs: [{ name: "rpc_pack", path: join(FIX, "rpc_pack"), kind: "isolated" }], logger: new Logger(() => {}), exitHooks: false });
    const proc = local.processFor("rpc_pack");
    const pid = (await proc.call("Fixture", "pid")) as number;
    const pending = rejection(proc.call("Fixture", "sleep", [30], { timeoutMs: 0 }));
    await local.close();
    const e = await pending;
    expect(e.code).toBe("PROCESS_EXITED");
    expect(running(pid)).toBe(false);
    expect(existsSync(`/proc/${pid}`)).toBe(false); // reaped: no zombie
    expect(proc.state).toBe("closed");
    expect((await rejection(proc.call("$rt", "ping"))).code).toBe("USAGE");
  });
});

describe("host shutdown leaves no process behind", () => {
  const script = fileURLToPath(new URL("./fixtures/rpc/host_script.mjs", import.meta.url));

  function startHost(mode: string): Promise<{ pids: number[]; host: ReturnType<typeof spawn>; out: () => string }> {
    const host = spawn(process.execPath, [script, mode, PY], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    host.stdout!.on("data", (c) => (out += c));
    host.stderr!.on("data", (c) => (err += c));
    return new Promise((resolve, reject) => {
      const started = (): boolean => {
        const line = out.split("\n").find((l) => l.startsWith("{"));
        if (line) resolve({ pids: JSON.parse(line).pids, host, out: () => out });
        return line !== undefined;
      };
      const t = setInterval(() => started() && clearInterval(t), 20);
      // A host that exits on its own ("exit") may be gone before the next look at its output;
      // "close" comes once all of that output was read.
      host.on("close", (code) => {
        clearInterval(t);
        if (!started()) reject(new Error(`host exited (${code}) before starting: ${err}`));
      });
    });
  }

  it("children exit by themselves when the host is killed with SIGKILL", async () => {
    const { pids, host } = await startHost("wait");
    expect(pids.length).toBe(2);
    for (const pid of pids) expect(running(pid)).toBe(true);
    host.kill("SIGKILL");
    expect(await until(() => pids.every((p) => !running(p)), 5000)).toBe(true);
  });

  it("the exit hook kills the children when the host exits without closing", async () => {
    const { pids, host } = await startHost("exit");
    await new Promise((r) => (host.exitCode !== null ? r(null) : host.on("exit", r)));
    expect(await until(() => pids.every((p) => !running(p)), 3000)).toBe(true);
  });

  it("SIGTERM to the host kills the children", async () => {
    const { pids, host } = await startHost("wait");
    host.kill("SIGTERM");
    const [, signal] = await new Promise<[number | null, string | null]>((r) => host.on("exit", (c, s) => r([c, s])));
    expect(signal).toBe("SIGTERM");
    expect(await until(() => pids.every((p) => !running(p)), 3000)).toBe(true);
  });

  it("a clean close stops every child and lets the host exit on its own", async () => {
    const { pids, host, out } = await startHost("close");
    const code = await new Promise((r) => (host.exitCode !== null ? r(host.exitCode) : host.on("exit", r)));
    expect(code).toBe(0);
    expect(out()).toContain("closed");
    for (const pid of pids) expect(running(pid)).toBe(false);
  });
});

describe("PythonProcess on either broker", () => {
  it("runs its broker on the calling thread by default (PYISOLATE_BROKER=worker picks a worker)", () => {
    const proc = new PythonProcess({ name: "default", kind: "isolated", python: PY, logger: new Logger(() => {}) });
    expect(proc.brokerMode).toBe(process.env.PYISOLATE_BROKER === "worker" ? "worker" : "inline");
  });

  for (const broker of ["inline", "worker"] as const) {
    it(`works the same with broker: "${broker}"`, async () => {
      const proc = new PythonProcess({ name: broker, kind: "isolated", python: PY, packs: [{ name: "rpc_pack", path: join(FIX, "rpc_pack") }], broker, logger: new Logger(() => {}) });
      try {
        expect(proc.brokerMode).toBe(broker);
        expect(await proc.call("Fixture", "add", [20, 22])).toBe(42);
        expect(await proc.call("$rt", "echo", [2n ** 64n - 1n])).toBe(2n ** 64n - 1n);
        const e = await rejection(proc.call("Fixture", "crash", [5]));
        expect(e.message).toContain("exited with code 5");
        expect(await proc.call("$rt", "ping")).toBe("pong");
      } finally {
        await proc.close();
      }
    });
  }

  it("fails start-up with the Python's error when the executable is missing", async () => {
    const proc = new PythonProcess({ name: "ghost", kind: "isolated", python: "/nonexistent/python", logger: new Logger(() => {}) });
    const e = await rejection(proc.call("$rt", "ping"));
    expect(e.code).toBe("PYTHON_NOT_FOUND");
    expect(e.message).toContain('Could not start Python "/nonexistent/python" for "ghost"');
    await proc.close();
  });
});
