// Core mode against a real ComfyUI checkout. Runs only where one is given:
//
//   PYISOLATE_COMFYUI=/path/to/ComfyUI        the checkout (ComfyUI 0.8.0 was used)
//   PYISOLATE_PYTHON=/path/to/its/python      its environment (else the checkout's .venv / venv)
//   PYISOLATE_COMFYUI_ARGS=--cpu              ComfyUI's own arguments (a machine without a GPU needs --cpu)
//   PYISOLATE_COMFYUI_PACKS=/path/to/packs    a folder with ComfyUI-IsolationTest, ComfyUI-APIsolated and
//                                             ComfyUI-PyIsolated, unmodified (for the tests of real packs)
//   PYISOLATE_COMFYUI_EXTRA_PATH=/path        optional: a folder put on every process's sys.path, in both
//                                             systems (e.g. a torchaudio where none matches the torch)
//
// What it shows: every process imports ComfyUI's real modules with the one-per-host parts
// connected to the host; ComfyUI's built-in nodes load in the shared process and mix with
// isolated packs in one workflow; a MODEL from ComfyUI's own loader is used, through its handle,
// by an isolated pack whose wrapper ComfyUI's sampler then calls back; the real packs register exactly the node classes plain
// ComfyUI registers for them; ComfyUI-IsolationTest's pure-tensor nodes give the same bytes
// as the same classes (and ComfyUI's own) inside plain ComfyUI, started from its main.py.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkoutPython, splitArgs } from "../src/env/comfyui.ts";
import { runProcess } from "../src/env/host_python.ts";
import { createHost, Logger, type Host } from "../src/mod.ts";
import type { NodeInfo } from "../src/executor/types.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const fixtures = join(repo, "test", "fixtures", "comfy_packs");
const checkout = process.env.PYISOLATE_COMFYUI;
const packsDir = process.env.PYISOLATE_COMFYUI_PACKS;
const extraPath = process.env.PYISOLATE_COMFYUI_EXTRA_PATH;
const comfyArgs = splitArgs(process.env.PYISOLATE_COMFYUI_ARGS ?? "");
const REAL_PACKS = ["ComfyUI-IsolationTest", "ComfyUI-APIsolated", "ComfyUI-PyIsolated"];
const havePacks = !!packsDir && REAL_PACKS.every((p) => existsSync(join(packsDir, p)));

if (!checkout) {
  console.log("comfyui_checkout.e2e: not run: core mode needs a ComfyUI checkout; set PYISOLATE_COMFYUI (and PYISOLATE_PYTHON to its Python) to run it.");
} else if (!havePacks) {
  console.log(`comfyui_checkout.e2e: the real-pack tests are not run: set PYISOLATE_COMFYUI_PACKS to a folder holding ${REAL_PACKS.join(", ")}.`);
}

const python = process.env.PYISOLATE_PYTHON ?? (checkout ? checkoutPython(checkout) : null) ?? "python3";
let root: string;
let pythonVersion = "";

function hostOver(nodes: string, cacheDir: string, lines: string[] = [], baseDir: string = root): Promise<Host> {
  return createHost({
    customNodes: nodes,
    cacheDir,
    python,
    comfyui: checkout!,
    comfyuiArgs: comfyArgs,
    baseDir,
    outputDir: join(root, "output"),
    sharedModules: extraPath ? [extraPath] : [],
    logger: new Logger((_level, line) => lines.push(line)),
  });
}

const atLeast312 = () => {
  const [maj, min] = pythonVersion.split(".").map(Number);
  return (maj ?? 0) > 3 || ((maj ?? 0) === 3 && (min ?? 0) >= 12);
};

