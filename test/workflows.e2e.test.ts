/**
 * End to end through `createHost`: the example workflows (`examples/workflows/*.json`) run
 * over the example packs — shared (ImageTools, ModelCacheDemo) and isolated (NumpyLegacyNode
 * with numpy 1.26.4, NumpyModernNode with numpy >= 2.1, DeepDiffNode, ModelCacheUserA/B) —
 * plus a fixture pack whose node raises. Saved PNGs are decoded here and compared, pixel by
 * pixel, with the gradient / processing math redone in float32; re-runs are checked node by
 * node (cached, re-executed); no shared-memory segment of this process outlives `close()`.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { crc32, deflateSync, inflateSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/executor/executor.ts";
import type { ExecutionEvent, Prompt } from "../src/executor/types.ts";
import { createHost, type Host } from "../src/host.ts";
import { Logger } from "../src/log.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const examples = join(repo, "examples");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");
const shmDir = process.env.PYISOLATE_SHM_DIR || "/dev/shm";

// --- a PNG decoder (8-bit, non-interlaced, every colour type but palette, all filters) -----------

interface Png {
  width: number;
  height: number;
  channels: number;
  pixels: Uint8Array;
  text: Record<string, string>;
}

function decodePng(data: Uint8Array): Png {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  expect([...data.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let pos = 8;
  let width = 0;
  let height = 0;
  let color = -1;
  const idat: Uint8Array[] = [];
  const text: Record<string, string> = {};
  while (pos < data.length) {
    const len = view.getUint32(pos);
    const kind = new TextDecoder("latin1").decode(data.subarray(pos + 4, pos + 8));
    const body = data.subarray(pos + 8, pos + 8 + len);
    pos += 12 + len;
    if (kind === "IHDR") {
      width = view.getUint32(pos - 12 - len + 8);
      height = view.getUint32(pos - 12 - len + 12);
      expect(body[8]).toBe(8); // bit depth
      color = body[9]!;
      expect(body[12]).toBe(0); // not interlaced
    } else if (kind === "IDAT") idat.push(body);
    else if (kind === "tEXt") {
      const s = new TextDecoder("latin1").decode(body);
      const nul = s.indexOf("\0");
      text[s.slice(0, nul)] = s.slice(nul + 1);
    } else if (kind === "IEND") break;
  }
  const channels = ({ 0: 1, 2: 3, 4: 2, 6: 4 } as Record<number, number>)[color]!;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? pixels[y * stride + i - channels]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + i]! : 0;
      const c = i >= channels && y > 0 ? pixels[(y - 1) * stride + i - channels]! : 0;
      let p = 0;
      if (filter === 1) p = a;
      else if (filter === 2) p = b;
      else if (filter === 3) p = (a + b) >> 1;
      else if (filter === 4) {
        const q = a + b - c;
        const pa = Math.abs(q - a);
        const pb = Math.abs(q - b);
        const pc = Math.abs(q - c);
        p = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else expect(filter).toBe(0);
      pixels[y * stride + i] = (src[i]! + p) & 0xff;
    }
  }
  return { width, height, channels, pixels, text };
}

/** An unfiltered 8-bit PNG of `channels` (1: grey, 2: grey+alpha, 3: RGB, 4: RGBA) samples. */
function encodePng(width: number, height: number, channels: number, pixels: Uint8Array): Buffer {
  const chunk = (kind: string, body: Uint8Array) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(body.length, 0);
    head.write(kind, 4, "latin1");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])) >>> 0, 0);
    return Buffer.concat([head, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = ({ 1: 0, 2: 4, 3: 2, 4: 6 } as Record<number, number>)[channels]!;
  const stride = width * channels;
  const rows = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) rows.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(rows)), chunk("IEND", new Uint8Array(0))]);
}

// --- the pixel math of the example nodes, in float32 ------------------------------------------

const f32 = Math.fround;
type Pixels = (x: number, y: number, c: number) => number;

