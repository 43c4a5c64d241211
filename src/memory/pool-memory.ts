// The receiver's KV pool memory: one contiguous region carved into fixed slots. The store does the
// accounting (which slot belongs to whom); this module only owns the bytes and their lifetime.
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { MappedPoolMemory } from "./native-region.js";
import type { UcxPoolMemory } from "./ucx-pool.js";

/**
 * What the pool's bytes are: "ucx": allocated and registered by UCX (ucp_mem_map ALLOCATE), so
 * same-host UCX peers copy into it directly; "mmap": a libc mmap region, registrable with UCX;
 * "heap": a plain Node buffer, which only the TCP data plane can serve.
 */
export type PoolKind = PoolMemory["kind"];

/** What every pool offers, whatever its memory. */
export interface PoolMemoryBase {
  /** Zero-copy view over the whole region. Invalid after close(). */
  readonly bytes: Buffer;
  /** True when the pages are locked in RAM (mlock). */
  readonly locked: boolean;
  readonly slotBytes: number;
  readonly slots: number;
  /** Zero-copy view of one slot's first `length` bytes (whole slot when omitted). */
  slotView(slot: number, length?: number): Buffer;
  /** Idempotent. After it, no view may be used. */
  close(): void;
}

export interface HeapPoolMemory extends PoolMemoryBase {
  readonly kind: "heap";
  /** A heap buffer has no address a data plane could register. */
  readonly address: null;
}

/** A pool, told apart by `kind`: narrowing on it gives the native address, and a UCX pool's registration. */
export type PoolMemory = HeapPoolMemory | MappedPoolMemory | UcxPoolMemory;

export interface PoolMemoryOptions {
  slots: number;
  slotBytes: number;
}

/** A heap-backed pool: used where no native region is wanted or possible (tests of pure logic, TCP only). */
export function allocateHeapPool(opts: PoolMemoryOptions): HeapPoolMemory {
  const total = opts.slots * opts.slotBytes;
  let bytes: Buffer | null = Buffer.allocUnsafeSlow(total);
  bytes.fill(0);
  return {
    kind: "heap",
    get bytes(): Buffer {
      if (!bytes) throw closedPool();
      return bytes;
    },
    address: null,
    locked: false,
    slotBytes: opts.slotBytes,
    slots: opts.slots,
    slotView(slot: number, length = opts.slotBytes): Buffer {
      if (!bytes) throw closedPool();
      const start = slot * opts.slotBytes;
      return bytes.subarray(start, start + length);
    },
    close(): void {
      bytes = null;
    },
  };
}

function closedPool(): KvbridgeError {
  return new KvbridgeError("FAILED_PRECONDITION", "pool memory is closed; no view may be used after close()");
}
