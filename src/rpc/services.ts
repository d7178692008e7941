/**
 * Host services: TypeScript classes registered by name that Python code in any process (and
 * TypeScript code in workers) calls. A service is registered with the {@link service}
 * decorator or {@link ServiceRegistry.register} with the list of methods callers may use
 * (`expose`, as `multiprocessing`'s managers do); without a list, its public methods are —
 * methods of its class (and base classes) whose names do not start with `_`, never
 * `constructor`, never a path into other objects. Anything else is a `NOT_CALLABLE` error.
 * Every service pyisolate registers itself has its list.
 *
 * @example
 * ```ts
 * @service("Greeter")
 * class Greeter {
 *   hello(name: string) { return `hello ${name}`; }
 * }
 * // Python, in any process: host.call("Greeter", "hello", "ann")
 * ```
 * @module
 */
import { PyisolateError } from "../errors.ts";

/** Any function; the mapped types below only look at parameters and results. */
type AnyFn = (...args: any[]) => any;

/** The public method names of `T` (no `_` prefix, functions only). */
export type PublicMethods<T> = {
  [K in keyof T]: K extends string ? (K extends `_${string}` ? never : T[K] extends AnyFn ? K : never) : never;
}[keyof T];

/**
 * What a caller in another thread or process sees of a service `T`: each public method,
 * returning a promise of its (awaited) result.
 */
export type Remote<T> = {
  [K in PublicMethods<T>]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;
};

/** Who is calling a service method, during the synchronous part of the call. */
export interface CallContext {
  /** The process (pack name, or the shared process's name) or `"worker"`/`"host"` that called. */
  caller: string;
  /** Aborted when the caller cancels the call or its process exits. */
  signal?: AbortSignal;
}

let current: CallContext | undefined;

/**
 * The context of the service call being dispatched. Valid in the synchronous part of a service
 * method (read it before the first `await`); `undefined` outside a dispatched call.
 */
export function currentCall(): CallContext | undefined {
  return current;
}

type Ctor = new () => object;

interface Entry {
  cls: Ctor | undefined;
  instance: object | undefined;
  /** The methods callers may use; undefined: every public method. */
  expose: ReadonlySet<string> | undefined;
}

/** Options of {@link ServiceRegistry.register}. */
export interface RegisterOptions {
  /** The methods callers (Python, workers) may use. @default every public method */
  expose?: readonly string[];
}

const RESERVED = /^\$/;

/** Finds a public method of `target` by name, or undefined. */
function publicMethod(target: object, method: string): AnyFn | undefined {
  if (typeof method !== "string" || method === "" || method.startsWith("_") || method === "constructor") return undefined;
  let proto = Object.getPrototypeOf(target);
  if (proto === Object.prototype || proto === null) {
    // A plain object: its own function-valued properties are its methods.
    const d = Object.getOwnPropertyDescriptor(target, method);
    return d && typeof d.value === "function" ? d.value : undefined;
  }
  while (proto && proto !== Object.prototype) {
    const d = Object.getOwnPropertyDescriptor(proto, method);
    if (d) return typeof d.value === "function" ? d.value : undefined;
    proto = Object.getPrototypeOf(proto);
  }
  return undefined;
}

/** The public method names of `target`. */
function publicMethodNames(target: object): string[] {
  const names = new Set<string>();
  let proto = Object.getPrototypeOf(target);
  if (proto === Object.prototype || proto === null) {
    for (const k of Object.getOwnPropertyNames(target)) if (publicMethod(target, k)) names.add(k);
    return [...names].sort();
  }
  while (proto && proto !== Object.prototype) {
    for (const k of Object.getOwnPropertyNames(proto)) if (publicMethod(target, k)) names.add(k);
    proto = Object.getPrototypeOf(proto);
  }
  return [...names].sort();
}

/** Host services by name. Classes are instantiated lazily, once, on their first call. */
export class ServiceRegistry {
  #entries = new Map<string, Entry>();

  /**
   * Registers a class (instantiated with no arguments on first use) or an object under `name`.
   * Registering the same class again under the same name does nothing.
   * @throws {PyisolateError} `USAGE` when the name is reserved (starts with `$`) or taken by another service.
   */
  register(name: string, target: Ctor | object, opts: RegisterOptions = {}): void {
    if (typeof name !== "string" || name === "" || RESERVED.test(name) || name.startsWith("_")) {
      throw new PyisolateError("USAGE", `Service name ${JSON.stringify(name)} is not allowed: names starting with "$" are the runtime's and names starting with "_" are private; choose another.`);
    }
    const isClass = typeof target === "function";
    const prev = this.#entries.get(name);
    if (prev) {
      if (isClass ? prev.cls === target : prev.instance === target) return;
      throw new PyisolateError("USAGE", `A service named "${name}" is already registered; each service name can be registered once.`);
    }
    const expose = opts.expose ? new Set(opts.expose) : undefined;
    this.#entries.set(name, isClass ? { cls: target as Ctor, instance: undefined, expose } : { cls: undefined, instance: target, expose });
  }

