// The `@service` decorator written as users write it (standard decorator syntax), reached
// from a real Python process by name.
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { HostCore } from "../src/process/host_core.ts";
import { ServiceRegistry, service } from "../src/rpc/services.ts";

const registry = new ServiceRegistry();

@service("Greeter", registry)
class Greeter {
  greetings = 0;
  greet(name: string): string {
    this.greetings++;
    return `hello ${name} #${this.greetings}`;
  }
  _secret(): string {
    return "never";
  }
}

const python = process.env.PYISOLATE_PYTHON ?? join(process.cwd(), ".venv", "bin", "python");
const dir = mkdtempSync(join(tmpdir(), "pyisolate-decorator-"));
mkdirSync(join(dir, "GreeterUser"));
writeFileSync(
  join(dir, "GreeterUser", "__init__.py"),
  [
    "from pyisolate_runtime import host",
    "class Api:",
    "    def hello(self, name):",
    "        return host.call('Greeter', 'greet', name)",
    "    def secret(self):",
    "        return host.call('Greeter', '_secret')",
    "host.serve('GreeterUser', Api())",
    "NODE_CLASS_MAPPINGS = {}",
  ].join("\n"),
);
const core = new HostCore({ hostPython: python, packs: [{ name: "GreeterUser", path: join(dir, "GreeterUser"), kind: "isolated" }], services: registry });
afterAll(() => core.close());

describe("@service", () => {
  it("registers the decorated class, instantiated once, callable from Python by name", async () => {
    expect(registry.has("Greeter")).toBe(true);
    const p = core.processFor("GreeterUser");
    expect(await p.call("GreeterUser", "hello", ["ada"])).toBe("hello ada #1");
    expect(await p.call("GreeterUser", "hello", ["bob"])).toBe("hello bob #2");
    expect((registry.instance("Greeter") as Greeter).greetings).toBe(2);
  });

  it("refuses private methods", async () => {
    await expect(core.processFor("GreeterUser").call("GreeterUser", "secret", [])).rejects.toThrow(/NotCallable|not callable|_secret/);
  });
});