describe.runIf(!!checkout)("core mode with a ComfyUI checkout", () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "pyisolate-checkout-"));
    const r = await runProcess(python, ["-c", "import platform; print(platform.python_version())"]);
    pythonVersion = r.stdout.trim();
  });
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("ComfyUI's built-in nodes and an isolated pack on ComfyUI's real modules, in one workflow", { timeout: 600_000 }, async () => {
    const nodes = join(root, "core-nodes");
    mkdirSync(nodes);
    cpSync(join(fixtures, "CoreUser"), join(nodes, "CoreUser"), { recursive: true });
    const lines: string[] = [];
    const host = await hostOver(nodes, join(root, "core-cache"), lines);
    let progress = 0;
    try {
      const core = host.packs.find((p) => p.name === "ComfyUI")!;
      expect(core).toMatchObject({ kind: "core", source: "process" });
      expect(core.nodes).toBeGreaterThan(400);
      const owner = host.registry.owner("KSampler")!;
      expect(owner).toMatchObject({ pack: "ComfyUI", isolated: false });
      expect(host.registry.owner("CoreFacts")).toMatchObject({ pack: "CoreUser", isolated: true });
      expect(host.nodes().EmptyLatentImage!.python_module).toBe("nodes");
      expect(host.nodes().LatentAdd!.python_module).toBe("comfy_extras.nodes_latent");

      const r = await host.run(
        {
          "1": { class_type: "EmptyLatentImage", inputs: { width: 64, height: 32, batch_size: 1 } },
          "2": { class_type: "LatentMultiply", inputs: { samples: ["1", 0], multiplier: 2.0 } },
          "3": { class_type: "CoreFacts", inputs: { samples: ["2", 0], scale: 2 } },
          "4": { class_type: "PreviewAny", inputs: { source: ["3", 1] } },
          "5": { class_type: "SaveLatent", inputs: { samples: ["3", 0], filename_prefix: "core/latent" } },
        },
        { onEvent: (e) => void (e.type === "progress" && (e.data as { node?: string }).node === "3" && progress++) },
      );
      expect(r.status, JSON.stringify(r.error ?? null)).toBe("success");
      const facts = JSON.parse((r.outputs["4"] as { text: string[] }).text[0]!) as Record<string, string | boolean>;
      for (const mod of ["samplers", "nodes", "node_helpers"]) expect(String(facts[mod]).startsWith(checkout!)).toBe(true);
      // folder_paths and server stay one per host: the shims' host-connected modules, not the checkout's.
      expect(String(facts.folder_paths)).toContain(join("pyisolate_runtime", "shims", "folder_paths.py"));
      expect(String(facts.server)).toContain(join("pyisolate_runtime", "shims", "server.py"));
      expect(facts.output).toBe(join(root, "output"));
      expect(facts.cpu).toBe(comfyArgs.includes("--cpu"));
      expect(facts.ksampler).toBe(true);
      expect(progress).toBe(2);
      expect(readdirSync(join(root, "output", "core"))).toEqual(["latent_00001_.latent"]);

      // An interrupt from the host stops a node that checks ComfyUI's own flag.
      const waiting = host.run({ "1": { class_type: "WaitForInterrupt", inputs: { seconds: 60 } } });
      await new Promise((res) => setTimeout(res, 1500));
      host.interrupt();
      const stopped = await waiting;
      expect(stopped.status).toBe("interrupted");
    } finally {
      await host.close();
    }

    // Warm start: ComfyUI's nodes and the pack's come from the metadata cache; nothing spawns.
    const again: string[] = [];
    const warm = await hostOver(nodes, join(root, "core-cache"), again);
    await warm.close();
    expect(warm.packs.find((p) => p.name === "ComfyUI")).toMatchObject({ source: "cache" });
    expect(again.filter((l) => /spawning|starting the shared/.test(l))).toEqual([]);
  });

  it("a MODEL from ComfyUI's own loader reaches an isolated pack as a handle: it calls methods on it, patches a clone, and ComfyUI's sampler runs the clone", { timeout: 600_000 }, async () => {
    const base = join(root, "model-base");
    const nodes = join(base, "custom_nodes");
    mkdirSync(nodes, { recursive: true });
    cpSync(join(fixtures, "ModelUser"), join(nodes, "ModelUser"), { recursive: true });
    // A tiny SD1.5-shaped UNet the test builds itself (no weights can be downloaded here).
    const made = await runProcess(python, [join(repo, "test", "fixtures", "tiny_comfy_weights.py"), "unet", checkout!,
      join(base, "models", "diffusion_models", "tiny_sd15.safetensors")]);
    expect(made.code, made.stderr).toBe(0);
    const host = await hostOver(nodes, join(root, "model-cache"), [], base);
    const prompt = (wrap: boolean, prefix: string) => ({
      "1": { class_type: "UNETLoader", inputs: { unet_name: "tiny_sd15.safetensors", weight_dtype: "default" } },
      "2": { class_type: "ModelProbe", inputs: { model: ["1", 0], seed: 7, wrap } },
      "3": { class_type: "EmptyLatentImage", inputs: { width: 64, height: 64, batch_size: 1 } },
      "4": {
        class_type: "KSampler",
        inputs: {
          model: wrap ? ["2", 0] : ["1", 0], seed: 1, steps: 2, cfg: 1.0, sampler_name: "euler", scheduler: "normal",
          positive: ["2", 1], negative: ["2", 2], latent_image: ["3", 0], denoise: 1.0,
        },
      },
      "5": { class_type: "SaveLatent", inputs: { samples: ["4", 0], filename_prefix: `model/${prefix}` } },
      "6": { class_type: "PreviewAny", inputs: { source: ["2", 3] } },
      "7": { class_type: "WrapperCalls", inputs: { samples: ["4", 0] } },
      "8": { class_type: "PreviewAny", inputs: { source: ["7", 0] } },
    });
    try {
      expect(host.registry.owner("UNETLoader")).toMatchObject({ pack: "ComfyUI", isolated: false });
      expect(host.registry.owner("ModelProbe")).toMatchObject({ pack: "ModelUser", isolated: true });
      const wrapped = await host.run(prompt(true, "wrapped"));
      expect(wrapped.status, JSON.stringify(wrapped.error ?? wrapped.validation ?? null)).toBe("success");
      const facts = JSON.parse((wrapped.outputs["6"] as { text: string[] }).text[0]!) as Record<string, unknown>;
      // The isolated node holds proxies; every read and call ran in the shared process, on the real model.
      expect(facts).toMatchObject({ proxy: true, clone_is_proxy: true, is_clone: true, class: "ModelPatcher", model_type: "EPS", config: "SD15" });
      expect(facts.scale_factor).toBeCloseTo(0.18215, 6);
      expect(facts.model_size).toBeGreaterThan(50_000_000);
      expect(facts.sigma_max as number).toBeGreaterThan(facts.sigma_min as number);
      // ComfyUI's KSampler called the isolated pack's wrapper once per step (cfg 1: no unconditional pass).
      expect((wrapped.outputs["8"] as { text: string[] }).text[0]).toBe("2");

      const direct = await host.run(prompt(false, "direct"));
      expect(direct.status, JSON.stringify(direct.error ?? null)).toBe("success");
      // The wrapper only passed the calls through: the same latent, bit for bit, as the unwrapped model.
      const out = join(root, "output", "model");
      const files = readdirSync(out).sort();
      expect(files).toEqual(["direct_00001_.latent", "wrapped_00001_.latent"]);
      const compare = await runProcess(python, ["-c", [
        "import sys, safetensors.torch as st",
        "a, b = (st.load_file(f)['latent_tensor'] for f in sys.argv[1:])",
        "print(tuple(a.shape), bool((a == b).all()), float(a.abs().sum()) > 0)",
      ].join("\n"), join(out, files[0]!), join(out, files[1]!)]);
      expect(compare.stdout.trim(), compare.stderr).toBe("(1, 4, 8, 8) True True");
    } finally {
      await host.close();
    }
  });

  it("a CLIP from ComfyUI's own loader, used by an isolated pack through its handle, encodes as ComfyUI's CLIPTextEncode does", { timeout: 600_000 }, async () => {
    const base = join(root, "clip-base");
    const nodes = join(base, "custom_nodes");
    mkdirSync(nodes, { recursive: true });
    cpSync(join(fixtures, "ModelUser"), join(nodes, "ModelUser"), { recursive: true });
    // ComfyUI's CLIP-L shapes with random weights, built by the test (no weights can be downloaded here).
    const made = await runProcess(python, [join(repo, "test", "fixtures", "tiny_comfy_weights.py"), "clip", checkout!,
      join(base, "models", "text_encoders", "tiny_clip_l.safetensors")]);
    expect(made.code, made.stderr).toBe(0);
    const host = await hostOver(nodes, join(root, "clip-cache"), [], base);
    try {
      const r = await host.run({
        "1": { class_type: "CLIPLoader", inputs: { clip_name: "tiny_clip_l.safetensors", type: "stable_diffusion" } },
        "2": { class_type: "ClipProbe", inputs: { clip: ["1", 0], text: "a photo of a cat" } },
        "3": { class_type: "CLIPTextEncode", inputs: { clip: ["1", 0], text: "a photo of a cat" } },
        "4": { class_type: "SameConditioning", inputs: { a: ["2", 0], b: ["3", 0] } },
        "5": { class_type: "PreviewAny", inputs: { source: ["4", 0] } },
        "6": { class_type: "PreviewAny", inputs: { source: ["2", 1] } },
      });
      expect(r.status, JSON.stringify(r.error ?? r.validation ?? null)).toBe("success");
      const report = JSON.parse((r.outputs["6"] as { text: string[] }).text[0]!) as Record<string, unknown>;
      expect(report).toEqual({ proxy: true, class: "CLIP", token_keys: ["l"], shape: [1, 77, 768], pooled: [1, 768] });
      // The isolated pack's calls ran on ComfyUI's real CLIP: the same conditioning as ComfyUI's own node.
      expect((r.outputs["5"] as { text: string[] }).text[0]).toBe("True");
    } finally {
      await host.close();
    }
  });

  describe.runIf(havePacks)("real packs, unmodified", () => {
    let plain: PlainComfyUI;
    let host: Host;
    let plainInfo: Record<string, NodeInfo>;
    const packs = () => join(root, "real", "custom_nodes");

    beforeAll(async () => {
      mkdirSync(packs(), { recursive: true });
      for (const p of REAL_PACKS) cpSync(join(packsDir!, p), join(packs(), p), { recursive: true, filter: (s) => !s.includes("/.git") });
      cpSync(join(fixtures, "TensorProbe"), join(packs(), "TensorProbe"), { recursive: true });
      plain = await PlainComfyUI.start(join(root, "real"));
      plainInfo = (await plain.get("/object_info")) as Record<string, NodeInfo>;
      // The same base folder as plain ComfyUI: node schemas that list input/ (LoadImageDataSetFromFolder)
      // see the same files; ComfyUI's built-in nodes make input/3d when they load.
      host = await hostOver(packs(), join(root, "real-cache"), [], join(root, "real"));
    }, 900_000);
    afterAll(async () => {
      await host?.close();
      plain?.stop();
    });

    const classesOf = (info: Record<string, NodeInfo>, pack: string) =>
      Object.keys(info).filter((k) => info[k]!.python_module === `custom_nodes.${pack}`).sort();
    const ours = (pack: string) => host.registry.nodes().filter((n) => n.owner.pack === pack).map((n) => n.classType).sort();

    it("each pack registers exactly the node classes plain ComfyUI registers for it, with the same schemas", () => {
      const counts: Record<string, [number, number]> = {};
      for (const pack of [...REAL_PACKS, "TensorProbe"]) {
        const status = host.packs.find((p) => p.name === pack)!;
        if (pack === "ComfyUI-IsolationTest" || pack === "ComfyUI-APIsolated") {
          if (!atLeast312()) {
            // Both use Python 3.12 f-string syntax: a clear error naming file, line, Python and the way out.
            expect(status.importError?.type).toBe("SyntaxError");
            expect(status.importError?.file).toMatch(/\.py$/);
            expect(status.importError?.line).toBeGreaterThan(0);
            expect(status.error?.message).toContain(`Python ${pythonVersion}`);
            expect(status.error?.message).toContain("Use a 3.12+ host Python");
            continue;
          }
        }
        expect(status.source, status.error?.message).not.toBe("failed");
        expect(ours(pack)).toEqual(classesOf(plainInfo, pack));
        for (const cls of ours(pack)) expect(host.nodes()[cls], cls).toEqual(plainInfo[cls]);
        counts[pack] = [ours(pack).length, classesOf(plainInfo, pack).length];
      }
      const builtIn = Object.keys(plainInfo).filter((k) => !(plainInfo[k]!.python_module ?? "").startsWith("custom_nodes.")).sort();
      expect(ours("ComfyUI")).toEqual(builtIn);
      counts.ComfyUI = [ours("ComfyUI").length, builtIn.length];
      console.log(`registered (pyisolate, plain ComfyUI) on Python ${pythonVersion}: ${JSON.stringify(counts)}`);
    });

    it("ComfyUI-IsolationTest's pure-tensor nodes give the same bytes as inside plain ComfyUI", { timeout: 900_000 }, async () => {
      if (!atLeast312()) return; // the pack does not import below 3.12 (asserted above)
      const [ours, theirs] = [join(root, "captured-pyisolate"), join(root, "captured-comfyui")];
      const a = await host.run(comparisonPrompt(ours));
      expect(a.status, JSON.stringify(a.error ?? a.validation)).toBe("success");
      const id = await plain.queue(comparisonPrompt(theirs));
      const history = await plain.waitFor(id);
      expect(history.status.status_str, JSON.stringify(history.status.messages)).toBe("success");
      const files = readdirSync(theirs).sort();
      expect(readdirSync(ours).sort()).toEqual(files);
      expect(files.length).toBeGreaterThanOrEqual(CASES.length);
      const differing = files.filter((f) => !readFileSync(join(ours, f)).equals(readFileSync(join(theirs, f))));
      expect(differing).toEqual([]);
      // The pack's copies against ComfyUI's own classes, both inside plain ComfyUI: informational.
      const vsCore = files.filter((f) => f.startsWith("iso-")).filter((f) => {
        const core = f.replace(/^iso-/, "core-");
        return existsSync(join(theirs, core)) && !readFileSync(join(theirs, f)).equals(readFileSync(join(theirs, core)));
      });
      console.log(`bit-for-bit: ${files.length} captured outputs of ${CASES.length} node cases (each as the pack's class and ComfyUI's own) identical between pyisolate and plain ComfyUI; pack class vs ComfyUI class differ in: ${vsCore.join(", ") || "none"}`);
    });

    it("ComfyUI-APIsolated lists its API nodes' schemas, and an API node without network is an error naming it and the request", { timeout: 300_000 }, async () => {
      if (!atLeast312()) return;
      const info = host.nodes().OpenAIDalle2_ISO!;
      expect(info.api_node).toBe(true);
      expect(Object.keys((info.input as { required: object }).required)).toEqual(["prompt"]);
      const r = await host.run({ "1": { class_type: "OpenAIDalle2_ISO", inputs: { prompt: "a lighthouse" } }, "2": { class_type: "PreviewImage", inputs: { images: ["1", 0] } } });
      expect(r.status).toBe("error");
      const err = r.error!;
      expect(err.node_type).toBe("OpenAIDalle2_ISO");
      console.log(`API node without network: ${err.exception_type}: ${err.exception_message}`);
      expect(err.exception_message).toMatch(/api\.comfy\.org|request|connect|network|login|Unauthorized/i);
    });

    it("ComfyUI-PyIsolated runs its nodes that need no CLIP", { timeout: 300_000 }, async () => {
      const code = "result = {'result_text': text_payload.upper(), 'result_latent': latent_payload}";
      const r = await host.run({
        "1": { class_type: "ZeroCopyArange", inputs: {} },
        "2": { class_type: "PyIsolatedTestNodeV3", inputs: {} },
        "3": { class_type: "PyIsolatedExecuteV3", inputs: { code, text_payload: "isolated", latent_payload: ["1", 0] } },
        "4": { class_type: "PyIsolatedExecuteAdvancedV3", inputs: { code, text_payload: "advanced", dependencies: "# none" } },
        "5": { class_type: "PreviewAny", inputs: { source: ["1", 1] } },
        "6": { class_type: "PreviewAny", inputs: { source: ["2", 0] } },
        "7": { class_type: "PreviewAny", inputs: { source: ["3", 0] } },
        "8": { class_type: "PreviewAny", inputs: { source: ["4", 0] } },
        "9": { class_type: "SaveLatent", inputs: { samples: ["3", 2], filename_prefix: "pyisolated/latent" } },
      });
      expect(r.status, JSON.stringify(r.error ?? null)).toBe("success");
      const text = (id: string) => (r.outputs[id] as { text: string[] }).text[0];
      expect([text("5"), text("6"), text("7"), text("8")]).toEqual(["cpu", "PyIsolated V3 Node is working!", "ISOLATED", "ADVANCED"]);
    });
  });
});

