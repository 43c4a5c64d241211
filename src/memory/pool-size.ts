// Validation of a pool's geometry, shared by every native pool allocator.
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { PoolMemoryOptions } from "./pool-memory.js";

/** Largest region one Buffer can view (buffer.constants.MAX_LENGTH is 2^32 on 64-bit Node 20). */
export const MAX_POOL_BYTES = 2 ** 32;

/** Throws INVALID_ARGUMENT unless slots and slotBytes are positive integers within MAX_POOL_BYTES. */
export function validatePoolSize(opts: PoolMemoryOptions): void {
  if (!Number.isSafeInteger(opts.slots) || opts.slots <= 0) {
    throw new KvbridgeError("INVALID_ARGUMENT", `pool slots must be a positive integer, got ${opts.slots}`);
  }
  if (!Number.isSafeInteger(opts.slotBytes) || opts.slotBytes <= 0) {
    throw new KvbridgeError("INVALID_ARGUMENT", `pool slot size must be a positive integer of bytes, got ${opts.slotBytes}`);
  }
  const total = opts.slots * opts.slotBytes;
  if (total > MAX_POOL_BYTES) {
    throw new KvbridgeError(
      "INVALID_ARGUMENT",
      `pool of ${opts.slots} x ${opts.slotBytes} bytes (${total}) exceeds the ${MAX_POOL_BYTES}-byte maximum one pool can view; lower --pool-slots or --slot-bytes`,
    );
  }
}

/** `bytes` rounded up to whole pages. */
export function roundUpToPage(bytes: number, pageSize: number): number {
  return Math.ceil(bytes / pageSize) * pageSize;
}