/** ImageTools' MakeGradient. */
const gradient = (w: number, h: number, seed: bigint): Pixels => (x, y, c) => {
  if (c === 0) return f32(w > 1 ? x / (w - 1) : 0);
  if (c === 1) return f32(h > 1 ? y / (h - 1) : 0);
  return f32(Number((BigInt(7 * x + 13 * y) + (seed % 256n)) % 256n) / 255);
};
/** ImageTools' LoadImageFile: k / 255 in float32. */
const loaded = (png: Png): Pixels => (x, y, c) => f32(png.pixels[(y * png.width + x) * png.channels + c]! / 255);
/** NumpyLegacyInvert: float64 math, then float32. */
const invert = (src: Pixels, strength: number): Pixels => (x, y, c) => {
  const v = src(x, y, c);
  return f32(v + strength * (1 - 2 * v));
};
/** NumpyModernBrightness: float32 plus the amount (as float32), clipped to 0..1. */
const brighten = (src: Pixels, amount: number): Pixels => (x, y, c) => Math.min(1, Math.max(0, f32(src(x, y, c) + f32(amount))));
/** SaveImagePNG: clamp(255 * v) truncated to uint8. */
const toByte = (v: number) => Math.trunc(Math.min(255, Math.max(0, f32(v * 255))));

function expectPixels(png: Png, w: number, h: number, expected: Pixels): void {
  expect([png.width, png.height, png.channels]).toEqual([w, h, 3]);
  let mismatches = 0;
  let first = "";
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        const want = toByte(expected(x, y, c));
        const got = png.pixels[(y * w + x) * 3 + c]!;
        if (want !== got && mismatches++ === 0) first = `(${x},${y},${c}): got ${got}, expected ${want}`;
      }
    }
  }
  expect(first).toBe("");
  expect(mismatches).toBe(0);
}

// --- the host --------------------------------------------------------------------------------

let root: string;
let outputDir: string;
let host: Host | undefined;
const logLines: string[] = [];

function loadWorkflow(name: string): Prompt {
  return JSON.parse(readFileSync(join(examples, "workflows", name), "utf8")) as Prompt;
}

function startHost(): Promise<Host> {
  return createHost({
    customNodes: join(root, "custom_nodes"),
    cacheDir: join(root, "cache"),
    python: hostPython,
    baseDir: join(root, "comfy"),
    inputDir: join(examples, "input"),
    outputDir,
    sharedModules: [join(examples, "shared_modules")],
    logger: new Logger((_level, line) => logLines.push(line)),
  });
}

async function run(prompt: Prompt): Promise<{ result: RunResult; events: ExecutionEvent[] }> {
  const events: ExecutionEvent[] = [];
  const result = await host!.run(prompt, { onEvent: (e) => events.push(e) });
  return { result, events };
}

const byId = (r: RunResult) => Object.fromEntries(r.nodes.map((n) => [n.id, n]));
const statusOf = (r: RunResult) => Object.fromEntries(r.nodes.map((n) => [n.id, n.status]));
const textOf = (r: RunResult, id: string) => (r.outputs[id] as { text: string[] } | undefined)?.text;
/** A host's segments on disk, and its folder while it remains. */
const ownSegments = (id: string) => (existsSync(join(shmDir, `pyisolate-${id}`)) ? ["(folder)", ...readdirSync(join(shmDir, `pyisolate-${id}`)).filter((n) => n.startsWith(`pyisolate-${id}-`))] : []);
const savedPng = (file: string) => decodePng(readFileSync(join(outputDir, file)));

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-workflows-"));
  outputDir = join(root, "output");
  mkdirSync(outputDir);
  const nodes = join(root, "custom_nodes");
  cpSync(join(examples, "custom_nodes"), nodes, { recursive: true });
  cpSync(join(repo, "test", "fixtures", "workflow_packs"), nodes, { recursive: true });
  host = await startHost();
}, 300_000);

