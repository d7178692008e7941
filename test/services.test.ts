import { describe, expect, expectTypeOf, it } from "vitest";
import { ServiceRegistry, currentCall, service, type Remote } from "../src/rpc/services.ts";
import { connectServices, exposeServices } from "../src/rpc/thread_services.ts";
import { PyisolateError } from "../src/errors.ts";
import type { MessageEndpoint } from "../src/runtime/contract.ts";

class Base {
  inherited(): string {
    return "from base";
  }
}

const registry = new ServiceRegistry();
let instances = 0;

class Calc extends Base {
  factor = 10;
  constructor() {
    super();
    instances++;
  }
  add(a: number, b: number): number {
    return a + b;
  }
  async scaled(x: number): Promise<number> {
    return x * this.factor;
  }
  withKw(a: number, kw?: { times?: number }): number {
    return a * (kw?.times ?? 1);
  }
  whoCalls(): string | undefined {
    return currentCall()?.caller;
  }
  _hidden(): string {
    return "private";
  }
  arrow = (): string => "field";
  get prop(): number {
    return 1;
  }
}

// `@service("Calc", registry)` on the class does exactly this. The call is spelled out because
// the test transform (oxc) does not lower standard decorators; tsup (esbuild), Deno and Bun do.
service("Calc", registry)(Calc, { kind: "class", name: "Calc", addInitializer() {}, metadata: {} } as unknown as ClassDecoratorContext<typeof Calc>);

describe("ServiceRegistry and @service", () => {
  it("registers a class with the standard decorator and instantiates it lazily, once", async () => {
    expect(registry.has("Calc")).toBe(true);
    expect(instances).toBe(0);
    expect(registry.dispatch("Calc", "add", [2, 3])).toBe(5);
    expect(await registry.dispatch("Calc", "scaled", [4])).toBe(40);
    expect(registry.dispatch("Calc", "inherited", [])).toBe("from base");
    expect(instances).toBe(1);
    expect(registry.instance("Calc")).toBeInstanceOf(Calc);
  });

  it("lists public methods only", () => {
    expect(registry.methods("Calc")).toEqual(["add", "inherited", "scaled", "whoCalls", "withKw"]);
  });

  it("passes keyword arguments as one last argument, and the caller through currentCall()", () => {
    expect(registry.dispatch("Calc", "withKw", [3], { times: 4 })).toBe(12);
    expect(registry.dispatch("Calc", "withKw", [3], {})).toBe(3);
    expect(registry.dispatch("Calc", "whoCalls", [], undefined, { caller: "MyPack" })).toBe("MyPack");
    expect(currentCall()).toBeUndefined();
  });

  it("the decorator refuses anything but a class", () => {
    expect(() => service("X", new ServiceRegistry())(Calc, { kind: "method" } as unknown as ClassDecoratorContext<typeof Calc>)).toThrow(/decorates classes only/);
  });

  it("refuses anything that is not a public method with NOT_CALLABLE", () => {
    for (const m of ["_hidden", "constructor", "factor", "arrow", "prop", "toString", "hasOwnProperty", "__proto__", "add.call", "nope", ""]) {
      try {
        registry.dispatch("Calc", m, []);
        expect.unreachable(`${m} was callable`);
      } catch (e) {
        expect(e).toBeInstanceOf(PyisolateError);
        expect((e as PyisolateError).code).toBe("NOT_CALLABLE");
        expect((e as Error).message).toContain('Service "Calc" has no public method');
        expect((e as Error).message).toContain("add, inherited, scaled, whoCalls, withKw");
      }
    }
    expect(() => registry.dispatch("Nope", "x", [])).toThrow(/No host service is named "Nope"; registered services are: Calc/);
  });

  it("registers plain objects, refuses reserved and duplicate names", () => {
    const r = new ServiceRegistry();
    r.register("Obj", { hi: (n: string) => `hi ${n}`, _no: () => 1 });
    expect(r.dispatch("Obj", "hi", ["x"])).toBe("hi x");
    expect(() => r.dispatch("Obj", "_no", [])).toThrow(/no public method/);
    expect(() => r.register("$rt", {})).toThrow(/names starting with "\$" are the runtime's/);
    expect(() => r.register("Obj", {})).toThrow(/already registered/);
    r.register("Calc", Calc);
    r.register("Calc", Calc); // same class again: fine
    expect(r.names()).toEqual(["Calc", "Obj"]);
  });

  it("gives typed in-thread proxies", async () => {
    const calc = registry.remote<Calc>("Calc");
    expect(await calc.add(1, 2)).toBe(3);
    expect(await calc.scaled(2)).toBe(20);
    await expect((calc as unknown as { _hidden(): Promise<string> })._hidden()).rejects.toThrow(/no public method/);
  });

  it("types Remote<T>: public methods only, results as promises", () => {
    type R = Remote<Calc>;
    expectTypeOf<R["add"]>().toEqualTypeOf<(a: number, b: number) => Promise<number>>();
    expectTypeOf<R["scaled"]>().toEqualTypeOf<(x: number) => Promise<number>>();
    expectTypeOf<R["inherited"]>().returns.toEqualTypeOf<Promise<string>>();
    expectTypeOf<keyof R>().toEqualTypeOf<"add" | "scaled" | "withKw" | "whoCalls" | "inherited" | "arrow">();
    // @ts-expect-error private by convention
    type _H = R["_hidden"];
    // @ts-expect-error not a method
    type _F = R["factor"];
  });
});

/** A pair of connected endpoints (a real MessageChannel). */
function channelPair(): [MessageEndpoint & { close(): void }, MessageEndpoint & { close(): void }] {
  const ch = new MessageChannel();
  const wrap = (port: MessagePort) => {
    const map = new Map<(ev: { data: unknown }) => void, (ev: MessageEvent) => void>();
    return {
      postMessage: (m: unknown, t?: unknown[]) => port.postMessage(m, (t ?? []) as Transferable[]),
      addEventListener(_t: "message", l: (ev: { data: unknown }) => void) {
        const w = (ev: MessageEvent) => l({ data: ev.data });
        map.set(l, w);
        port.addEventListener("message", w);
        port.start();
      },
      removeEventListener(_t: "message", l: (ev: { data: unknown }) => void) {
        const w = map.get(l);
        if (w) port.removeEventListener("message", w);
      },
      close: () => port.close(),
    };
  };
  return [wrap(ch.port1), wrap(ch.port2)];
}

describe("services across threads", () => {
  it("serves host services to another thread with typed proxies and clear errors", async () => {
    const [hostSide, workerSide] = channelPair();
    const stop = exposeServices(hostSide, registry);
    const client = connectServices(workerSide);
    const calc = client.get<Calc>("Calc");
    expect(await calc.add(20, 22)).toBe(42);
    expect(await calc.scaled(3)).toBe(30);
    expect(await calc.whoCalls()).toBe("worker");
    await expect((calc as unknown as { _hidden(): Promise<string> })._hidden()).rejects.toMatchObject({ code: "NOT_CALLABLE" });
    await expect(client.get<{ x(): void }>("Missing").x()).rejects.toThrow(/No host service is named "Missing"/);
    stop();
    client.close();
    hostSide.close();
    workerSide.close();
  });
});