  /** Removes a service. */
  unregister(name: string): void {
    this.#entries.delete(name);
  }

  /** Whether a service named `name` is registered. */
  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /** Names of the registered services, sorted. */
  names(): string[] {
    return [...this.#entries.keys()].sort();
  }

  /**
   * The service object (instantiating its class on first use).
   * @throws {PyisolateError} `NOT_CALLABLE` when no service has that name.
   */
  instance(name: string): object {
    const e = this.#entries.get(name);
    if (!e) throw this.#noService(name);
    if (!e.instance) e.instance = new e.cls!();
    return e.instance;
  }

  /** The method names callers may use (its exposed list, else its public methods). */
  methods(name: string): string[] {
    const target = this.instance(name);
    const expose = this.#entries.get(name)!.expose;
    const all = publicMethodNames(target);
    return expose ? all.filter((m) => expose.has(m)) : all;
  }

  /**
   * Calls `name.method(...args)` with `ctx` visible through {@link currentCall}. Python keyword
   * arguments, when there are any, arrive as one more, last argument (a plain object).
   * @throws {PyisolateError} `NOT_CALLABLE` for an unknown service or a method that is not public.
   */
  dispatch(name: string, method: string, args: readonly unknown[], kwargs?: Record<string, unknown>, ctx?: CallContext): unknown {
    const target = this.instance(name);
    const expose = this.#entries.get(name)!.expose;
    const fn = expose && !expose.has(method) ? undefined : publicMethod(target, method);
    if (!fn) {
      const known = this.methods(name);
      throw new PyisolateError(
        "NOT_CALLABLE",
        expose
          ? `Service "${name}" does not expose ${JSON.stringify(method)}; callable methods are: ${known.length ? known.join(", ") : "(none)"}.`
          : `Service "${name}" has no public method ${JSON.stringify(method)}; callable methods are: ${known.length ? known.join(", ") : "(none)"}. Methods starting with "_" are private.`,
      );
    }
    const all = kwargs && Object.keys(kwargs).length > 0 ? [...args, kwargs] : args;
    const prev = current;
    current = ctx;
    try {
      return fn.apply(target, all as unknown[]);
    } finally {
      current = prev;
    }
  }

  /** A typed proxy calling the service in this thread (results always come as promises). */
  remote<T>(name: string): Remote<T> {
    return remoteProxy<T>(name, (method, args) => {
      try {
        return Promise.resolve(this.dispatch(name, method, args, undefined, { caller: "host" }));
      } catch (err) {
        return Promise.reject(err);
      }
    });
  }

  #noService(name: string): PyisolateError {
    const names = this.names();
    return new PyisolateError("NOT_CALLABLE", `No host service is named "${name}"; registered services are: ${names.length ? names.join(", ") : "(none)"}.`);
  }
}

/** The registry the {@link service} decorator uses unless told otherwise. */
export const defaultRegistry: ServiceRegistry = new ServiceRegistry();

/**
 * Class decorator (standard TC39 decorators) that registers the class as the host service
 * `name`. The class is instantiated once, with no arguments, on its first call.
 *
 * @example
 * ```ts
 * @service("ModelStats")
 * class ModelStats {
 *   count(kind: string): number { return 3; }
 * }
 * ```
 */
export function service(name: string, registry: ServiceRegistry = defaultRegistry, opts: RegisterOptions = {}): <C extends Ctor>(cls: C, context: ClassDecoratorContext<C>) => void {
  return function <C extends Ctor>(cls: C, context: ClassDecoratorContext<C>): void {
    if (context.kind !== "class") throw new PyisolateError("USAGE", `@service("${name}") decorates classes only.`);
    registry.register(name, cls, opts);
  };
}

/**
 * A typed proxy whose every method calls `invoke(method, args)`.
 * @internal
 */
export function remoteProxy<T>(name: string, invoke: (method: string, args: unknown[]) => Promise<unknown>): Remote<T> {
  const cache = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  return new Proxy(Object.create(null), {
    get(_t, prop) {
      if (typeof prop !== "string" || prop === "then") return undefined;
      let fn = cache.get(prop);
      if (!fn) {
        fn = (...args: unknown[]) => invoke(prop, args);
        cache.set(prop, fn);
      }
      return fn;
    },
  }) as Remote<T>;
}
