/**
 * The slice of the Deno namespace the Deno adapter uses, typed here so that the adapter
 * type-checks without Deno's own declarations (private to `adapters/`).
 * @module
 */

export type Pointer = object;

export interface DenoChild {
  readonly pid: number;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly status: Promise<{ code: number; signal: string | null }>;
  kill(signal?: string): void;
  unref(): void;
}

export interface DenoConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

export interface DenoListener extends AsyncIterable<DenoConn> {
  close(): void;
  unref(): void;
}

export interface DenoFile {
  readSync(p: Uint8Array): number | null;
  close(): void;
}

export interface LibcSymbols {
  mmap(addr: Pointer | null, length: bigint, prot: number, flags: number, fd: number, offset: bigint): Pointer | null;
  munmap(addr: Pointer | null, length: bigint): number;
  open(path: Uint8Array, flags: number): number;
  close(fd: number): number;
  __errno_location(): Pointer | null;
}

export interface DenoNamespace {
  Command: new (
    cmd: string,
    opts: {
      args: string[];
      env?: Record<string, string>;
      clearEnv?: boolean;
      cwd?: string;
      stdin: "null";
      stdout: "piped" | "null";
      stderr: "piped" | "null";
      detached?: boolean;
    },
  ) => { spawn(): DenoChild };
  kill(pid: number, signal: string): void;
  listen(opts: { transport: "unix"; path: string } | { transport: "tcp"; hostname: string; port: number }): DenoListener;
  connect(opts: { transport: "unix"; path: string }): Promise<DenoConn>;
  removeSync(path: string): void;
  statSync(path: string): { size: number };
  openSync(path: string, opts: { read: true }): DenoFile;
  env: { get(name: string): string | undefined };
  build: { os: string };
  permissions: { querySync(desc: { name: string; variable?: string }): { state: string } };
  dlopen(path: string, symbols: Record<string, { parameters: string[]; result: string }>): { symbols: unknown };
  UnsafePointer: { value(p: Pointer | null): bigint | number };
  UnsafePointerView: {
    new (p: Pointer): { getInt32(offset?: number): number };
    getArrayBuffer(p: Pointer, byteLength: number, offset?: number): ArrayBuffer;
  };
  errors: Record<string, new (...args: never[]) => Error>;
}

export const Deno: DenoNamespace = (globalThis as unknown as { Deno: DenoNamespace }).Deno;