afterAll(async () => {
  await host?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("example workflows through createHost", () => {
  it("loads every example pack, isolated and shared", () => {
    expect(host!.packs.map((p) => [p.name, p.kind, p.source, p.nodes, p.error?.message])).toEqual([
      ["DeepDiffNode", "isolated", "process", 1, undefined],
      ["FailingNode", "isolated", "process", 1, undefined],
      ["ImageTools", "shared", "process", 5, undefined],
      ["ModelCacheDemo", "shared", "process", 1, undefined],
      ["ModelCacheUserA", "isolated", "process", 1, undefined],
      ["ModelCacheUserB", "isolated", "process", 1, undefined],
      ["NumpyLegacyNode", "isolated", "process", 2, undefined],
      ["NumpyModernNode", "isolated", "process", 2, undefined],
    ]);
    const info = host!.nodes();
    expect(info.SaveImagePNG?.output_node).toBe(true);
    expect(info.MakeGradient?.input.required?.seed).toEqual(["INT", { default: 0, min: 0, max: 2 ** 64 - 1 }]);
  });

  it("demo.json: both numpy packs report their own numpy; the image is inverted, brightened and saved", async () => {
    const { result, events } = await run(loadWorkflow("demo.json"));
    expect(result.error).toBeUndefined();
    expect(result.status).toBe("success");
    expect(Object.values(statusOf(result)).every((s) => s === "executed")).toBe(true);
    expect(result.nodes).toHaveLength(11);

    // Each numpy pack reports its own numpy: through the image nodes and the version nodes.
    expect(textOf(result, "5")).toEqual(["1.26.4"]);
    expect(textOf(result, "7")).toEqual(["1.26.4"]);
    const modern = textOf(result, "6")![0]!;
    expect(modern).toMatch(/^2\.\d+\.\d+$/);
    expect(Number(modern.split(".")[1])).toBeGreaterThanOrEqual(1);
    expect(textOf(result, "8")).toEqual([`NUMPY ${modern}`]);

    // Shared and isolated nodes in one workflow.
    const nodes = byId(result);
    expect([nodes["1"]!.pack, nodes["1"]!.isolated]).toEqual(["ImageTools", false]);
    expect([nodes["2"]!.pack, nodes["2"]!.isolated]).toEqual(["NumpyLegacyNode", true]);
    expect([nodes["3"]!.pack, nodes["3"]!.isolated]).toEqual(["NumpyModernNode", true]);
    expect([nodes["11"]!.pack, nodes["11"]!.isolated]).toEqual(["DeepDiffNode", true]);

    // The saved image: gradient(seed 42) → invert(1.0) → +0.1.
    expect(result.outputs["4"]).toEqual({ images: [{ filename: "demo_00001_.png", subfolder: "", type: "output" }] });
    const png = savedPng("demo_00001_.png");
    expectPixels(png, 256, 256, brighten(invert(gradient(256, 256, 42n), 1.0), 0.1));
    expect(JSON.parse(png.text.prompt!)["4"].class_type).toBe("SaveImagePNG");
    expect(textOf(result, "10")![0]).toMatch(/^shape=\[1, 256, 256, 3\] dtype=float32 min=0\.100000 max=1\.000000 mean=0\.\d{6}$/);
    expect(JSON.parse(textOf(result, "11")![0]!)).toEqual({ values_changed: { "root['model']": { new_value: "sdxl", old_value: "sd15" } } });

    // ComfyUI's events, in ComfyUI's shapes.
    const types = events.map((e) => e.type);
    expect(types[0]).toBe("execution_start");
    expect(types[1]).toBe("execution_cached");
    expect(events[1]!.data.nodes).toEqual([]);
    expect(types.at(-1)).toBe("execution_success");
    expect(events.at(-2)).toEqual({ type: "executing", data: { node: null, prompt_id: result.promptId } });
    expect(types.filter((t) => t === "executing")).toHaveLength(12);
    const executed = events.filter((e) => e.type === "executed");
    expect(executed.map((e) => e.data.node).sort()).toEqual(["10", "11", "4", "5", "6", "7", "8"]);
    expect(executed.find((e) => e.data.node === "5")!.data).toEqual({ node: "5", display_node: "5", output: { text: ["1.26.4"] }, prompt_id: result.promptId });
  });

  it("a re-run of demo.json executes nothing and writes nothing", async () => {
    const { result, events } = await run(loadWorkflow("demo.json"));
    expect(result.status).toBe("success");
    expect(Object.values(statusOf(result))).toEqual(Array(11).fill("cached"));
    expect((events.find((e) => e.type === "execution_cached")!.data.nodes as string[]).sort()).toEqual(["1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9"]);
    expect(events.filter((e) => e.type === "executing").map((e) => e.data.node)).toEqual([null]);
    expect(events.filter((e) => e.type === "executed")).toEqual([]);
    expect(textOf(result, "5")).toEqual(["1.26.4"]);
    expect(result.outputs["4"]).toEqual({ images: [{ filename: "demo_00001_.png", subfolder: "", type: "output" }] });
    expect(readdirSync(outputDir).sort()).toEqual(["demo_00001_.png"]);
  });

  it("a changed input re-executes only the nodes that depend on it", async () => {
    const prompt = loadWorkflow("demo.json");
    prompt["3"]!.inputs.amount = -0.25;
    const { result } = await run(prompt);
    expect(result.status).toBe("success");
    expect(statusOf(result)).toEqual({
      "1": "cached", "2": "cached", "5": "cached", "7": "cached", "8": "cached", "11": "cached",
      "3": "executed", "4": "executed", "6": "executed", "9": "executed", "10": "executed",
    });
    expect(result.outputs["4"]).toEqual({ images: [{ filename: "demo_00002_.png", subfolder: "", type: "output" }] });
    expectPixels(savedPng("demo_00002_.png"), 256, 256, brighten(invert(gradient(256, 256, 42n), 1.0), -0.25));
    expect(textOf(result, "10")![0]).toMatch(/min=0\.000000 max=0\.750000/);
  });

  it("a seed of 2^64 - 1 reaches the node exactly", async () => {
    const seed = 2n ** 64n - 1n;
    const { result } = await run({
      "1": { class_type: "MakeGradient", inputs: { width: 16, height: 8, seed } },
      "2": { class_type: "SaveImagePNG", inputs: { images: ["1", 0], filename_prefix: "seeds/max" } },
    });
    expect(result.status).toBe("success");
    expect(result.outputs["2"]).toEqual({ images: [{ filename: "max_00001_.png", subfolder: "seeds", type: "output" }] });
    expectPixels(decodePng(readFileSync(join(outputDir, "seeds", "max_00001_.png"))), 16, 8, gradient(16, 8, seed));
  });

  it("image_pipeline.json: a PNG from the input folder, processed in two isolated packs, saved", async () => {
    const input = decodePng(readFileSync(join(examples, "input", "example.png")));
    expect([input.width, input.height, input.channels]).toEqual([64, 64, 3]);
    expect([...input.pixels.subarray((5 * 64 + 3) * 3, (5 * 64 + 3) * 3 + 3)]).toEqual([12, 20, 48]); // (4x, 4y, 8(x^y))
    const { result } = await run(loadWorkflow("image_pipeline.json"));
    expect(result.error).toBeUndefined();
    expect(result.status).toBe("success");
    expect(result.outputs["4"]).toEqual({ images: [{ filename: "example_00001_.png", subfolder: "pipeline", type: "output" }] });
    const saved = decodePng(readFileSync(join(outputDir, "pipeline", "example_00001_.png")));
    expectPixels(saved, 64, 64, brighten(invert(loaded(input), 0.75), -0.2));
    expect(textOf(result, "6")![0]).toMatch(/^shape=\[1, 64, 64, 3\] dtype=float32 /);
    expect(byId(result)["1"]!.isolated).toBe(false);
  });

  it("LoadImageFile reads RGBA and grey PNGs (annotated names: `name [output]`)", async () => {
    const w = 5;
    const h = 3;
    const rgba = Uint8Array.from({ length: w * h * 4 }, (_, i) => (i * 37 + 11) % 256);
    const grey = Uint8Array.from({ length: w * h }, (_, i) => (i * 53 + 7) % 256);
    writeFileSync(join(outputDir, "rgba.png"), encodePng(w, h, 4, rgba));
    writeFileSync(join(outputDir, "grey.png"), encodePng(w, h, 1, grey));
    const { result } = await run({
      "1": { class_type: "LoadImageFile", inputs: { image: "rgba.png [output]" } },
      "2": { class_type: "SaveImagePNG", inputs: { images: ["1", 0], filename_prefix: "formats/rgba" } },
      "3": { class_type: "LoadImageFile", inputs: { image: "grey.png [output]" } },
      "4": { class_type: "SaveImagePNG", inputs: { images: ["3", 0], filename_prefix: "formats/grey" } },
    });
    expect(result.error).toBeUndefined();
    expect(result.status).toBe("success");
    const rgbaPng = decodePng(readFileSync(join(outputDir, "formats", "rgba_00001_.png")));
    expectPixels(rgbaPng, w, h, (x, y, c) => f32(rgba[(y * w + x) * 4 + c]! / 255));
    const greyPng = decodePng(readFileSync(join(outputDir, "formats", "grey_00001_.png")));
    expectPixels(greyPng, w, h, (x, y) => f32(grey[y * w + x]! / 255));
  });

  it("a missing input file fails validation, naming the file", async () => {
    const prompt = loadWorkflow("image_pipeline.json");
    prompt["1"]!.inputs.image = "no_such_file.png";
    const { result, events } = await run(prompt);
    expect(result.status).toBe("invalid");
    expect(JSON.stringify(result.validation.node_errors["1"])).toContain("no_such_file.png");
    expect(events).toEqual([]);
  });

  it("model_cache.json: two isolated packs get the same model from the shared ModelCache, loaded once", async () => {
    const { result } = await run(loadWorkflow("model_cache.json"));
    expect(result.error).toBeUndefined();
    expect(result.status).toBe("success");
    const parse = (id: string) => Object.fromEntries(textOf(result, id)![0]!.split(" ").slice(1).map((kv) => kv.split("=")));
    const a = parse("1");
    const b = parse("2");
    const stats = JSON.parse(textOf(result, "3")![0]!) as { loads: Record<string, number>; pid: number };
    expect(stats.loads).toEqual({ "tiny-unet": 1 });
    expect(a.id).toBe(b.id);
    expect([a.load, b.load]).toEqual(["1", "1"]);
    // Loaded in the shared process; used in two other processes.
    expect([a.loaded_in, b.loaded_in]).toEqual([String(stats.pid), String(stats.pid)]);
    expect(new Set([a.pid, b.pid, String(stats.pid)]).size).toBe(3);
    expect(Number(b.predict)).toBeCloseTo(2 * Number(a.predict), 5);
    const nodes = byId(result);
    expect([nodes["1"]!.isolated, nodes["2"]!.isolated, nodes["3"]!.isolated]).toEqual([true, true, false]);

    // Another input for A: A runs again, the model is not loaded again.
    const prompt = loadWorkflow("model_cache.json");
    prompt["1"]!.inputs.x = 3.0;
    const again = await run(prompt);
    expect(statusOf(again.result)).toEqual({ "1": "executed", "2": "cached", "3": "executed" });
    expect(JSON.parse(textOf(again.result, "3")![0]!).loads).toEqual({ "tiny-unet": 1 });
    expect(textOf(again.result, "1")![0]).toContain(`id=${a.id} `);
  });

  it("a failing node yields execution_error with its traceback, and the host keeps working", async () => {
    const failing: Prompt = {
      "1": { class_type: "NumpyLegacyVersion", inputs: {} },
      "2": { class_type: "FailOnDemand", inputs: { text: "boom: bad input" } },
      "3": { class_type: "ShowText", inputs: { text: ["2", 0] } },
    };
    const { result, events } = await run(failing);
    expect(result.status).toBe("error");
    const error = events.find((e) => e.type === "execution_error")!;
    expect(events.at(-1)).toBe(error);
    expect(error.data).toMatchObject({
      prompt_id: result.promptId,
      node_id: "2",
      node_type: "FailOnDemand",
      exception_message: "FailOnDemand refused 'boom: bad input': texts starting with 'boom' are not allowed",
      current_inputs: { text: ["boom: bad input"] },
    });
    expect(String(error.data.exception_type)).toMatch(/ValueError$/);
    const traceback = (error.data.traceback as string[]).join("");
    expect(traceback).toContain(join("FailingNode", "__init__.py"));
    expect(traceback).toContain("in check_text");
    expect(traceback).toContain("raise ValueError(");
    expect(result.error).toEqual(error.data);
    expect(statusOf(result)["2"]).toBe("failed");
    expect(statusOf(result)["3"]).toBe("skipped");

    // The same pack's process, and every other, still run nodes.
    failing["2"]!.inputs.text = "fine";
    const after = await run(failing);
    expect(after.result.status).toBe("success");
    expect(textOf(after.result, "3")).toEqual(["FINE"]);
    const demo = await run(loadWorkflow("demo.json"));
    expect(demo.result.status).toBe("success");
  });

  it("close() leaves no shared-memory segment of this process; a new host starts from the cache", async () => {
    const first = host!.segments.hostId;
    expect(ownSegments(first).length).toBeGreaterThan(1); // cached IMAGE outputs hold segments
    await host!.close();
    host = undefined;
    expect(ownSegments(first)).toEqual([]);

    logLines.length = 0;
    host = await startHost();
    expect(host.packs.every((p) => p.source === "cache")).toBe(true);
    expect(logLines).toContain("][ NumpyLegacyNode loaded from cache");
    expect(logLines).toContain("][ ImageTools loaded from cache");
    const { result } = await run(loadWorkflow("image_pipeline.json"));
    expect(result.status).toBe("success");
    expect(Object.values(statusOf(result)).every((s) => s === "executed")).toBe(true);
    expect(result.outputs["4"]).toEqual({ images: [{ filename: "example_00002_.png", subfolder: "pipeline", type: "output" }] });
    // The same prompt over freshly started processes: the same file, byte for byte.
    expect(readFileSync(join(outputDir, "pipeline", "example_00002_.png")).equals(readFileSync(join(outputDir, "pipeline", "example_00001_.png")))).toBe(true);
    const second = host.segments.hostId;
    await host.close();
    host = undefined;
    expect(ownSegments(second)).toEqual([]);
  });
});
