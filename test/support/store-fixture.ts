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

/**
 * Writes every byte of each WRITING entry `requestId` owns, as the TCP data plane would: each write
 * admitted with the entry's token, then recorded. Returns how many entries it wrote.
 */
export function writeOwned(store: KvStore, requestId: string, now: number): number {
  let n = 0;
  for (const e of store.internals().entries.values()) {
    if (e.status.state !== "writing" || e.status.owner !== requestId || e.slot === null) continue;
    const adm = store.admitWrite(requestId, e.slot, 0, e.size, e.status.token, now);
    if (!adm.ok) continue;
    store.recordWritten(requestId, e.slot, 0, e.size);
    n++;
  }
  return n;
}

/** Writes what the request owns, then commits it: the honest writer's path. */
export function commitWritten(store: KvStore, requestId: string, now: number): ReturnType<KvStore["commit"]> {
  writeOwned(store, requestId, now);
  return store.commit(requestId, now);
}
