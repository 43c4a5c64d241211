// The native pinned pool: one page-aligned anonymous mmap region, locked in RAM with mlock so that
// one-sided writes (UCX put, RDMA) always land in resident pages, wrapped zero-copy for JavaScript.
// allocatePoolMemory() picks the best pool this host can give (UCX-allocated, mmap, heap).
import { KvbridgeError, isKvbridgeError } from "../errors/kvbridge-error.js";
import {
  loadLibc,
  MAP_ANONYMOUS,
  MAP_FAILED,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  SC_PAGESIZE,
} from "../../native-bindings/libc/libc.js";
import { loadUcx } from "../../native-bindings/ucx/ucx-library.js";
import type { UcxContextOptions } from "../../native-bindings/ucx/ucx-context.js";
import { lockRegion, type PoolLockMode } from "./memlock.js";
import { allocateHeapPool, type PoolMemory, type PoolMemoryOptions } from "./pool-memory.js";
import { roundUpToPage, validatePoolSize } from "./pool-size.js";
import { allocateUcxPool } from "./ucx-pool.js";
import { wrapNativeRegion, type MappedPoolMemory } from "./native-region.js";

export type { PoolLockMode } from "./memlock.js";
export type { MappedPoolMemory, NativePoolMemory } from "./native-region.js";

export interface MappedPoolOptions extends PoolMemoryOptions {
  lock: PoolLockMode;
}

/**
 * Maps `slots * slotBytes` bytes (rounded up to pages) of anonymous memory and, per `lock`, mlocks it.
 * Throws RESOURCE_EXHAUSTED when the kernel refuses the mapping or (lock: true) the lock,
 * INVALID_ARGUMENT for a bad size, UNAVAILABLE when libc cannot be bound here.
 */
export function allocateMappedPool(opts: MappedPoolOptions): MappedPoolMemory {
  validatePoolSize(opts);
  const loaded = loadLibc();
  if (!loaded.available) {
    throw new KvbridgeError("UNAVAILABLE", `native pool memory is unavailable: ${loaded.reason}; use the heap pool (TCP data plane only)`);
  }
  const libc = loaded.libc;
  const total = opts.slots * opts.slotBytes;
  const mappedBytes = roundUpToPage(total, libc.sysconf(SC_PAGESIZE));

  const address = libc.mmap(null, mappedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (address === MAP_FAILED) {
    throw new KvbridgeError(
      "RESOURCE_EXHAUSTED",
      `mmap of ${mappedBytes} bytes for the KV pool failed: ${libc.strerror(libc.errno())}; lower --pool-slots or --slot-bytes, or give the process more memory`,
    );
  }
  let lock;
  try {
    lock = lockRegion(libc, address, mappedBytes, opts.lock);
  } catch (err) {
    libc.munmap(address, mappedBytes);
    throw err;
  }
  // Anonymous mappings are zero-filled by the kernel: the pool starts zeroed like the heap pool.
  return wrapNativeRegion("mmap", {
    address,
    mappedBytes,
    locked: lock.locked,
    lockWarning: lock.warning,
    slots: opts.slots,
    slotBytes: opts.slotBytes,
    view: libc.view(address, mappedBytes),
    release: () => {
      if (lock.locked) libc.munlock(address, mappedBytes);
      libc.munmap(address, mappedBytes);
    },
  });
}

/** Which pool to allocate: a PoolKind, or "auto" for the best this host can give. */
export type PoolAllocator = "auto" | PoolMemory["kind"];

export interface PoolAllocationOptions extends MappedPoolOptions {
  /**
   * "auto" (default): UCX-allocated when libucp loads (lets same-host UCX peers write with a plain
   * memcpy, see docs/ucx.md), else libc mmap, else heap. "ucx" / "mmap" / "heap": exactly that.
   */
  allocator?: PoolAllocator;
  /** libucp and UCX settings for "auto"/"ucx"; a UCX data plane serving the pool must use the same. */
  ucx?: UcxContextOptions;
}

export interface PoolAllocation {
  memory: PoolMemory;
  /** Why a better pool was not used, or why it is not locked; null when all went as asked. */
  warning: string | null;
}

/**
 * The pool for a receiver. With lock: true an mlock refusal always throws (the operator asked for
 * pinned memory); other failures of a preferred allocator fall back to the next with a warning.
 */
export function allocatePoolMemory(opts: PoolAllocationOptions): PoolAllocation {
  validatePoolSize(opts);
  const allocator = opts.allocator ?? "auto";
  const warnings: string[] = [];
  const done = (memory: PoolMemory, extra: string | null): PoolAllocation => {
    if (extra) warnings.push(extra);
    return { memory, warning: warnings.length > 0 ? warnings.join("; ") : null };
  };

  if (allocator === "heap") return done(allocateHeapPool(opts), null);
  if (allocator === "ucx") {
    const memory = allocateUcxPool({ ...opts, ...opts.ucx });
    return done(memory, memory.lockWarning);
  }
  if (allocator === "auto") {
    const ucx = loadUcx({ libraryPath: opts.ucx?.libraryPath });
    if (ucx.available) {
      try {
        const memory = allocateUcxPool({ ...opts, ...opts.ucx });
        return done(memory, memory.lockWarning);
      } catch (err) {
        if (opts.lock === true && isKvbridgeError(err) && err.code === "RESOURCE_EXHAUSTED") throw err;
        warnings.push(`UCX could not allocate the pool (${err instanceof Error ? err.message : String(err)}); using plain mmap`);
      }
    }
  }
  const libc = loadLibc();
  if (!libc.available) {
    if (allocator === "mmap") throw new KvbridgeError("UNAVAILABLE", `native pool memory is unavailable: ${libc.reason}`);
    return done(
      allocateHeapPool(opts),
      `native pool memory unavailable (${libc.reason}); using heap memory, so only the TCP data plane can serve this pool`,
    );
  }
  const memory = allocateMappedPool(opts);
  return done(memory, memory.lockWarning);
}
