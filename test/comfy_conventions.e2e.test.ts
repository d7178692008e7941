// ComfyUI's conventions, as a ComfyUI user brings them: extra_model_paths.yaml (read as
// ComfyUI's utils/extra_config.py reads it), the folder flags of `pyisolate run` with ComfyUI's
// names, and a pack without a manifest whose requirements.txt the host environment lacks. The
// run tests go through the CLI in-process to a real Python node that reports what
// `folder_paths` says.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../src/cli/main.ts";
import { PyisolateError } from "../src/errors.ts";
import { FolderPaths } from "../src/node_api/folder_paths.ts";
import { applyComfyStartupPaths, readExtraModelPaths } from "../src/node_api/extra_model_paths.ts";

const repo = join(import.meta.dirname, "..");
const hostPython = process.env.PYISOLATE_PYTHON ?? join(repo, ".venv", "bin", "python");
let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-comfy-"));
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

function yamlAt(name: string, text: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "extra_model_paths.yaml");
  writeFileSync(file, text);
  return file;
}

describe("extra_model_paths.yaml", () => {
  it("reads sections as ComfyUI does: base_path, is_default, one path per line, paths relative to the file", () => {
    const file = yamlAt(
      "yaml1",
      [
        "comfyui:",
        "  base_path: ../comfy/",
        "  is_default: true",
        "  checkpoints: models/checkpoints/",
        "  text_encoders: |",
        "    models/text_encoders/",
        "    models/clip/",
        "a111:",
        "  base_path: $PYI_TEST_A111",
        "  loras: |",
        "    models/Lora",
        "    /abs/LyCORIS",
        "other:",
        "  vae: my_vae",
        "  clip: /abs/clip",
        "home:",
        "  base_path: ~/models",
        "  upscale_models: esrgan",
        "empty:",
        "",
      ].join("\n"),
    );
    const paths = readExtraModelPaths(file, { PYI_TEST_A111: "/srv/a111", HOME: homedir() });
    const comfy = join(root, "comfy");
    expect(paths.map((p) => [p.section, p.folder, p.path, p.isDefault])).toEqual([
      ["comfyui", "checkpoints", join(comfy, "models", "checkpoints"), true],
      ["comfyui", "text_encoders", join(comfy, "models", "text_encoders"), true],
      ["comfyui", "text_encoders", join(comfy, "models", "clip"), true],
      ["a111", "loras", "/srv/a111/models/Lora", false],
      // an absolute line stays absolute, even under base_path (os.path.join)
      ["a111", "loras", "/abs/LyCORIS", false],
      // no base_path: relative to the YAML file's folder
      ["other", "vae", join(root, "yaml1", "my_vae"), false],
      ["other", "clip", "/abs/clip", false],
      ["home", "upscale_models", join(homedir(), "models", "esrgan"), false],
    ]);
  });

  it("adds them to the folder table in order, defaults first, then the output directory's model folders", () => {
    const file = yamlAt("yaml2", "a:\n  checkpoints: /m/a\nb:\n  is_default: yes\n  checkpoints: /m/b\n  clip: /m/clip\n");
    const base = join(root, "base2");
    const folders = new FolderPaths({ baseDir: base });
    const logged: string[] = [];
    applyComfyStartupPaths(folders, readExtraModelPaths(file), (l) => logged.push(l));
    expect(folders.get_folder_paths("checkpoints")).toEqual(["/m/b", join(base, "models", "checkpoints"), "/m/a", join(base, "output", "checkpoints")]);
    // legacy clip → text_encoders, as add_model_folder_path maps it
    expect(folders.get_folder_paths("text_encoders")).toEqual(["/m/clip", join(base, "models", "text_encoders"), join(base, "models", "clip"), join(base, "output", "clip")]);
    expect(folders.get_folder_paths("loras")).toEqual([join(base, "models", "loras"), join(base, "output", "loras")]);
    expect(logged).toEqual(["Adding extra search path checkpoints /m/a", "Adding extra search path checkpoints /m/b", "Adding extra search path clip /m/clip"]);
  });

  it("names the file and the key where ComfyUI would crash", () => {
    const cases: [string, RegExp][] = [
      ["comfyui:\n  checkpoints:\n    - a\n    - b\n", /"comfyui\.checkpoints" must be a path, or several on separate lines \(a \| block\), got \["a","b"\]/],
      ["comfyui: just-a-string\n", /section "comfyui" must be a mapping of folder types to paths/],
      ["- a\n- b\n", /must be a mapping of sections/],
      ["comfyui:\n  base_path: [1]\n", /"comfyui\.base_path" must be a path/],
      ["comfyui: {a: [\n", /not valid YAML/],
    ];
    for (const [i, [text, message]] of cases.entries()) {
      const file = yamlAt(`bad${i}`, text);
      try {
        readExtraModelPaths(file);
        expect.unreachable(text);
      } catch (e) {
        expect((e as PyisolateError).code, text).toBe("VALIDATION");
        expect((e as PyisolateError).file).toBe(file);
        expect((e as Error).message, text).toMatch(message);
        expect((e as Error).message.startsWith(`${file}: `)).toBe(true);
      }
    }
    expect(() => readExtraModelPaths(join(root, "nope.yaml"))).toThrow(/Cannot read the extra model paths config .*nope\.yaml/);
  });
});

