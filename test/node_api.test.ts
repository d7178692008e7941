/**
 * Host services of the node API, on their own: FolderPaths against a real directory tree,
 * the event bus, PromptServer and Progress.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PyisolateError } from "../src/errors.ts";
import { HostCore } from "../src/process/host_core.ts";
import { Logger } from "../src/log.ts";
import { EventBus, FolderPaths, ModelManagement, Progress, PromptServer, type NodeApiEvent } from "../src/node_api/mod.ts";
import { NodeRegistry, type PackNodes } from "../src/nodes/registry.ts";
import { ServiceRegistry } from "../src/rpc/services.ts";

const root = mkdtempSync(join(tmpdir(), "pyisolate-folders-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function touch(path: string, content = ""): void {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, content);
}

describe("FolderPaths", () => {
  const base = join(root, "comfy");
  const folders = new FolderPaths({ baseDir: base });
  touch(join(base, "models", "checkpoints", "b.safetensors"));
  touch(join(base, "models", "checkpoints", "a.ckpt"));
  touch(join(base, "models", "checkpoints", "notes.txt"));
  touch(join(base, "models", "checkpoints", "sub", "c.pt"));
  touch(join(base, "models", "checkpoints", ".git", "hidden.pt"));
  touch(join(base, "models", "unet", "u.safetensors"));
  touch(join(base, "models", "diffusion_models", "d.sft"));
  touch(join(base, "models", "clip", "t5.safetensors"));

  it("has ComfyUI's default folders under the base directory", () => {
    expect(folders.models_dir()).toBe(join(base, "models"));
    expect(folders.get_folder_paths("checkpoints")).toEqual([join(base, "models", "checkpoints")]);
    expect(folders.get_folder_paths("diffusion_models")).toEqual([join(base, "models", "unet"), join(base, "models", "diffusion_models")]);
    expect(folders.get_folder_paths("unet")).toEqual(folders.get_folder_paths("diffusion_models"));
    expect(folders.get_folder_paths("clip")).toEqual([join(base, "models", "text_encoders"), join(base, "models", "clip")]);
    expect(folders.folder_info("configs")?.extensions).toEqual([".yaml"]);
    expect(folders.folder_names()).toEqual(expect.arrayContaining(["checkpoints", "loras", "vae", "text_encoders", "controlnet", "upscale_models", "embeddings", "custom_nodes"]));
    expect(folders.get_folder_paths("nope")).toBeNull();
    expect(folders.get_supported_pt_extensions()).toEqual([".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"]);
  });

  it("creates and names the input, output and temp directories", () => {
    expect(folders.get_input_directory()).toBe(join(base, "input"));
    expect(folders.get_output_directory()).toBe(join(base, "output"));
    expect(folders.get_temp_directory()).toBe(join(base, "temp"));
    expect(folders.get_directory_by_type("output")).toBe(join(base, "output"));
    expect(folders.get_directory_by_type("models")).toBeNull();
  });

  it("lists files with the folder's extensions, recursively, sorted, without .git", () => {
    expect(folders.get_filename_list("checkpoints")).toEqual(["a.ckpt", "b.safetensors", join("sub", "c.pt")]);
    expect(folders.get_filename_list("unet")).toEqual(["d.sft", "u.safetensors"]);
    expect(folders.get_filename_list("clip")).toEqual(["t5.safetensors"]);
    expect(folders.get_filename_list("nope")).toBeNull();
  });

  it("keeps a listing until a listed directory's mtime changes", () => {
    const dir = join(base, "models", "loras");
    touch(join(dir, "one.safetensors"));
    expect(folders.get_filename_list("loras")).toEqual(["one.safetensors"]);
    // A file added without the directory's mtime moving is not seen: the listing is cached.
    const stamp = new Date(Date.now() - 60_000);
    utimesSync(dir, stamp, stamp);
    folders.get_filename_list("loras");
    writeFileSync(join(dir, "two.safetensors"), "");
    utimesSync(dir, stamp, stamp);
    expect(folders.get_filename_list("loras")).toEqual(["one.safetensors"]);
    // Once the mtime moves, the listing is made again.
    utimesSync(dir, new Date(), new Date());
    expect(folders.get_filename_list("loras")).toEqual(["one.safetensors", "two.safetensors"]);
    // A new subdirectory is seen through its parent's mtime.
    touch(join(dir, "style", "three.pt"));
    expect(folders.get_filename_list("loras")).toEqual(["one.safetensors", join("style", "three.pt"), "two.safetensors"]);
  });

  it("adds model folder paths, first when default, and sees their files", () => {
    const extra = join(root, "extra-ckpts");
    touch(join(extra, "z.safetensors"));
    folders.get_filename_list("checkpoints");
    folders.add_model_folder_path("checkpoints", extra);
    expect(folders.get_folder_paths("checkpoints")).toEqual([join(base, "models", "checkpoints"), extra]);
    expect(folders.get_filename_list("checkpoints")).toContain("z.safetensors");
    folders.add_model_folder_path("checkpoints", extra, true);
    expect(folders.get_folder_paths("checkpoints")?.[0]).toBe(extra);
    folders.add_model_folder_path("my_models", extra);
    expect(folders.folder_info("my_models")).toEqual({ paths: [extra], extensions: [] });
    expect(folders.get_full_path("checkpoints", "z.safetensors")).toBe(join(extra, "z.safetensors"));
  });

  it("resolves full paths, null when missing, and refuses names that leave the folder", () => {
    expect(folders.get_full_path("checkpoints", join("sub", "c.pt"))).toBe(join(base, "models", "checkpoints", "sub", "c.pt"));
    expect(folders.get_full_path("checkpoints", "missing.safetensors")).toBeNull();
    expect(folders.get_full_path("nope", "a.ckpt")).toBeNull();
    for (const bad of ["../../secret.txt", "sub/../../x", "/etc/passwd"]) {
      expect(() => folders.get_full_path("checkpoints", bad)).toThrow(PyisolateError);
      expect(() => folders.get_full_path("checkpoints", bad)).toThrow(/absolute path|climbs out/);
    }
  });

  it("resolves annotated names", () => {
    touch(join(base, "output", "img.png"));
    expect(folders.get_annotated_filepath("img.png [output]")).toBe(join(base, "output", "img.png"));
    expect(folders.get_annotated_filepath("img.png [temp]")).toBe(join(base, "temp", "img.png"));
    expect(folders.get_annotated_filepath("img.png")).toBe(join(base, "input", "img.png"));
    expect(folders.get_annotated_filepath("img.png", join(root, "elsewhere"))).toBe(join(root, "elsewhere", "img.png"));
    expect(folders.exists_annotated_filepath("img.png [output]")).toBe(true);
    expect(folders.exists_annotated_filepath("img.png [input]")).toBe(false);
    expect(() => folders.get_annotated_filepath("../../etc/passwd [input]")).toThrow(/climbs out/);
  });

  it("is reachable by name through a service registry", () => {
    const registry = new ServiceRegistry();
    registry.register("FolderPaths", folders);
    expect(registry.dispatch("FolderPaths", "get_full_path", ["checkpoints", "a.ckpt"])).toBe(join(base, "models", "checkpoints", "a.ckpt"));
    expect(() => registry.dispatch("FolderPaths", "configure", [{}])).toThrow(/no public method/);
  });
});

describe("PromptServer, Progress and the event bus", () => {
  it("puts send_sync and progress onto the bus in ComfyUI's shape, with the sid", () => {
    const bus = new EventBus();
    const seen: NodeApiEvent[] = [];
    const off = bus.on((e) => seen.push(e));
    bus.on(() => {
      throw new Error("a broken listener does not stop the others");
    });
    const server = new PromptServer(bus);
    const progress = new Progress(bus, server);
    server.send_sync("my.event", { a: 1 }, "client-1");
    server.send_sync("broadcast", { b: 2 });
    server.setClientId("client-9");
    expect(server.client_id()).toBe("client-9");
    progress.update({ value: 2, max: 4, node: "7", prompt_id: "p" });
    expect(seen).toEqual([
      { type: "my.event", data: { a: 1 }, sid: "client-1", node: null },
      { type: "broadcast", data: { b: 2 }, sid: null, node: null },
      { type: "progress", data: { value: 2, max: 4, node: "7", prompt_id: "p" }, sid: "client-9", promptId: "p" },
    ]);
    expect(progress.last("7")?.value).toBe(2);
    off();
    server.send_sync("after", {});
    expect(seen).toHaveLength(3);
  });

  it("answers client_id and sends progress for the prompt that asks, while prompts run at the same time", () => {
    const bus = new EventBus();
    const seen: NodeApiEvent[] = [];
    bus.on((e) => seen.push(e));
    const server = new PromptServer(bus);
    const progress = new Progress(bus, server);
    server.beginPrompt("pa", "client-a");
    server.beginPrompt("pb", "client-b");
    expect([server.client_id("pa"), server.client_id("pb")]).toEqual(["client-a", "client-b"]);
    // No prompt named (or an unknown one) while two run: the last one set.
    expect(server.client_id()).toBe("client-b");
    progress.update({ value: 1, max: 2, node: "1", prompt_id: "pa" });
    progress.update({ value: 1, max: 2, node: "1", prompt_id: "pb" });
    server.send_sync("note", { x: 1 }, "client-a", "1", "pa");
    expect(seen.map((e) => [e.type, e.sid, e.promptId])).toEqual([
      ["progress", "client-a", "pa"],
      ["progress", "client-b", "pb"],
      ["note", "client-a", "pa"],
    ]);
    server.endPrompt("pb");
    // One prompt left: an unnamed question is that prompt's.
    server.setClientId("client-z");
    expect(server.client_id()).toBe("client-a");
    server.endPrompt("pa");
    expect(server.client_id()).toBe("client-z");
  });

  it("ModelManagement tells every live process, and fans memory calls out past the caller", () => {
    const sent: string[] = [];
    const proc = (name: string) => ({ name, event: (s: string, m: string, a: readonly unknown[] = []) => (sent.push(`${name}:${s}.${m}(${a.join(",")})`), true) });
    const mm = new ModelManagement({ live: () => [proc("A"), proc("B")] });
    expect(mm.interrupt()).toBe(2);
    expect(mm.processingInterrupted()).toBe(true);
    mm.softEmptyCache(true, "A");
    mm.unloadAllModels("B");
    expect(sent).toEqual([
      "A:ModelManagement.interrupt(true)",
      "B:ModelManagement.interrupt(true)",
      "B:ModelManagement.soft_empty_cache(true)",
      "A:ModelManagement.unload_all_models()",
    ]);
  });
});

describe("NodeRegistry", () => {
  it("keeps the first pack's class when two packs define the same name, and reports it", async () => {
    const lines: string[] = [];
    const core = new HostCore({
      hostPython: "python3",
      packs: [
        { name: "Alpha", path: join(root, "Alpha"), kind: "isolated" },
        { name: "Beta", path: join(root, "Beta"), kind: "shared" },
      ],
      services: new ServiceRegistry(),
      exitHooks: false,
    });
    const registry = new NodeRegistry({ core, logger: new Logger((_l, line) => lines.push(line)) });
    const entry = (name: string, category: string) => ({ name, input: { required: {} }, output: [], category });
    const flags = { api: "v1" as const, is_changed: true, validate_inputs: false, input_is_list: false, not_idempotent: false, is_async: false };
    const alpha: PackNodes = { nodes: { Shared: entry("Shared", "alpha") }, node_flags: { Shared: flags }, web_directory: "/web/alpha" };
    const beta: PackNodes = { nodes: { Shared: entry("Shared", "beta"), Own: entry("Own", "beta") }, node_flags: {}, web_directory: null };
    expect(registry.registerPack("Alpha", alpha)).toBe(1);
    expect(registry.registerPack("Beta", beta)).toBe(1);
    expect(registry.info("Shared")?.category).toBe("alpha");
    expect(registry.owner("Shared")).toEqual({ pack: "Alpha", process: "Alpha", isolated: true });
    expect(registry.owner("Own")).toEqual({ pack: "Beta", process: "shared", isolated: false });
    expect(registry.hasIsChanged("Shared")).toBe(true);
    expect(registry.hasIsChanged("Own")).toBe(false);
    expect(registry.duplicates).toEqual([{ classType: "Shared", kept: "Alpha", ignored: "Beta" }]);
    expect(lines).toContain("][ Beta - node class Shared is already defined by Alpha; keeping that one");
    expect(registry.webDirectories()).toEqual({ Alpha: "/web/alpha" });
    await expect(registry.execute("Missing", {})).rejects.toThrow(/No loaded pack defines node class "Missing"/);
    expect(core.processes().every((p) => p.starts === 0)).toBe(true);
    await core.close();
  });
});
