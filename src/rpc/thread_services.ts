/**
 * Host services across threads: TypeScript code in a worker calls the host's services through
 * a {@link Channel} on the worker's endpoint — the same mechanism, timeouts and close path as
 * the broker worker's control calls. Arguments and results must be structured-cloneable.
 * @module
 */
import { PyisolateError } from "../errors.ts";
import type { MessageEndpoint } from "../runtime/contract.ts";
import { Channel, DEFAULT_CHANNEL_TIMEOUT_MS } from "./channel.ts";
import { defaultRegistry, remoteProxy, type Remote, type ServiceRegistry } from "./services.ts";

/** The channel handler that answers service calls. */
const SERVICE_CALL = "svc";

/**
 * Serves the host's services to TypeScript code in a worker over `endpoint` (the worker as
 * seen from the host). Returns a function that stops serving.
 */
export function exposeServices(endpoint: MessageEndpoint, registry: ServiceRegistry = defaultRegistry): () => void {
  const channel = new Channel(endpoint, {
    name: "the host's services",
    handlers: {
      [SERVICE_CALL]: (service: unknown, method: unknown, args: unknown) =>
        registry.dispatch(String(service), String(method), Array.isArray(args) ? args : [], undefined, { caller: "worker" }),
    },
  });
  return () => channel.close("CANCELLED", "the host stopped serving its services");
}

/** The worker side of {@link exposeServices}. */
export interface ServiceClient {
  /** A typed proxy of the host service `name`. */
  get<T>(name: string): Remote<T>;
  /** Stops listening; pending calls fail with `CANCELLED`. */
  close(): void;
}

/** Options of {@link connectServices}. */
export interface ConnectServicesOptions {
  /** Milliseconds a service call may take before it fails with `TIMEOUT`; `0` for none. @default {@link DEFAULT_CHANNEL_TIMEOUT_MS} */
  timeoutMs?: number;
}

/**
 * Connects to the host's services from inside a worker (`endpoint` is the parent as seen
 * from the worker, e.g. `runtime.workerSelf().endpoint`).
 *
 * @example
 * ```ts
 * const services = connectServices(runtime.workerSelf()!.endpoint);
 * const greeter = services.get<Greeter>("Greeter");
 * await greeter.hello("ann");
 * ```
 */
export function connectServices(endpoint: MessageEndpoint, opts: ConnectServicesOptions = {}): ServiceClient {
  const channel = new Channel(endpoint, { name: "the host", defaultTimeoutMs: opts.timeoutMs ?? DEFAULT_CHANNEL_TIMEOUT_MS });
  return {
    get<T>(name: string): Remote<T> {
      return remoteProxy<T>(name, (method, args) =>
        channel.call(SERVICE_CALL, [name, method, args]).catch((err: unknown) => {
          if (err instanceof PyisolateError && err.code === "TYPE") {
            throw new PyisolateError("TYPE", `The arguments of ${name}.${method} cannot be sent to the host: ${err.message}`);
          }
          throw err;
        }),
      );
    },
    close(): void {
      channel.close("CANCELLED", "the connection to the host's services was closed");
    },
  };
}
