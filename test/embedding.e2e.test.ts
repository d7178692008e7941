// Embedding pyisolate in a program that has its own ways: its logger (console, pino-shaped
// objects), its runtime's permissions (Deno without -A), and errors it can switch on (every
// error a PyisolateError with a code).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { Console } from "node:console";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createHost, PyisolateError, type Prompt } from "../src/mod.ts";
import { asPyisolateError } from "../src/errors.ts";

const repo = join(import.meta.dirname, "..");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");
let root: string;
let nodes: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-embed-"));
  nodes = join(root, "custom_nodes");
  mkdirSync(join(nodes, "Chatty"), { recursive: true });
  writeFileSync(
    join(nodes, "Chatty", "__init__.py"),
    [
      "import sys",
      "print('hello from Chatty')",
      "class Shout:",
      "    @classmethod",
      "    def INPUT_TYPES(cls):",
      "        return {'required': {'text': ('STRING', {'default': 'hi'})}}",
      "    RETURN_TYPES = ('STRING',)",
      "    FUNCTION = 'run'",
      "    CATEGORY = 'test'",
      "    OUTPUT_NODE = True",
      "    def run(self, text):",
      "        print('shouting', text, file=sys.stderr)",
      "        return {'ui': {'text': [text.upper()]}, 'result': (text.upper(),)}",
      "NODE_CLASS_MAPPINGS = {'Shout': Shout}",
      "",
    ].join("\n"),
  );
  // A manifest the host warns about (an unknown key), so the logger gets a warning too.
  mkdirSync(join(nodes, "Odd"));
  writeFileSync(join(nodes, "Odd", "__init__.py"), "NODE_CLASS_MAPPINGS = {}\n");
  writeFileSync(join(nodes, "Odd", "pyisolate.yaml"), "isolated: false\nfrobnicate: 1\n");
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const prompt: Prompt = { "1": { class_type: "Shout", inputs: { text: "quiet" } } };

/** A Writable collecting what it is written. */
function sink(): { stream: Writable; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  return { stream, text: () => text };
}

describe("the logger option", () => {
  it("takes a console: info lines to its stdout, warnings to its stderr", async () => {
    const out = sink();
    const err = sink();
    const logger = new Console({ stdout: out.stream, stderr: err.stream });
    const host = await createHost({ customNodes: nodes, cacheDir: join(root, "cache-console"), python: hostPython, logger });
    try {
      expect((await host.run(prompt)).status).toBe("success");
    } finally {
      await host.close();
    }
    expect(out.text()).toContain("][ shared | hello from Chatty\n");
    expect(out.text()).toContain("][ shared ! shouting quiet\n");
    expect(err.text()).toMatch(/^\]\[ Odd warning: .*frobnicate/m);
  });

  it("takes a pino-shaped logger, whose methods need their `this`", async () => {
    class PinoLike {
      records: { level: number; msg: string }[] = [];
      #min: number;
      constructor(min: number) {
        this.#min = min;
      }
      #log(level: number, msg: string): void {
        if (level >= this.#min) this.records.push({ level, msg });
      }
      debug(msg: string) {
        this.#log(20, msg);
      }
      info(msg: string) {
        this.#log(30, msg);
      }
      warn(msg: string) {
        this.#log(40, msg);
      }
      error(msg: string) {
        this.#log(50, msg);
      }
    }
    const logger = new PinoLike(20);
    const host = await createHost({ customNodes: nodes, cacheDir: join(root, "cache-pino"), python: hostPython, logger });
    try {
      expect((await host.run(prompt)).status).toBe("success");
    } finally {
      await host.close();
    }
    expect(logger.records).toContainEqual({ level: 30, msg: "][ shared | hello from Chatty" });
    expect(logger.records.find((r) => r.level === 40)?.msg).toMatch(/^\]\[ Odd warning: /);
    // The second host starts from the metadata cache: its line comes as info.
    const again = new PinoLike(30);
    const host2 = await createHost({ customNodes: nodes, cacheDir: join(root, "cache-pino"), python: hostPython, logger: again });
    await host2.close();
    expect(again.records).toContainEqual({ level: 30, msg: "][ Chatty loaded from cache" });
  });

  it("refuses an object without the four methods, naming the missing ones", async () => {
    const bad = { info() {}, warn() {} } as unknown as Console;
    await expect(createHost({ customNodes: nodes, cacheDir: join(root, "cache-bad"), python: hostPython, logger: bad })).rejects.toMatchObject({
      name: "PyisolateError",
      code: "USAGE",
      message: expect.stringMatching(/The logger option must have debug, info, warn and error methods .*it has no debug, error\./),
    });
  });
});

describe("errors", () => {
  it("are PyisolateErrors with a code, even from the file system", async () => {
    const file = join(root, "a-file");
    writeFileSync(file, "not a folder");
    const e = await createHost({ customNodes: nodes, cacheDir: join(file, "cache"), python: hostPython }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PyisolateError);
    expect((e as PyisolateError).code).toBe("IO_FAILED");
    expect((e as Error).message).toMatch(/^ENOTDIR while starting the host: /);
    const denied = asPyisolateError(Object.assign(new Error("EACCES: permission denied, mkdir '/x'"), { code: "EACCES", path: "/x" }), "making the cache");
    expect(denied.code).toBe("PERMISSION_DENIED");
    expect(denied.file).toBe("/x");
    expect(asPyisolateError(new TypeError("x is undefined"), "running").code).toBe("INTERNAL");
  });
});

describe("Deno without -A", () => {
  const deno = join(repo, "node_modules", ".bin", "deno");
  const script = join("test", "runtimes", "deno_permissions.ts");
  const tryHost = (perms: string[], cache: string) => {
    const r = spawnSync(deno, ["run", "--no-check", ...perms, script, nodes, join(root, cache), hostPython], {
      cwd: repo,
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      timeout: 120_000,
    });
    const line = r.stdout.trim().split("\n").at(-1) ?? "";
    expect(line, r.stderr).toMatch(/^\{/);
    return JSON.parse(line) as { ok?: boolean; name?: string; code?: string; message?: string };
  };

  it("says which permission is missing instead of calling the Python not executable", () => {
    const noSys = tryHost(["--allow-read", "--allow-env"], "deno-cache-1");
    expect(noSys).toMatchObject({ name: "PyisolateError", code: "PERMISSION_DENIED" });
    expect(noSys.message).toContain("The runtime refused the --allow-sys permission while checking whether");
    expect(noSys.message).toContain("run with -A");
    expect(noSys.message).not.toContain("not an executable file");
    const noRun = tryHost(["--allow-read", "--allow-env", "--allow-sys", "--allow-write"], "deno-cache-2");
    expect(noRun).toMatchObject({ name: "PyisolateError", code: "PERMISSION_DENIED" });
    expect(noRun.message).toMatch(/refused the --allow-run permission while starting the host Python /);
    expect(tryHost(["-A"], "deno-cache-3")).toEqual({ ok: true });
  });
});
