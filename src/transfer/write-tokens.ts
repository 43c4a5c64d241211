// Write tokens for allocations: 8 unguessable bytes each. One crypto call fills a block of many
// tokens; calling randomBytes(8) per key cost about 2 us each, a third of a 64-key Alloc.
import { randomFillSync } from "node:crypto";

const BLOCK_TOKENS = 512;

export class WriteTokenSource {
  private block = Buffer.allocUnsafeSlow(BLOCK_TOKENS * 8);
  private next = BLOCK_TOKENS;

  /** A fresh token; the returned buffer is the caller's own copy. */
  take(): Buffer {
    if (this.next === BLOCK_TOKENS) {
      randomFillSync(this.block);
      this.next = 0;
    }
    const off = this.next++ * 8;
    return Buffer.from(this.block.subarray(off, off + 8));
  }
}