/** A ComfyUI-style base directory with a shared pack whose node reports folder_paths. */
function makeBase(name: string): string {
  const base = join(root, name);
  const pack = join(base, "custom_nodes", "FolderProbe");
  mkdirSync(pack, { recursive: true });
  writeFileSync(
    join(pack, "__init__.py"),
    [
      "import json",
      "import folder_paths",
      "",
      "class FolderProbe:",
      "    @classmethod",
      "    def INPUT_TYPES(cls):",
      "        return {'required': {}}",
      "    RETURN_TYPES = ()",
      "    FUNCTION = 'probe'",
      "    OUTPUT_NODE = True",
      "    CATEGORY = 'test'",
      "    def probe(self):",
      "        data = {",
      "            'base': folder_paths.base_path,",
      "            'models': folder_paths.models_dir,",
      "            'output': folder_paths.get_output_directory(),",
      "            'input': folder_paths.get_input_directory(),",
      "            'temp': folder_paths.get_temp_directory(),",
      "            'user': folder_paths.get_user_directory(),",
      "            'checkpoints': folder_paths.get_folder_paths('checkpoints'),",
      "            'ckpt_files': folder_paths.get_filename_list('checkpoints'),",
      "        }",
      "        return {'ui': {'text': [json.dumps(data)]}}",
      "",
      "NODE_CLASS_MAPPINGS = {'FolderProbe': FolderProbe}",
      "",
    ].join("\n"),
  );
  writeFileSync(join(base, "probe.json"), JSON.stringify({ "1": { class_type: "FolderProbe", inputs: {} } }));
  return base;
}

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err };
}

/** Runs the probe workflow with --json; returns what the node reported. */
async function probe(base: string, ...flags: string[]): Promise<{ data: Record<string, unknown>; err: string }> {
  const r = await cli("run", join(base, "probe.json"), "--json", "--python", hostPython, "--cache-dir", join(base, ".cache"), ...flags);
  expect(r.code, r.err).toBe(0);
  const executed = r.out
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; data: { output?: { text: string[] } } })
    .find((e) => e.type === "executed");
  return { data: JSON.parse(executed!.data.output!.text[0]!) as Record<string, unknown>, err: r.err };
}

