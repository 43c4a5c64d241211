// The receiver's KV pool memory: one contiguous region carved into fixed slots. The store does the
// accounting (which slot belongs to whom); this module only owns the bytes and their lifetime.

export interface PoolMemory {
  /** "mmap": page-aligned, mlock-able native region (registrable with UCX); "heap": a plain Node buffer. */
  readonly kind: "mmap" | "heap";
  /** Zero-copy view over the whole region. Invalid after close(). */
  readonly bytes: Buffer;
  /** Native base address of the region when it is native memory, else null. */
  readonly address: bigint | null;
  /** True when the pages are locked in RAM (mlock). */
  readonly locked: boolean;
  readonly slotBytes: number;
  readonly slots: number;
  /** Zero-copy view of one slot's first `length` bytes (whole slot when omitted). */
  slotView(slot: number, length?: number): Buffer;
  /** Idempotent. After it, no view may be used. */
  close(): void;
}

export interface PoolMemoryOptions {
  slots: number;
  slotBytes: number;
}

/** A heap-backed pool: used where no native region is wanted or possible (tests of pure logic, TCP only). */
export function allocateHeapPool(opts: PoolMemoryOptions): PoolMemory {
  const total = opts.slots * opts.slotBytes;
  let bytes: Buffer | null = Buffer.allocUnsafeSlow(total);
  bytes.fill(0);
  return {
    kind: "heap",
    get bytes(): Buffer {
      if (!bytes) throw new Error("pool memory is closed");
      return bytes;
    },
    address: null,
    locked: false,
    slotBytes: opts.slotBytes,
    slots: opts.slots,
    slotView(slot: number, length = opts.slotBytes): Buffer {
      if (!bytes) throw new Error("pool memory is closed");
      const start = slot * opts.slotBytes;
      return bytes.subarray(start, start + length);
    },
    close(): void {
      bytes = null;
    },
  };
}
