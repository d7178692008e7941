/**
 * A child forked from a template process (`python/pyisolate_runtime/template.py`), seen as a
 * {@link ChildHandle} like one the runtime spawned: the broker asks the template for a fork on
 * a connection of its own, and that connection then carries the child's pid, its stdout and
 * stderr, and its exit status. Signals go straight to the child's process group (the child
 * is a session leader).
 *
 * Wire format, both ways: frames of `[u32 length, big-endian][u8 kind][payload]`. Broker →
 * template: `F` (fork: JSON `{python, env, cwd}`), `S` (status). Template → broker: `P`
 * (JSON `{pid}`), `R` (refused: JSON `{reason}`), `O`/`E` (stdout/stderr bytes), `X` (exit:
 * JSON `{code, signal}`), `T` (status JSON).
 * @module
 */
import process from "node:process";
import type { ChildHandle, ExitStatus, Runtime, SocketConn, SpawnOptions } from "../runtime/contract.ts";

const HEADER = 5;

/** Encodes one template frame. */
export function templateFrame(kind: string, payload: Uint8Array | string): Uint8Array {
  const body = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const out = new Uint8Array(HEADER + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out[4] = kind.charCodeAt(0);
  out.set(body, HEADER);
  return out;
}

/** Splits a byte stream into template frames. */
export class TemplateFrames {
  #buf: Uint8Array = new Uint8Array(0);

  push(chunk: Uint8Array): Array<{ kind: string; payload: Uint8Array }> {
    let buf = this.#buf.length ? concat(this.#buf, chunk) : chunk;
    const out: Array<{ kind: string; payload: Uint8Array }> = [];
    while (buf.length >= HEADER) {
      const n = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(0);
      if (buf.length < HEADER + n) break;
      out.push({ kind: String.fromCharCode(buf[4]!), payload: buf.slice(HEADER, HEADER + n) });
      buf = buf.subarray(HEADER + n);
    }
    this.#buf = buf.length ? buf.slice() : new Uint8Array(0);
    return out;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const json = (p: Uint8Array): Record<string, unknown> => JSON.parse(new TextDecoder().decode(p)) as Record<string, unknown>;

/** Sends `sig` to the process group of `pid` (the child leads one), else to the pid alone. */
function signalGroup(pid: number, sig: string): void {
  try {
    process.kill(-pid, sig as NodeJS.Signals);
  } catch {
    try {
      process.kill(pid, sig as NodeJS.Signals);
    } catch {
      // already gone
    }
  }
}

/**
 * Asks the template listening at `socket` to fork a child that runs `python -m
 * pyisolate_runtime` as `opts` describe (`opts.cmd` is the pack's Python; `args` are implied).
 * @throws {Error} when the template cannot be reached or refuses (its reason in the message);
 * the caller then spawns the process plainly.
 */
export async function forkFromTemplate(rt: Runtime, socket: string, opts: SpawnOptions): Promise<ChildHandle> {
  const conn: SocketConn = await rt.connectUnix(socket);
  const frames = new TemplateFrames();
  let pid = 0;
  let done = false;
  let settlePid: (r: { pid?: number; error?: string }) => void = () => {};
  const gotPid = new Promise<{ pid?: number; error?: string }>((r) => (settlePid = r));
  let settleExit: (s: ExitStatus) => void = () => {};
  const exited = new Promise<ExitStatus>((r) => (settleExit = r));
  const finish = (s: ExitStatus) => {
    if (done) return;
    done = true;
    settleExit(s);
  };
  conn.onData((chunk) => {
    for (const f of frames.push(chunk)) {
      if (f.kind === "O") opts.onStdout?.(f.payload);
      else if (f.kind === "E") opts.onStderr?.(f.payload);
      else if (f.kind === "P") {
        pid = Number(json(f.payload).pid);
        settlePid({ pid });
      } else if (f.kind === "R") settlePid({ error: String(json(f.payload).reason) });
      else if (f.kind === "X") {
        const x = json(f.payload);
        finish({ code: typeof x.code === "number" ? x.code : null, signal: typeof x.signal === "string" ? x.signal : null });
        conn.close();
      }
    }
  });
  conn.onClose((err) => {
    settlePid({ error: `the template closed the connection${err ? `: ${err.message}` : ""}` });
    if (pid > 0 && !done) {
      // The template died: its children die with it (PR_SET_PDEATHSIG); make sure of it.
      signalGroup(pid, "SIGKILL");
      finish({ code: null, signal: "SIGKILL" });
    }
  });
  const env = opts.env ?? (Object.fromEntries(Object.entries(process.env).filter(([, v]) => typeof v === "string")) as Record<string, string>);
  conn.write(templateFrame("F", JSON.stringify({ python: opts.cmd, env, cwd: opts.cwd ?? process.cwd() })));
  const r = await gotPid;
  if (r.error !== undefined || !r.pid) {
    conn.close();
    throw new Error(r.error ?? "the template sent no pid");
  }
  return {
    pid: r.pid,
    exited,
    kill(sig = "SIGTERM") {
      if (!done) signalGroup(r.pid!, sig);
    },
  };
}

/** Asks a template for its status (pid, whether CUDA is initialised, threads, modules). */
export async function templateStatus(rt: Runtime, socket: string): Promise<Record<string, unknown>> {
  const conn = await rt.connectUnix(socket);
  const frames = new TemplateFrames();
  return new Promise((resolve, reject) => {
    conn.onData((chunk) => {
      for (const f of frames.push(chunk)) {
        if (f.kind === "T") {
          resolve(json(f.payload));
          conn.close();
        }
      }
    });
    conn.onClose((err) => reject(err ?? new Error("the template closed the connection")));
    conn.write(templateFrame("S", ""));
  });
}
