// A request that needs more slots than the pool has at all is told it will never fit and why,
// distinct from "pool full, retry later", and the refusal touches nothing (no eviction either).
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { checkInvariants } from "../../src/store/invariants.js";
import { commitWritten, makeStore } from "../support/store-fixture.js";

const one = (requestId: string, keys: string[], size = 100) => ({ requestId, keys, sizes: keys.map(() => size), batchSeq: 0, totalChunks: 0, isLastBatch: true });
const keys = (p: string, n: number) => Array.from({ length: n }, (_, i) => `${p}${i}`);

function thrown(fn: () => unknown): KvbridgeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof KvbridgeError) return e;
    throw e;
  }
  throw new Error("expected a KvbridgeError");
}

describe("never fits vs pool full", () => {
  it("a request needing more slots than the pool has is refused never_fits, naming what it needs and what to do, evicting nothing", () => {
    const s = makeStore({ slots: 4, slotBytes: 1024 });
    s.alloc(one("cache", ["c0", "c1"]), 0);
    commitWritten(s, "cache", 1);
    s.release("cache", 2);
    const before = s.stats();
    const e = thrown(() => s.alloc(one("huge", keys("h", 5)), 3));
    expect(e.code).toBe("RESOURCE_EXHAUSTED");
    expect(e.details).toMatchObject({ reason: "never_fits", limit: 4 });
    expect(e.message).toMatch(/can never fit: it needs 5 slots of 1024 bytes; the pool has 4: raise --pool-slots or split the request/);
    expect(s.stats()).toEqual(before);
    checkInvariants(s);
  });

  it("a batched request declaring more chunks than the pool is refused at batch 0", () => {
    const s = makeStore({ slots: 4 });
    const e = thrown(() => s.alloc({ ...one("big", ["b0"]), totalChunks: 6, isLastBatch: false }, 0));
    expect(e.details.reason).toBe("never_fits");
    expect(e.message).toMatch(/needs 6 slots/);
  });

  it("a request that fits the pool but not its free room right now is pool_full: retry later", () => {
    const s = makeStore({ slots: 4 });
    s.alloc(one("hog", keys("x", 3)), 0);
    const e = thrown(() => s.alloc(one("late", keys("y", 2)), 1));
    expect(e.code).toBe("RESOURCE_EXHAUSTED");
    expect(e.details.reason).toBe("pool_full");
    expect(e.message).toMatch(/retry later/);
  });

  it("deduped keys hold slots too: a request of more chunks than the pool never fits even if some are present", () => {
    const s = makeStore({ slots: 4 });
    s.alloc(one("w", ["s0", "s1", "s2"]), 0);
    commitWritten(s, "w", 1);
    s.release("w", 2);
    expect(thrown(() => s.alloc(one("big", ["s0", "s1", "s2", "n0", "n1"]), 3)).details.reason).toBe("never_fits");
    // Exactly the pool's size fits, evicting the cache it does not share.
    const r = s.alloc(one("full", ["s0", "n0", "n1", "n2"]), 4);
    expect(r.alreadySentIndexes).toEqual([0]);
    expect(r.remoteIndexes).toHaveLength(3);
    checkInvariants(s);
  });
});
