// A prefill node's own prefix cache: the KV chunk bytes it cut, by chunk key, least recently used
// out first, within a byte budget. A chunk key commits to the whole token prefix up to its chunk's
// end and to the engine fingerprint, so a cached chunk i is valid for any prompt whose key i is
// equal. Only a leading run of keys is useful (chunk i loads only after chunks 0..i-1), so a
// prompt's chunks are stored and touched last chunk first: under pressure the deepest chunks of a
// chain go before the ones shared by more prompts, and a prefix shortens from its end instead of
// losing its head. Pure state: the engine checks what it takes out (a bad chunk is dropped with
// drop()), the cache never evaluates or validates anything.

import { KvbridgeError } from "../errors/kvbridge-error.js";

export interface PrefixCacheStats {
  /** Byte budget; 0: the cache is off. */
  budgetBytes: number;
  /** Bytes of the chunks held now. */
  bytes: number;
  chunks: number;
  /** Prompts looked up, and the leading chunks they found. */
  lookups: number;
  hitChunks: number;
  /** Chunks pushed out by the budget. */
  evictedChunks: number;
  /** Chunks the engine found unusable (checksum, layout, range) and dropped. */
  droppedChunks: number;
}

export class PrefixCache {
  /** key -> bytes; Map order is recency: first = least recently used. */
  private readonly entries = new Map<string, Buffer>();
  private heldBytes = 0;
  private hits = 0;
  private lookups = 0;
  private evicted = 0;
  private dropped = 0;

  constructor(readonly budgetBytes: number) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 0) {
      throw new KvbridgeError("INVALID_ARGUMENT", `prefixCacheBytes must be a non-negative integer, got ${budgetBytes}`, { details: { param: "prefixCacheBytes" } });
    }
  }

  get enabled(): boolean {
    return this.budgetBytes > 0;
  }

  /** How many of `keys` (chunk keys of one prompt, in order) are cached as a leading run. No effect on recency. */
  leadingCount(keys: readonly string[]): number {
    let n = 0;
    while (n < keys.length && this.entries.has(keys[n]!)) n++;
    return n;
  }

  /**
   * The bytes of the leading cached run of `keys`, touched (deepest first, so chunk 0 ends most
   * recent). The buffers are the cache's own: callers read them, never write them.
   */
  take(keys: readonly string[]): Buffer[] {
    const n = this.leadingCount(keys);
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) out.push(this.entries.get(keys[i]!)!);
    this.touch(keys.slice(0, n), out);
    this.hits += n;
    this.lookups += 1;
    return out;
  }

  /** Stores a prompt's chunks (index order), deepest first; a chunk larger than the budget is not kept. */
  put(chunks: readonly { key: string; bytes: Buffer }[]): void {
    if (!this.enabled) return;
    this.touch(
      chunks.map((c) => c.key),
      chunks.map((c) => c.bytes),
    );
  }

  /** Removes `key` and everything cached after it in `keys` (they can no longer load without it). */
  drop(keys: readonly string[], from: number): void {
    for (let i = from; i < keys.length; i++) {
      const b = this.entries.get(keys[i]!);
      if (!b) continue;
      this.entries.delete(keys[i]!);
      this.heldBytes -= b.length;
      this.dropped++;
    }
  }

  clear(): void {
    this.entries.clear();
    this.heldBytes = 0;
  }

  stats(): PrefixCacheStats {
    return {
      budgetBytes: this.budgetBytes,
      bytes: this.heldBytes,
      chunks: this.entries.size,
      lookups: this.lookups,
      hitChunks: this.hits,
      evictedChunks: this.evicted,
      droppedChunks: this.dropped,
    };
  }

  /** Makes keys[i] (with bytes[i]) most recent, from the last to the first, then evicts to the budget. */
  private touch(keys: readonly string[], bytes: readonly Buffer[]): void {
    if (!this.enabled) return;
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const b = bytes[i]!;
      if (b.length > this.budgetBytes) continue;
      const old = this.entries.get(key);
      if (old) {
        this.entries.delete(key);
        this.heldBytes -= old.length;
      }
      this.entries.set(key, b);
      this.heldBytes += b.length;
    }
    for (const [key, b] of this.entries) {
      if (this.heldBytes <= this.budgetBytes) break;
      this.entries.delete(key);
      this.heldBytes -= b.length;
      this.evicted++;
    }
  }
}