// --- the comparison workflow ------------------------------------------------------------------

type Inputs = Record<string, unknown>;
/** A pack node (`<name>_ISO`) with inputs; `out` names the capture input of each output. */
interface Case {
  node: string;
  inputs: Inputs;
  out: string[];
  /** Inputs ComfyUI's own class has beyond the pack's copy (the copy is of an older ComfyUI). */
  core?: Inputs;
}
const IMG_A: [string, number] = ["ia", 0];
const IMG_B: [string, number] = ["ib", 0];
const MASK_A: [string, number] = ["ma", 0];
const MASK_B: [string, number] = ["mb", 0];
const LAT_A: [string, number] = ["la", 0];
const LAT_B: [string, number] = ["lb", 0];
const SIG: [string, number] = ["sg", 0];
const CASES: Case[] = [
  { node: "ImageBlend", inputs: { image1: IMG_A, image2: IMG_B, blend_factor: 0.3, blend_mode: "soft_light" }, out: ["image"] },
  { node: "ImageBlur", inputs: { image: IMG_A, blur_radius: 3, sigma: 1.5 }, out: ["image"] },
  { node: "ImageSharpen", inputs: { image: IMG_A, sharpen_radius: 2, sigma: 1.0, alpha: 0.5 }, out: ["image"] },
  { node: "ImageQuantize", inputs: { image: IMG_A, colors: 16, dither: "floyd-steinberg" }, out: ["image"] },
  { node: "ImageScaleToTotalPixels", inputs: { image: IMG_A, upscale_method: "bicubic", megapixels: 0.01 }, out: ["image"], core: { resolution_steps: 1 } },
  { node: "ImageRGBToYUV", inputs: { image: IMG_A }, out: ["image", "image", "image"] },
  { node: "Morphology", inputs: { image: IMG_A, operation: "gradient", kernel_size: 3 }, out: ["image"] },
  { node: "Canny", inputs: { image: IMG_A, low_threshold: 0.2, high_threshold: 0.6 }, out: ["image"] },
  { node: "JoinImageWithAlpha", inputs: { image: IMG_A, alpha: MASK_A }, out: ["image"] },
  { node: "PorterDuffImageComposite", inputs: { source: IMG_A, source_alpha: MASK_A, destination: IMG_B, destination_alpha: MASK_B, mode: "SRC_OVER" }, out: ["image", "mask"] },
  { node: "LatentAdd", inputs: { samples1: LAT_A, samples2: LAT_B }, out: ["latent"] },
  { node: "LatentSubtract", inputs: { samples1: LAT_A, samples2: LAT_B }, out: ["latent"] },
  { node: "LatentMultiply", inputs: { samples: LAT_A, multiplier: 1.7 }, out: ["latent"] },
  { node: "LatentInterpolate", inputs: { samples1: LAT_A, samples2: LAT_B, ratio: 0.25 }, out: ["latent"] },
  { node: "LatentBatch", inputs: { samples1: LAT_A, samples2: LAT_B }, out: ["latent"] },
  { node: "LatentConcat", inputs: { samples1: LAT_A, samples2: LAT_B, dim: "-x" }, out: ["latent"] },
  { node: "LatentCut", inputs: { samples: LAT_A, dim: "y", index: 1, amount: 3 }, out: ["latent"] },
  { node: "KarrasScheduler", inputs: { steps: 12, sigma_max: 14.61, sigma_min: 0.03, rho: 7.0 }, out: ["sigmas"] },
  { node: "ExponentialScheduler", inputs: { steps: 12, sigma_max: 14.61, sigma_min: 0.03 }, out: ["sigmas"] },
  { node: "PolyexponentialScheduler", inputs: { steps: 12, sigma_max: 14.61, sigma_min: 0.03, rho: 1.3 }, out: ["sigmas"] },
  { node: "LaplaceScheduler", inputs: { steps: 12, sigma_max: 14.61, sigma_min: 0.03, mu: 0.0, beta: 0.5 }, out: ["sigmas"] },
  { node: "VPScheduler", inputs: { steps: 12, beta_d: 19.9, beta_min: 0.1, eps_s: 0.001 }, out: ["sigmas"] },
  { node: "AlignYourStepsScheduler", inputs: { model_type: "SDXL", steps: 14, denoise: 0.8 }, out: ["sigmas"] },
  { node: "GITSScheduler", inputs: { coeff: 1.2, steps: 10, denoise: 1.0 }, out: ["sigmas"] },
  { node: "OptimalStepsScheduler", inputs: { model_type: "Wan", steps: 12, denoise: 1.0 }, out: ["sigmas"] },
  { node: "SplitSigmas", inputs: { sigmas: SIG, step: 4 }, out: ["sigmas", "sigmas"] },
  { node: "SplitSigmasDenoise", inputs: { sigmas: SIG, denoise: 0.6 }, out: ["sigmas", "sigmas"] },
  { node: "FlipSigmas", inputs: { sigmas: SIG }, out: ["sigmas"] },
  { node: "SetFirstSigma", inputs: { sigmas: SIG, sigma: 12.5 }, out: ["sigmas"] },
  { node: "ExtendIntermediateSigmas", inputs: { sigmas: SIG, steps: 3, start_at_sigma: -1.0, end_at_sigma: 12.0, spacing: "cosine" }, out: ["sigmas"] },
  { node: "StringConcatenate", inputs: { string_a: "isolated ", string_b: "nodes", delimiter: "|" }, out: ["string"] },
  { node: "StringSubstring", inputs: { string: "hello, world", start: 2, end: 9 }, out: ["string"] },
  { node: "StringReplace", inputs: { string: "a-b-c", find: "-", replace: "+" }, out: ["string"] },
  { node: "CaseConverter", inputs: { string: "pyisolate for comfy", mode: "Title Case" }, out: ["string"] },
  { node: "StringTrim", inputs: { string: "  padded\t ", mode: "Both" }, out: ["string"] },
  { node: "RegexReplace", inputs: { string: "a1b22c333", regex_pattern: "\\d+", replace: "#", case_insensitive: false, multiline: false, dotall: false, count: 0 }, out: ["string"] },
  { node: "StringLength", inputs: { string: "héllo wörld" }, out: ["int"] },
];

