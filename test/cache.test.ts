import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MetadataCache, logCacheHit, packPythonFiles } from "../src/nodes/metadata_cache.ts";
import { discoverPacks, type PackInfo } from "../src/manifest/manifest.ts";
import { Logger } from "../src/log.ts";

let root: string;
let nodes: string;
let cacheDir: string;

function loadPacks(): Map<string, PackInfo> {
  return new Map(discoverPacks(nodes).packs.map((p) => [p.name, p]));
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "pyisolate-cache-"));
  nodes = join(root, "custom_nodes");
  cacheDir = join(root, ".pyisolate");
  const dir = join(nodes, "MyAwesomeNode");
  mkdirSync(join(dir, "sub"), { recursive: true });
  mkdirSync(join(dir, "__pycache__"));
  mkdirSync(join(dir, ".git"));
  mkdirSync(join(dir, "node_modules", "x"), { recursive: true });
  writeFileSync(join(dir, "__init__.py"), "from .nodes import NODE_CLASS_MAPPINGS\n");
  writeFileSync(join(dir, "nodes.py"), "NODE_CLASS_MAPPINGS = {}\n");
  writeFileSync(join(dir, "sub", "helpers.py"), "X = 1\n");
  writeFileSync(join(dir, "README.md"), "docs\n");
  writeFileSync(join(dir, "__pycache__", "nodes.cpython-311.py"), "");
  writeFileSync(join(dir, ".git", "hook.py"), "");
  writeFileSync(join(dir, "node_modules", "x", "gen.py"), "");
  writeFileSync(join(dir, "pyisolate.yaml"), "isolated: true\nshare_torch: true\ndependencies: [numpy==2.0.0]\n");
  writeFileSync(join(nodes, "loose.py"), "NODE_CLASS_MAPPINGS = {}\n");
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("cache key", () => {
  it("covers the pack's .py files, skipping __pycache__, .git and node_modules", () => {
    const files = packPythonFiles(join(nodes, "MyAwesomeNode")).map(([rel]) => rel);
    expect(files).toEqual(["__init__.py", "nodes.py", "sub/helpers.py"]);
    expect(packPythonFiles(join(nodes, "loose.py")).map(([rel]) => rel)).toEqual(["loose.py"]);
  });

  it("is stable while nothing changes and changes with each input", () => {
    const cache = new MetadataCache(cacheDir);
    const key = () => cache.key(loadPacks().get("MyAwesomeNode")!, "env-fp-1");
    const k0 = key();
    expect(k0).toMatch(/^[0-9a-f]{64}$/);
    expect(key()).toBe(k0);

    // Not part of the key: non-Python files, caches, VCS data.
    writeFileSync(join(nodes, "MyAwesomeNode", "README.md"), "other docs\n");
    writeFileSync(join(nodes, "MyAwesomeNode", "__pycache__", "nodes.cpython-311.py"), "changed");
    writeFileSync(join(nodes, "MyAwesomeNode", ".git", "hook.py"), "changed");
    expect(key()).toBe(k0);

    // The environment fingerprint.
    expect(cache.key(loadPacks().get("MyAwesomeNode")!, "env-fp-2")).not.toBe(k0);

    // Touching a .py file (mtime only).
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(nodes, "MyAwesomeNode", "sub", "helpers.py"), later, later);
    const k1 = key();
    expect(k1).not.toBe(k0);

    // Changing a .py file's size.
    writeFileSync(join(nodes, "MyAwesomeNode", "nodes.py"), "NODE_CLASS_MAPPINGS = {'A': object}\n");
    const k2 = key();
    expect(k2).not.toBe(k1);

    // Adding a .py file.
    writeFileSync(join(nodes, "MyAwesomeNode", "extra.py"), "");
    const k3 = key();
    expect(k3).not.toBe(k2);

    // The manifest's bytes.
    writeFileSync(join(nodes, "MyAwesomeNode", "pyisolate.yaml"), "isolated: true\nshare_torch: true\ndependencies: [numpy==2.1.0]\n");
    expect(key()).not.toBe(k3);
  });
});

describe("MetadataCache store", () => {
  it("returns stored data for the same key only, and reports hit/stale/none", async () => {
    const cache = new MetadataCache(cacheDir);
    const pack = loadPacks().get("MyAwesomeNode")!;
    const key = cache.key(pack, "fp");
    expect(cache.get(pack, key)).toBeNull();
    expect(cache.state(pack, key)).toBe("none");

    const data = { nodes: { MyNode: { display_name: "My Node", inputs: { image: ["IMAGE"] } } }, webDir: null };
    await cache.put(pack, key, data);
    expect(cache.file(pack)).toBe(join(cacheDir, "metadata", "MyAwesomeNode.json"));
    const stored = JSON.parse(readFileSync(cache.file(pack), "utf8"));
    expect(stored.key).toBe(key);
    expect(typeof stored.createdAt).toBe("string");
    expect(readdirSync(join(cacheDir, "metadata"))).toEqual(["MyAwesomeNode.json"]);

    // A fresh instance (a later start) sees it.
    const again = new MetadataCache(cacheDir);
    expect(again.get(pack, key)).toEqual(data);
    expect(again.state(pack, key)).toBe("hit");

    // Invalidation is a key mismatch.
    writeFileSync(join(nodes, "MyAwesomeNode", "nodes.py"), "# edited\nNODE_CLASS_MAPPINGS = {}\n");
    const newKey = again.key(loadPacks().get("MyAwesomeNode")!, "fp");
    expect(newKey).not.toBe(key);
    expect(again.get(pack, newKey)).toBeNull();
    expect(again.state(pack, newKey)).toBe("stale");

    await again.put(pack, newKey, { nodes: {} });
    expect(again.get(pack, newKey)).toEqual({ nodes: {} });
    expect(again.get(pack, key)).toBeNull();

    await again.invalidate(pack);
    expect(again.state(pack, newKey)).toBe("none");
  });

  it("treats an unreadable entry as a miss", async () => {
    const cache = new MetadataCache(cacheDir);
    const pack = loadPacks().get("loose")!;
    await cache.put(pack, "k", [1, 2, 3]);
    expect(cache.get(pack, "k")).toEqual([1, 2, 3]);
    writeFileSync(cache.file(pack), "{ not json");
    expect(cache.get(pack, "k")).toBeNull();
    expect(cache.state(pack, "k")).toBe("none");
  });

  it("logs the cache-hit line", () => {
    const lines: string[] = [];
    const logger = new Logger((_level, line) => lines.push(line));
    logCacheHit(loadPacks().get("MyAwesomeNode")!, logger);
    logCacheHit("OtherPack", logger);
    expect(lines).toEqual(["][ MyAwesomeNode loaded from cache", "][ OtherPack loaded from cache"]);
  });
});
