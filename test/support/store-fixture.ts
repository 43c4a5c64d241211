// A store on a manual clock with deterministic write tokens, for unit and race tests.
import { KvStore, type StoreConfig } from "../../src/store/kv-store.js";

export interface ManualClock {
  now: number;
  advance(ms: number): number;
}

export function manualClock(start = 1_000_000): ManualClock {
  return {
    now: start,
    advance(ms: number) {
      this.now += ms;
      return this.now;
    },
  };
}

export function makeStore(overrides: Partial<StoreConfig> = {}): KvStore {
  let n = 0;
  return new KvStore({
    slots: 8,
    slotBytes: 1024,
    leaseMs: 1_000,
    quarantineMs: 5_000,
    holdMs: 10_000,
    maxKeysPerAlloc: 64,
    maxChunksPerRequest: 4096,
    maxRequests: 1024,
    newToken: () => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(BigInt(++n));
      return b;
    },
    ...overrides,
  });
}