/** Every case twice — the pack's `<node>_ISO` and ComfyUI's own `<node>` — each output captured. */
function comparisonPrompt(directory: string): Record<string, { class_type: string; inputs: Inputs }> {
  const p: Record<string, { class_type: string; inputs: Inputs }> = {
    ia: { class_type: "SeededImage", inputs: { seed: 1, batch: 2, height: 24, width: 40, channels: 3 } },
    ib: { class_type: "SeededImage", inputs: { seed: 2, batch: 2, height: 24, width: 40, channels: 3 } },
    ma: { class_type: "SeededMask", inputs: { seed: 3, batch: 2, height: 24, width: 40 } },
    mb: { class_type: "SeededMask", inputs: { seed: 4, batch: 2, height: 24, width: 40 } },
    la: { class_type: "SeededLatent", inputs: { seed: 5, batch: 1, channels: 4, height: 6, width: 10 } },
    lb: { class_type: "SeededLatent", inputs: { seed: 6, batch: 1, channels: 4, height: 6, width: 10 } },
    sg: { class_type: "SeededSigmas", inputs: { seed: 7, count: 11 } },
  };
  for (const c of CASES) {
    for (const [prefix, cls] of [["iso", `${c.node}_ISO`], ["core", c.node]] as const) {
      const id = `${prefix}-${c.node}`;
      p[id] = { class_type: cls, inputs: prefix === "core" ? { ...c.inputs, ...(c.core ?? {}) } : c.inputs };
      c.out.forEach((kind, i) => {
        p[`${id}-cap${i}`] = { class_type: "CaptureValues", inputs: { directory, name: `${id}-${i}`, [kind]: [id, i] } };
      });
    }
  }
  return p;
}

