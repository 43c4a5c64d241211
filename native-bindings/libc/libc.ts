// koffi declarations for the few libc calls the pinned pool needs: anonymous mmap, mlock and the
// limits that explain an mlock failure. Linux x86_64/aarch64 values; loaded lazily, never at import.
import { loadKoffi } from "../koffi/load-koffi.js";

/** Constants from <sys/mman.h> and <sys/resource.h> / <unistd.h> on Linux. */
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const RLIMIT_MEMLOCK = 8;
export const SC_PAGESIZE = 30;
/** `(void *)-1` as koffi returns it (pointers are unsigned BigInts). */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
/** `RLIM_INFINITY` on Linux. */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

export interface Rlimit {
  soft: bigint;
  hard: bigint;
}

export interface LibcBindings {
  /** Returns the mapping's address, or MAP_FAILED (read errno()). */
  mmap(addr: bigint | null, length: number, prot: number, flags: number, fd: number, offset: number): bigint;
  munmap(addr: bigint, length: number): number;
  mlock(addr: bigint, length: number): number;
  munlock(addr: bigint, length: number): number;
  /** RLIMIT_MEMLOCK and friends; throws only if getrlimit itself fails (it cannot for a valid resource). */
  getrlimit(resource: number): Rlimit;
  sysconf(name: number): number;
  /** errno of the last call made through koffi on this thread. */
  errno(): number;
  /** strerror(errno) */
  strerror(errnum: number): string;
  /** Zero-copy ArrayBuffer over native memory (koffi.view). */
  view(addr: bigint, length: number): ArrayBuffer;
}

export type LibcLoadResult = { available: true; libc: LibcBindings } | { available: false; reason: string };

let cached: LibcLoadResult | null = null;

/** Binds libc once per process. Never throws: an unusable FFI is reported as `available: false`. */
export function loadLibc(): LibcLoadResult {
  if (cached) return cached;
  cached = bind();
  return cached;
}

function bind(): LibcLoadResult {
  if (process.platform !== "linux") {
    return { available: false, reason: `the native pool needs Linux (this is ${process.platform})` };
  }
  const k = loadKoffi();
  if (!k.ok) return { available: false, reason: k.reason };
  const koffi = k.koffi;
  try {
    // glibc's soname; already mapped into every Node process on Linux, so this cannot pull in a second libc.
    const lib = koffi.load("libc.so.6");
    const mmap = lib.func("mmap", "void *", ["void *", "size_t", "int", "int", "int", "int64_t"]);
    const munmap = lib.func("munmap", "int", ["void *", "size_t"]);
    const mlock = lib.func("mlock", "int", ["void *", "size_t"]);
    const munlock = lib.func("munlock", "int", ["void *", "size_t"]);
    // struct rlimit { rlim_t rlim_cur; rlim_t rlim_max; } with rlim_t = unsigned long (64-bit Linux).
    const getrlimit = lib.func("getrlimit", "int", ["int", "void *"]);
    const sysconf = lib.func("sysconf", "long", ["int"]);
    const strerror = lib.func("strerror", "const char *", ["int"]);
    const bindings: LibcBindings = {
      mmap(addr, length, prot, flags, fd, offset) {
        const p = mmap(addr, length, prot, flags, fd, offset) as bigint | null;
        // A mapping at address 0 is only possible with MAP_FIXED, which kvbridge never asks for.
        return p ?? MAP_FAILED;
      },
      munmap: (addr, length) => munmap(addr, length) as number,
      mlock: (addr, length) => mlock(addr, length) as number,
      munlock: (addr, length) => munlock(addr, length) as number,
      getrlimit(resource) {
        const out = new BigUint64Array(2);
        const rc = getrlimit(resource, out) as number;
        if (rc !== 0) throw new Error(`getrlimit(${resource}) failed: ${strerror(koffi.errno()) as string}`);
        return { soft: out[0]!, hard: out[1]! };
      },
      sysconf: (name) => Number(sysconf(name) as number | bigint),
      errno: () => koffi.errno(),
      strerror: (errnum) => (strerror(errnum) as string | null) ?? `errno ${errnum}`,
      view: (addr, length) => koffi.view(addr, length),
    };
    return { available: true, libc: bindings };
  } catch (err) {
    return { available: false, reason: `libc could not be bound through koffi: ${err instanceof Error ? err.message : String(err)}` };
  }
}
