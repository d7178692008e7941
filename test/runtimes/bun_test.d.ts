/** The part of Bun's built-in `bun:test` module the Bun caller uses (Bun provides it at run time). */
declare module "bun:test" {
  export function describe(name: string, body: () => void): void;
  export function it(name: string, body: () => Promise<void> | void, timeoutMs?: number): void;
}