// --- plain ComfyUI, started from its main.py --------------------------------------------------

interface History {
  status: { status_str: string; messages: unknown[] };
}

class PlainComfyUI {
  #child: ChildProcess;
  #port: number;
  #log: string[];

  private constructor(child: ChildProcess, port: number, log: string[]) {
    this.#child = child;
    this.#port = port;
    this.#log = log;
  }

  /** ComfyUI's own server with `base/custom_nodes`, on a free loopback port. */
  static async start(base: string): Promise<PlainComfyUI> {
    const port = await freePort();
    const log: string[] = [];
    const env = { ...process.env, ...(extraPath ? { PYTHONPATH: extraPath } : {}) };
    const child = spawn(python, ["main.py", ...comfyArgs, "--listen", "127.0.0.1", "--port", String(port), "--base-directory", base, "--disable-auto-launch", "--dont-print-server"], {
      cwd: checkout!,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    for (const s of [child.stdout!, child.stderr!]) s.on("data", (c: Buffer) => log.push(c.toString()));
    const plain = new PlainComfyUI(child, port, log);
    const deadline = Date.now() + 600_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`ComfyUI exited (${child.exitCode}):\n${log.join("").slice(-3000)}`);
      try {
        await plain.get("/system_stats");
        return plain;
      } catch {
        if (Date.now() > deadline) throw new Error(`ComfyUI did not start:\n${log.join("").slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  async get(path: string): Promise<unknown> {
    const r = await fetch(`http://127.0.0.1:${this.#port}${path}`);
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  async queue(prompt: unknown): Promise<string> {
    const r = await fetch(`http://127.0.0.1:${this.#port}/prompt`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt }) });
    const body = (await r.json()) as { prompt_id?: string };
    if (!r.ok || !body.prompt_id) throw new Error(`POST /prompt: HTTP ${r.status}: ${JSON.stringify(body)}`);
    return body.prompt_id;
  }

  async waitFor(id: string): Promise<History> {
    const deadline = Date.now() + 600_000;
    for (;;) {
      const h = (await this.get(`/history/${id}`)) as Record<string, History>;
      if (h[id]) return h[id]!;
      if (Date.now() > deadline) throw new Error(`prompt ${id} did not finish:\n${this.#log.join("").slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  stop(): void {
    this.#child.kill("SIGTERM");
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