describe("pyisolate run with ComfyUI's folder flags", () => {
  it("--base-directory puts models, folders and custom_nodes under it, and reads its extra_model_paths.yaml", async () => {
    const base = makeBase("base-a");
    const models = join(root, "shared-models");
    mkdirSync(join(models, "ckpt"), { recursive: true });
    writeFileSync(join(models, "ckpt", "sd15.safetensors"), "weights");
    writeFileSync(join(base, "extra_model_paths.yaml"), `shared:\n  base_path: ${models}\n  checkpoints: ckpt\n`);
    // No --custom-nodes: ComfyUI's custom_nodes under the base directory.
    const { data, err } = await probe(base, "--base-directory", base);
    expect(data).toMatchObject({
      base,
      models: join(base, "models"),
      output: join(base, "output"),
      input: join(base, "input"),
      temp: join(base, "temp"),
      user: join(base, "user"),
      checkpoints: [join(base, "models", "checkpoints"), join(models, "ckpt"), join(base, "output", "checkpoints")],
      ckpt_files: ["sd15.safetensors"],
    });
    expect(err).toContain(`Adding extra search path checkpoints ${join(models, "ckpt")}`);
  });

  it("--output-directory, --input-directory, --temp-directory, --user-directory and --extra-model-paths-config override it", async () => {
    const base = makeBase("base-b");
    const out = join(root, "b-out");
    const input = join(root, "b-in");
    const temp = join(root, "b-tmp");
    const user = join(root, "b-user");
    mkdirSync(user);
    const one = yamlAt("b-yaml1", "x:\n  checkpoints: /one\n");
    const two = yamlAt("b-yaml2", "y:\n  is_default: true\n  checkpoints: /two\n");
    const { data } = await probe(
      base,
      "--base-directory", base,
      "--output-directory", out,
      "--input-directory", input,
      "--temp-directory", temp,
      "--user-directory", user,
      "--extra-model-paths-config", one,
      "--extra-model-paths-config", two,
    );
    expect(data).toMatchObject({
      output: out,
      input,
      // ComfyUI: --temp-directory DIR puts temporary files in DIR/temp
      temp: join(temp, "temp"),
      user,
      checkpoints: ["/two", join(base, "models", "checkpoints"), "/one", join(out, "checkpoints")],
    });
    // The short names still work, and mean the same.
    const short = await probe(base, "--base-directory", base, "--output", out, "--input", input);
    expect(short.data).toMatchObject({ output: out, input });
  });

  it("refuses what ComfyUI refuses, with one line and exit code 2", async () => {
    const base = makeBase("base-c");
    const wf = join(base, "probe.json");
    const cases: [string[], RegExp][] = [
      [["--user-directory", join(root, "no-such-user")], /--user-directory .*no-such-user is not an existing folder; ComfyUI requires one/],
      [["--output", join(root, "o1"), "--output-directory", join(root, "o2")], /--output-directory .*o2 and --output .*o1 name different folders/],
      [["--extra-model-paths-config", join(root, "missing.yaml")], /--extra-model-paths-config .*missing\.yaml: no such file/],
      [["--base-directory", join(root, "no-base")], /--base-directory .*no-base is not a folder/],
    ];
    for (const [flags, message] of cases) {
      const r = await cli("run", wf, "--python", hostPython, "--custom-nodes", join(base, "custom_nodes"), ...flags);
      expect(r.code, flags.join(" ")).toBe(2);
      expect(r.err).toMatch(message);
      expect(r.err.trim().split("\n")).toHaveLength(1);
    }
    // A broken YAML fails before anything starts, naming the file and key.
    const bad = yamlAt("c-bad", "comfyui:\n  checkpoints: [1, 2]\n");
    const r = await cli("run", wf, "--python", hostPython, "--custom-nodes", join(base, "custom_nodes"), "--extra-model-paths-config", bad);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`error: ${bad}: "comfyui.checkpoints" must be a path`);
  });
});

describe("a pack without a manifest", () => {
  it("is reported when its requirements.txt names what the host environment lacks, with the advice to run init", async () => {
    const base = makeBase("base-d");
    const pack = join(base, "custom_nodes", "FolderProbe");
    writeFileSync(join(pack, "requirements.txt"), "numpy\npyisolate-test-not-installed>=1\ntorch\nwinonly; sys_platform == 'win32'\n");
    const { err } = await probe(base, "--base-directory", base);
    expect(err).toContain(
      `][ FolderProbe warning: its requirements.txt lists pyisolate-test-not-installed, which the host environment (`,
    );
    expect(err).toContain(`run \`pyisolate init ${pack}\` to give it a manifest (and its own environment), or install them into the host environment.`);
    // `pyisolate list` says so too.
    const list = await cli("list", "--custom-nodes", join(base, "custom_nodes"), "--cache-dir", join(base, ".cache"), "--python", hostPython);
    expect(list.err).toContain("warning: FolderProbe: its requirements.txt lists pyisolate-test-not-installed, which the host environment lacks; run `pyisolate init ");
    // Nothing to say when the host has them all.
    writeFileSync(join(pack, "requirements.txt"), "numpy\n");
    expect((await probe(base, "--base-directory", base)).err).not.toContain("requirements.txt lists");
  });
});
