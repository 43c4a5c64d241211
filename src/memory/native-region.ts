// A native memory region (mmap'ed by libc or allocated by UCX) seen as pool memory: zero-copy views,
// bounds-checked slot views, and an idempotent close that unlocks and unmaps it.
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { PoolMemoryBase } from "./pool-memory.js";

/** What a native pool has beyond the base: its address and mapping, whoever made it. */
export interface NativePoolMemory extends PoolMemoryBase {
  readonly kind: "mmap" | "ucx";
  /** Base address of the region (page-aligned). */
  readonly address: bigint;
  /** Length of the mapping (slots * slotBytes rounded up to whole pages, or what UCX allocated). */
  readonly mappedBytes: number;
  /** Set when lock was "auto" and mlock failed: why, and how to fix it (log it as a warning). */
  readonly lockWarning: string | null;
}

/** A region libc mmap'ed (allocateMappedPool). */
export interface MappedPoolMemory extends NativePoolMemory {
  readonly kind: "mmap";
}

export interface NativeRegion {
  address: bigint;
  mappedBytes: number;
  locked: boolean;
  lockWarning: string | null;
  slots: number;
  slotBytes: number;
  /** Zero-copy view over at least slots * slotBytes bytes at `address`. */
  view: ArrayBuffer;
  /** Unlocks and unmaps; called once, by close(). */
  release: () => void;
}

/** The pool face of a native region: bounds-checked slot views and an idempotent close. */
export function wrapNativeRegion<K extends NativePoolMemory["kind"]>(kind: K, region: NativeRegion): NativePoolMemory & { readonly kind: K } {
  const { slots, slotBytes } = region;
  let bytes: Buffer | null = Buffer.from(region.view, 0, slots * slotBytes);
  const live = (): Buffer => {
    if (!bytes) throw new KvbridgeError("FAILED_PRECONDITION", "pool memory is closed; no view may be used after close()");
    return bytes;
  };
  return {
    kind,
    address: region.address,
    mappedBytes: region.mappedBytes,
    locked: region.locked,
    lockWarning: region.lockWarning,
    slotBytes,
    slots,
    get bytes(): Buffer {
      return live();
    },
    slotView(slot: number, length = slotBytes): Buffer {
      const b = live();
      if (!Number.isInteger(slot) || slot < 0 || slot >= slots) {
        throw new KvbridgeError("INVALID_ARGUMENT", `slot ${slot} is outside the pool (0..${slots - 1})`);
      }
      if (!Number.isInteger(length) || length < 0 || length > slotBytes) {
        throw new KvbridgeError("INVALID_ARGUMENT", `view length ${length} is outside 0..${slotBytes} (the slot size)`);
      }
      const start = slot * slotBytes;
      return b.subarray(start, start + length);
    },
    close(): void {
      if (!bytes) return;
      // Views handed out earlier point at memory about to be unmapped: touching one after this
      // faults. Dropping ours first at least makes every later `bytes`/`slotView` throw.
      bytes = null;
      region.release();
    },
  };
}
