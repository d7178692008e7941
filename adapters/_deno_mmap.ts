/**
 * `mapFile` for Deno: libc `mmap` through FFI (private to `adapters/`, used by `deno.ts`).
 * @module
 */
import { PyisolateError } from "../src/errors.ts";
import type { MappedFile } from "../src/runtime/contract.ts";
import { readCopy } from "./_shared.ts";
import { Deno, type LibcSymbols, type Pointer } from "./_deno_api.ts";

let libc: LibcSymbols | null | undefined;

function granted(desc: { name: string; variable?: string }): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

/** libc through FFI, or null where FFI is not permitted (no `--allow-ffi`) or not Linux. */
function loadLibc(): LibcSymbols | null {
  if (libc !== undefined) return libc;
  libc = null;
  // Query first: calling dlopen without the permission would prompt on a terminal.
  if (Deno.build.os !== "linux" || !granted({ name: "ffi" })) return null;
  try {
    libc = Deno.dlopen("libc.so.6", {
      mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
      munmap: { parameters: ["pointer", "usize"], result: "i32" },
      open: { parameters: ["buffer", "i32"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
      __errno_location: { parameters: [], result: "pointer" },
    }).symbols as LibcSymbols;
  } catch {
    libc = null;
  }
  return libc;
}

function errno(lib: LibcSymbols): number {
  const p = lib.__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_PRIVATE = 2;
const MAP_FAILED = 0xffffffffffffffffn;

/** Unmaps mappings whose bytes were collected without an explicit `unmap()`. */
const unmapOnCollect = new FinalizationRegistry<{ ptr: Pointer; length: number }>((m) => {
  loadLibc()?.munmap(m.ptr, BigInt(m.length));
});


/**
 * Maps `length` bytes of a file without copying: libc `mmap` (private and writable, like the
 * Node adapter: reads share the file's pages, writes stay in this process) through FFI, viewed
 * with `Deno.UnsafePointerView.getArrayBuffer`. `unmap()` detaches the buffer (views read as
 * empty from then on instead of touching unmapped memory) and calls `munmap`; a mapping never
 * unmapped is released when its buffer is collected. Without `--allow-ffi`, or with
 * `PYISOLATE_MAPFILE=copy`, reads a copy (`zeroCopy: false`).
 */
export function mapFile(path: string, length: number): MappedFile {
  const copyWanted = granted({ name: "env", variable: "PYISOLATE_MAPFILE" }) && Deno.env.get("PYISOLATE_MAPFILE") === "copy";
  const lib = length > 0 && !copyWanted ? loadLibc() : null;
  if (!lib) return readCopy(path, length);
  const size = Deno.statSync(path).size;
  if (size < length) {
    throw new PyisolateError("USAGE", `Cannot map ${length} bytes of "${path}": the file holds only ${size}.`, { file: path });
  }
  const fd = lib.open(new TextEncoder().encode(`${path}\0`), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const code = errno(lib);
    throw new PyisolateError("NOT_FOUND", `Could not open "${path}" to map it (errno ${code}). Check that the file exists and is readable.`, { file: path });
  }
  let ptr: Pointer | null;
  try {
    ptr = lib.mmap(null, BigInt(length), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0n);
    if (ptr === null || BigInt(Deno.UnsafePointer.value(ptr)) === MAP_FAILED) {
      throw new PyisolateError("USAGE", `Could not map ${length} bytes of "${path}" (mmap errno ${errno(lib)}).`, { file: path });
    }
  } finally {
    lib.close(fd);
  }
  const mapping = ptr;
  let buffer: ArrayBuffer = Deno.UnsafePointerView.getArrayBuffer(mapping, length);
  const token = {};
  unmapOnCollect.register(buffer, { ptr: mapping, length }, token);
  let mapped = true;
  return {
    bytes: new Uint8Array(buffer),
    zeroCopy: true,
    unmap() {
      if (!mapped) return;
      mapped = false;
      unmapOnCollect.unregister(token);
      try {
        // Moves the (external) backing store away without copying and detaches `buffer`.
        buffer = (buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer();
      } catch {
        // already detached (transferred elsewhere)
      }
      lib.munmap(mapping, BigInt(length));
    },
  };
}

