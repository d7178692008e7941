/**
 * `pyisolate setup`: makes (or checks) the user-level host environment — a venv with the
 * pinned torch build for this platform, uv, and what a ComfyUI environment gives its packs —
 * from the installed package (see `env/setup_env.ts`), with progress.
 * @module
 */
import process from "node:process";
import { setupEnvDir } from "../env/host_python.ts";
import { setupHostEnv, type SetupProgress } from "../env/setup_env.ts";
import { displayPath } from "../util/fs.ts";
import { seconds, type Command } from "./command.ts";
import { StatusLine } from "./view.ts";

/** pip lines worth a line of their own off a terminal. */
const PIP_PROGRESS = /^(Downloading|Installing collected packages|Successfully installed|ERROR)\b/;

/** `pyisolate setup`. */
export const setupCommand: Command = {
  usage: "setup [--python PATH] [--torch SPEC]",
  summary: "make (or check) the host Python environment: torch, uv and what ComfyUI's environment gives packs",
  description:
    "Makes a venv in the user-level folder ($PYISOLATE_HOME, else ~/.local/share/pyisolate) with\n" +
    "the pinned torch build for this platform, numpy, uv, pillow, pyyaml, safetensors, einops, tqdm\n" +
    "and psutil (the package's python/host-requirements.txt). Run it again to check: each step is\n" +
    "skipped when its result is in place, so a complete environment installs nothing.\n" +
    "\n" +
    "--python PATH here is the Python the venv is made from (3.10+; default python3 on PATH).\n" +
    "Afterwards every command uses the environment unless --python, PYISOLATE_PYTHON, the\n" +
    "ComfyUI install around --custom-nodes, or ./.venv names another host Python.",
  flags: [
    {
      name: "--torch",
      value: "SPEC",
      help: "the torch build: cpu, cu<NNN> (e.g. cu128), pypi, a wheel file, a URL or a requirement (default: cpu on Linux x86-64 without an NVIDIA driver, else pypi)",
    },
  ],
  async run(ctx) {
    const status = new StatusLine(ctx.io.stdout);
    let last: SetupProgress | undefined;
    ctx.out(`Setting up the host Python environment in ${setupEnvDir()}.`);
    try {
      const result = await setupHostEnv({
        ...(ctx.opts.python ? { base: ctx.opts.python } : {}),
        ...(typeof ctx.flags.torch === "string" ? { torch: ctx.flags.torch } : {}),
        onProgress: (p) => {
          last = p;
          const head = p.step > 0 ? `[${p.step}/${p.total}] ${p.name}` : p.name;
          if (p.phase === "start") status.set(`${head}: ${p.message}`);
          else if (p.phase === "line") {
            if (status.tty) status.detail(p.message);
            else if (PIP_PROGRESS.test(p.message) || p.step <= 2) ctx.out(`    ${p.message}`);
          } else {
            status.stop();
            ctx.out(`${p.phase === "done" ? "✓" : "·"} ${head}: ${p.message}${p.phase === "skipped" ? " (nothing to do)" : ""} (${seconds(p.elapsedMs)})`);
          }
        },
      });
      ctx.out();
      const what = result.status === "current" ? "is complete; nothing was installed" : result.status === "created" ? "is ready" : "is up to date";
      ctx.out(`The host environment ${what}: ${displayPath(result.python)} (Python ${result.pythonVersion}, torch ${result.torchVersion}).`);
      const other = process.env.PYISOLATE_PYTHON;
      if (other) ctx.err(`note: PYISOLATE_PYTHON is set (${other}); pyisolate uses that Python while it is set.`);
      else ctx.out("pyisolate uses it by default. Next: pyisolate run <workflow.json> --custom-nodes DIR");
      return 0;
    } catch (e) {
      status.stop();
      if (last && last.phase !== "done" && last.phase !== "skipped") ctx.err(`✗ [${last.step}/${last.total}] ${last.name} failed after ${seconds(last.elapsedMs)}`);
      throw e;
    }
  },
};
