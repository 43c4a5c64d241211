// Captures what a C function writes to a `FILE *` as a string (open_memstream): UCX reports the
// transports of a context or an endpoint only that way (ucp_context_print_info, ucp_ep_print_info).
import { loadKoffi, type Koffi } from "../koffi/load-koffi.js";

interface MemstreamFns {
  koffi: Koffi;
  openMemstream: (ptrCell: unknown, sizeCell: unknown) => bigint | null;
  fclose: (file: bigint) => number;
  free: (ptr: bigint) => void;
}

let bound: MemstreamFns | null | undefined;

function bind(): MemstreamFns | null {
  if (bound !== undefined) return bound;
  const k = loadKoffi();
  if (!k.ok || process.platform !== "linux") return (bound = null);
  const koffi = k.koffi;
  try {
    const lib = koffi.load("libc.so.6");
    bound = {
      koffi,
      openMemstream: lib.func("open_memstream", "void *", ["void *", "void *"]) as MemstreamFns["openMemstream"],
      fclose: lib.func("fclose", "int", ["void *"]) as MemstreamFns["fclose"],
      free: lib.func("free", "void", ["void *"]) as MemstreamFns["free"],
    };
  } catch {
    bound = null;
  }
  return bound;
}

/**
 * Calls `write` with a `FILE *` and returns what it wrote, or null when libc cannot be bound or the
 * stream cannot be opened. open_memstream fills its two cells at fclose, so they live in native
 * memory (koffi.alloc), not in koffi's call-scoped output parameters.
 */
export function captureCStream(write: (file: bigint) => void): string | null {
  const fns = bind();
  if (!fns) return null;
  const { koffi } = fns;
  const cells = koffi.alloc("uint64_t", 2);
  try {
    const base = koffi.address(cells) as bigint;
    const file = fns.openMemstream(cells, base + 8n);
    if (file === null || file === 0n) return null;
    try {
      write(file);
    } finally {
      fns.fclose(file);
    }
    const [ptr, size] = koffi.decode(cells, "uint64_t", 2) as [bigint, bigint];
    if (ptr === 0n) return "";
    try {
      return Buffer.from(koffi.decode(ptr, "char", Number(size)) as ArrayLike<number>).toString("utf8");
    } finally {
      fns.free(ptr);
    }
  } finally {
    koffi.free(cells);
  }
}
