// `pyisolate run` at a real terminal (a pseudo-terminal, test/fixtures/pty_driver.py): the live
// status line while processes start and nodes run, and Ctrl-C — the first interrupts the
// running prompt, says what ran and what was stopped, releases every segment and exits 130;
// a second exits at once. /dev/shm must hold none of the run's segments afterwards.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const repo = join(import.meta.dirname, "..");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");
let root: string;
let nodes: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-tty-"));
  nodes = join(root, "custom_nodes");
  mkdirSync(join(nodes, "SlowPack"), { recursive: true });
  writeFileSync(
    join(nodes, "SlowPack", "__init__.py"),
    [
      "import os, time",
      "import torch",
      "import comfy.model_management as mm",
      "",
      "class MakeImage:",
      "    @classmethod",
      "    def INPUT_TYPES(cls):",
      "        return {'required': {}}",
      "    RETURN_TYPES = ('IMAGE',)",
      "    FUNCTION = 'run'",
      "    CATEGORY = 'test'",
      "    def run(self):",
      "        return (torch.rand(1, 64, 64, 3),)",
      "",
      "class SlowInvert:",
      "    @classmethod",
      "    def INPUT_TYPES(cls):",
      "        return {'required': {'image': ('IMAGE',), 'patient': ('BOOLEAN', {'default': True})}}",
      "    RETURN_TYPES = ('IMAGE',)",
      "    FUNCTION = 'run'",
      "    CATEGORY = 'test'",
      "    def run(self, image, patient):",
      "        host = os.environ.get('PYISOLATE_HOST_PID')",
      "        held = len([f for f in os.listdir('/dev/shm') if f.startswith('pyisolate-%s-' % host)])",
      "        print('slow node started pid=%d segments=%d' % (os.getpid(), held), flush=True)",
      "        for _ in range(1200):",
      "            if patient:",
      "                mm.throw_exception_if_processing_interrupted()",
      "            time.sleep(0.05)",
      "        return (1 - image,)",
      "",
      "class ShowShape:",
      "    @classmethod",
      "    def INPUT_TYPES(cls):",
      "        return {'required': {'image': ('IMAGE',)}}",
      "    RETURN_TYPES = ()",
      "    FUNCTION = 'run'",
      "    OUTPUT_NODE = True",
      "    CATEGORY = 'test'",
      "    def run(self, image):",
      "        return {'ui': {'text': [str(list(image.shape))]}}",
      "",
      "NODE_CLASS_MAPPINGS = {'MakeImage': MakeImage, 'SlowInvert': SlowInvert, 'ShowShape': ShowShape}",
      "",
    ].join("\n"),
  );
  for (const patient of [true, false]) {
    writeFileSync(
      join(root, `slow-${patient}.json`),
      JSON.stringify({
        "1": { class_type: "MakeImage", inputs: {} },
        "2": { class_type: "SlowInvert", inputs: { image: ["1", 0], patient } },
        "3": { class_type: "ShowShape", inputs: { image: ["2", 0] } },
      }),
    );
  }
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

interface PtyResult {
  pid: number;
  exit: number | null;
  signal: number | null;
  output: string;
  marks: number[];
  seconds: number;
}

type Step = { wait: string; timeout?: number } | { send: string } | { sleep: number };

/** Runs `pyisolate run <workflow>` (from the sources) under a pseudo-terminal. */
function atTerminal(workflow: string, steps: Step[], cache: string): Promise<PtyResult> {
  const cli = ["node", "--import", "./workers/ts_register.mjs", "src/cli/bin.ts", "run", workflow, "--custom-nodes", nodes, "--cache-dir", join(root, cache), "--python", hostPython, "--output", join(root, "out")];
  return new Promise((resolve, reject) => {
    const child = spawn(hostPython, [join(repo, "test", "fixtures", "pty_driver.py"), JSON.stringify(steps), "--", ...cli], { cwd: repo, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", () => {
      try {
        resolve(JSON.parse(out) as PtyResult);
      } catch (e) {
        reject(new Error(`pty driver printed no result: ${out.slice(-500)} (${String(e)})`));
      }
    });
  });
}

function segmentsOf(pid: number): string[] {
  return readdirSync("/dev/shm").filter((f) => f.startsWith(`pyisolate-${pid}-`));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("pyisolate run at a terminal", () => {
  it("shows a live status line, and Ctrl-C interrupts the running node, says what ran and what stopped, releases every segment, exits 130", { timeout: 180_000 }, async () => {
    const r = await atTerminal(join(root, "slow-true.json"), [{ wait: "slow node started", timeout: 120 }, { sleep: 0.6 }, { send: "\u0003" }], "cache-1");
    const text = r.output.replace(/\r/g, "");
    expect(r.exit, text).toBe(130);
    // The running node's status line: a spinner frame and an elapsed time that moves.
    const times = [...text.matchAll(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] running: #2 SlowInvert (\d+\.\d)s/g)].map((m) => m[1]);
    expect(new Set(times).size).toBeGreaterThan(1);
    // Start-up had one too (the shared process starts to read the pack's nodes).
    expect(text).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] starting: 1 pack \d+\.\ds/);
    expect(Number(/segments=(\d+)/.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
    expect(text).toContain("^C: interrupting… (press Ctrl-C again to exit at once)");
    expect(text).toMatch(/■ interrupted #2 +SlowInvert \(SlowPack, shared\)/);
    expect(text).toContain("Interrupted (Ctrl-C): ran 1 node (#1 MakeImage); stopped 1 running node (#2 SlowInvert); 1 node not started (#3).");
    expect(text).toMatch(/Stopped every process and released [1-9]\d* shared-memory segments?\./);
    expect(segmentsOf(r.pid)).toEqual([]);
    const child = Number(/slow node started pid=(\d+)/.exec(text)?.[1]);
    expect(alive(child)).toBe(false);
  });

  it("exits at once on a second Ctrl-C while a node ignores the interrupt, leaving no segment and no process", { timeout: 180_000 }, async () => {
    const r = await atTerminal(
      join(root, "slow-false.json"),
      [{ wait: "slow node started", timeout: 120 }, { send: "\u0003" }, { sleep: 1.5 }, { send: "\u0003" }, { wait: "exiting now", timeout: 10 }],
      "cache-2",
    );
    const text = r.output.replace(/\r/g, "");
    expect(r.exit, text).toBe(130);
    // Still running after the first Ctrl-C (the node does not check), gone right after the second.
    expect(text).toContain("^C: interrupting…");
    expect(text).toContain("^C again: exiting now.");
    expect(text).not.toContain("Interrupted (Ctrl-C): ran");
    expect(r.seconds - r.marks[3]!).toBeLessThan(10);
    expect(segmentsOf(r.pid)).toEqual([]);
    const child = Number(/slow node started pid=(\d+)/.exec(text)?.[1]);
    for (let i = 0; i < 50 && alive(child); i++) await new Promise((ok) => setTimeout(ok, 100));
    expect(alive(child)).toBe(false);
  });
});
