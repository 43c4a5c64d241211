import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { atBaseline, checkInvariants } from "../../src/store/invariants.js";
import { commitWritten, makeStore, manualClock } from "../support/store-fixture.js";

const one = (requestId: string, keys: string[], size = 100) => ({
  requestId,
  keys,
  sizes: keys.map(() => size),
  batchSeq: 0,
  totalChunks: 0,
  isLastBatch: true,
});

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof KvbridgeError) return e.code;
    throw e;
  }
  throw new Error("expected a KvbridgeError");
}

describe("KvStore alloc", () => {
  it("allocates one WRITING slot per absent key, in key order, with a token each", () => {
    const s = makeStore();
    const r = s.alloc(one("r1", ["a", "b", "c"]), 0);
    expect(r.remoteIndexes).toHaveLength(3);
    expect(new Set(r.remoteIndexes).size).toBe(3);
    expect(r.alreadySentIndexes).toEqual([]);
    expect(r.writeTokens.map((t) => t.length)).toEqual([8, 8, 8]);
    expect(s.stateOf("a")).toBe("writing");
    expect(s.stats().slotsWriting).toBe(3);
    checkInvariants(s);
  });

  it("dedup pins a key that is still WRITING and reports its position", () => {
    const s = makeStore();
    s.alloc(one("r1", ["a", "b"]), 0);
    const r2 = s.alloc(one("r2", ["a", "b", "x"]), 0);
    expect(r2.alreadySentIndexes).toEqual([0, 1]);
    expect(r2.remoteIndexes).toHaveLength(1);
    const a = s.listEntries(0).find((e) => e.key === "a")!;
    expect(a.refcount).toBe(2);
    expect(a.pinnedBy.sort()).toEqual(["r1", "r2"]);
    checkInvariants(s);
  });

  it("a deduped WRITING key is not READY for its dependent until its writer commits", () => {
    const s = makeStore();
    s.alloc(one("w", ["a"]), 0);
    s.alloc(one("d", ["a", "b"]), 0);
    expect(commitWritten(s, "d", 1)).toMatchObject({ ready: 1, pending: 1, failed: 0 });
    expect(s.keyStates("d")!.map((k) => k.state)).toEqual(["writing", "ready"]);
    commitWritten(s, "w", 2);
    expect(s.keyStates("d")!.map((k) => k.state)).toEqual(["ready", "ready"]);
    checkInvariants(s);
  });

  it("a retried Alloc with the same (request, batch) returns the same answer and allocates nothing twice", () => {
    const s = makeStore();
    const first = s.alloc(one("r1", ["a", "b"]), 0);
    const before = s.stats();
    const again = s.alloc(one("r1", ["a", "b"]), 5);
    expect(again).toEqual(first);
    expect(s.stats()).toEqual(before);
    expect(codeOf(() => s.alloc(one("r1", ["a", "c"]), 6))).toBe("ALREADY_EXISTS");
    checkInvariants(s);
  });

  it("put never overwrites: a second request for a present key dedups instead of replacing it", () => {
    const s = makeStore();
    const w = s.alloc(one("w", ["k"]), 0);
    s.alloc(one("other", ["k"]), 0);
    const entries = s.listEntries(0).filter((e) => e.key === "k");
    expect(entries).toHaveLength(1);
    expect(entries[0]!.slot).toBe(w.remoteIndexes[0]);
    expect(entries[0]!.owner).toBe("w");
  });

  it("refuses bad input with INVALID_ARGUMENT and leaves the store untouched", () => {
    const s = makeStore();
    const before = s.stats();
    expect(codeOf(() => s.alloc({ ...one("r", ["a"]), sizes: [1, 2] }, 0))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => s.alloc(one("r", ["a"], 4096), 0))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => s.alloc(one("", ["a"]), 0))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => s.alloc(one("r", [""]), 0))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => s.alloc(one("r", []), 0))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => s.alloc(one("r", ["a", "a"]), 0))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => s.alloc(one("r", Array.from({ length: 65 }, (_, i) => `k${i}`)), 0))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => s.alloc(one("r", ["a"], 0), 0))).toBe("INVALID_ARGUMENT");
    expect(s.stats()).toEqual(before);
    checkInvariants(s);
  });
});

describe("KvStore pool full", () => {
  it("evicts unpinned READY entries least recently used first to make room", () => {
    const s = makeStore({ slots: 4 });
    s.alloc(one("a", ["k1", "k2"]), 0);
    commitWritten(s, "a", 1);
    s.release("a", 2);
    s.alloc(one("b", ["k3", "k4"]), 3);
    commitWritten(s, "b", 4);
    s.release("b", 5);
    s.alloc(one("touch", ["k1"]), 6); // k1 becomes most recently used (and pinned)
    s.release("touch", commitWritten(s, "touch", 7) && 8);
    s.alloc(one("c", ["n1", "n2"]), 9);
    expect(s.stateOf("k2")).toBeUndefined();
    expect(s.stateOf("k3")).toBeUndefined();
    expect(s.stateOf("k1")).toBe("ready");
    expect(s.stateOf("k4")).toBe("ready");
    expect(s.stats().evictions).toBe(2);
    checkInvariants(s);
  });

  it("spares the least recently used entry when this Alloc dedups it, evicting the next one instead", () => {
    const s = makeStore({ slots: 4 });
    s.alloc(one("a", ["k1", "k2"]), 0);
    commitWritten(s, "a", 1);
    s.release("a", 2); // k1, k2 unpinned (k1 first in the eviction order)
    s.alloc(one("b", ["k3"]), 3);
    commitWritten(s, "b", 4);
    s.release("b", 5); // 1 slot free
    s.alloc(one("c", ["k1", "n1", "n2"]), 6); // k1 deduped and pinned; 2 fresh need 1 eviction
    expect(s.stateOf("k1")).toBe("ready");
    expect(s.stateOf("k2")).toBeUndefined();
    expect(s.stateOf("k3")).toBe("ready");
    expect(s.stats().evictions).toBe(1);
    checkInvariants(s);
    // Released again, k1 is now the most recently used: k3 goes before it.
    commitWritten(s, "c", 7);
    s.release("c", 8);
    s.alloc(one("d", ["m1"]), 9);
    expect(s.stateOf("k3")).toBeUndefined();
    expect(s.stateOf("k1")).toBe("ready");
    checkInvariants(s);
  });

  it("refuses at once with RESOURCE_EXHAUSTED, evicting nothing and allocating nothing", () => {
    const s = makeStore({ slots: 4 });
    s.alloc(one("a", ["k1", "k2", "k3"]), 0);
    commitWritten(s, "a", 1);
    s.release("a", 2);
    s.alloc(one("pin", ["k1", "k2"]), 3); // k1, k2 pinned; k3 evictable, 1 free
    const before = s.stats();
    let err: unknown;
    try {
      s.alloc(one("big", ["x", "y", "z"]), 4);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KvbridgeError);
    expect((err as KvbridgeError).code).toBe("RESOURCE_EXHAUSTED");
    expect((err as KvbridgeError).message).toMatch(/pool full.*raise --pool-slots/);
    expect(s.stats()).toEqual(before);
    expect(s.hasRequest("big")).toBe(false);
    checkInvariants(s);
  });
});

describe("KvStore batched Alloc", () => {
  const batch = (requestId: string, keys: string[], batchSeq: number, totalChunks: number, isLastBatch: boolean) => ({
    requestId,
    keys,
    sizes: keys.map(() => 10),
    batchSeq,
    totalChunks,
    isLastBatch,
  });

  it("reserves the whole request up front so two big requests cannot deadlock", () => {
    const s = makeStore({ slots: 6 });
    s.alloc(batch("A", ["a0", "a1"], 0, 4, false), 0);
    expect(s.stats().slotsReserved).toBe(2);
    // B needs 4 but only 2 are unpromised: it is refused now instead of waiting on A forever.
    expect(codeOf(() => s.alloc(batch("B", ["b0", "b1"], 0, 4, false), 0))).toBe("RESOURCE_EXHAUSTED");
    s.alloc(batch("A", ["a2", "a3"], 1, 4, true), 1);
    expect(s.stats().slotsReserved).toBe(0);
    commitWritten(s, "A", 2);
    checkInvariants(s);
  });

  it("returns the unused reservation when later batches dedup or end early", () => {
    const s = makeStore({ slots: 8 });
    s.alloc(one("w", ["shared"]), 0);
    s.alloc(batch("A", ["a0"], 0, 4, false), 0);
    expect(s.stats().slotsReserved).toBe(3);
    const r = s.alloc(batch("A", ["shared", "a1"], 1, 4, true), 1);
    expect(r.alreadySentIndexes).toEqual([0]);
    expect(s.stats().slotsReserved).toBe(0);
    checkInvariants(s);
  });

  it("enforces batch order, the declared total and the last batch", () => {
    const s = makeStore();
    s.alloc(batch("A", ["a0"], 0, 2, false), 0);
    expect(codeOf(() => s.alloc(batch("A", ["a2"], 2, 2, false), 0))).toBe("FAILED_PRECONDITION");
    expect(codeOf(() => s.alloc(batch("A", ["a1", "a2"], 1, 2, true), 0))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => commitWritten(s, "A", 0))).toBe("FAILED_PRECONDITION");
    s.alloc(batch("A", ["a1"], 1, 2, true), 0);
    expect(codeOf(() => s.alloc(batch("A", ["a3"], 2, 2, true), 0))).toBe("FAILED_PRECONDITION");
    expect(codeOf(() => s.alloc(batch("Z", ["z"], 1, 2, true), 0))).toBe("NOT_FOUND");
    checkInvariants(s);
  });
});

describe("KvStore commit, abort, release", () => {
  it("a late call or frame for an ended request answers NOT_FOUND saying how it ended", () => {
    const s = makeStore({ slots: 4 });
    const res = s.alloc(one("cut", ["c1"]), 0);
    s.abort("cut", { kind: "connection_lost", detail: "reset by peer" }, 1);
    const late = (fn: () => unknown): KvbridgeError => {
      try {
        fn();
      } catch (e) {
        return e as KvbridgeError;
      }
      throw new Error("no error");
    };
    const commit = late(() => commitWritten(s, "cut", 2));
    expect(commit.code).toBe("NOT_FOUND");
    expect(commit.message).toMatch(/commit: request cut has ended \(data connection lost before Commit: reset by peer\)/);
    const frame = s.admitWrite("cut", res.remoteIndexes[0]!, 0, 10, res.writeTokens[0]!, 3);
    expect(frame).toMatchObject({ ok: false, code: "NOT_FOUND", message: expect.stringMatching(/has ended \(data connection lost before Commit/) });
    s.alloc(one("done", ["d1"]), 4);
    commitWritten(s, "done", 5);
    s.release("done", 6);
    expect(late(() => commitWritten(s, "done", 7)).message).toMatch(/has ended \(released after use\)/);
    // A never-seen id is still "unknown"; an ended id cannot be reused (see store-id-reuse).
    expect(late(() => commitWritten(s, "ghost", 8)).message).toMatch(/is unknown/);
    expect(late(() => s.alloc(one("cut", ["c2"]), 9)).details.reason).toBe("request_id_reused");
    checkInvariants(s);
  });

  it("commit is idempotent and unknown requests are NOT_FOUND", () => {
    const s = makeStore();
    s.alloc(one("r", ["a"]), 0);
    expect(commitWritten(s, "r", 1)).toMatchObject({ ready: 1, pending: 0, failed: 0 });
    expect(commitWritten(s, "r", 2)).toMatchObject({ ready: 1, pending: 0, failed: 0 });
    expect(codeOf(() => commitWritten(s, "nope", 0))).toBe("NOT_FOUND");
    expect(codeOf(() => s.abort("nope", { kind: "sender_abort" }, 0))).toBe("NOT_FOUND");
    expect(codeOf(() => s.release("nope", 0))).toBe("NOT_FOUND");
  });

  it("abort releases the request's WRITING slots (quarantined) and its dedup pins, and nothing else", () => {
    const s = makeStore();
    s.alloc(one("other", ["shared", "o1"]), 0);
    s.alloc(one("r", ["shared", "mine"]), 0);
    const res = s.abort("r", { kind: "sender_abort", detail: "client cancelled" }, 1);
    expect(res).toEqual({ slotsReleased: 1, pinsReleased: 2 });
    expect(s.stats().slotsQuarantined).toBe(1);
    expect(s.stateOf("mine")).toBeUndefined();
    const shared = s.listEntries(1).find((e) => e.key === "shared")!;
    expect(shared.pinnedBy).toEqual(["other"]);
    expect(s.keyStates("other")!.map((k) => k.state)).toEqual(["writing", "writing"]);
    checkInvariants(s);
  });

  it("dependents of an aborted writer see FAILED, and a new writer can take the key afresh", () => {
    const s = makeStore();
    s.alloc(one("w", ["a"]), 0);
    s.alloc(one("d", ["a"]), 0);
    s.abort("w", { kind: "connection_lost", detail: "died" }, 1);
    expect(s.keyStates("d")!.map((k) => k.state)).toEqual(["failed"]);
    expect(s.stateOf("a")).toBeUndefined();
    const r = s.alloc(one("w2", ["a"]), 2);
    expect(r.remoteIndexes).toHaveLength(1);
    expect(s.keyStates("d")!.map((k) => k.state)).toEqual(["failed"]);
    checkInvariants(s);
    s.release("d", commitWritten(s, "d", 3) && 4);
    checkInvariants(s);
  });

  it("remove before get: releasing one request keeps an entry another request still pins", () => {
    const s = makeStore();
    s.alloc(one("w", ["a"]), 0);
    commitWritten(s, "w", 1);
    s.alloc(one("reader", ["a"]), 2);
    s.release("w", 3);
    expect(s.readable("a")).toBeDefined();
    expect(s.listEntries(3).find((e) => e.key === "a")!.refcount).toBe(1);
    checkInvariants(s);
  });

  it("release keeps READY entries as an unpinned prefix cache and the pool returns to baseline", () => {
    const s = makeStore();
    s.alloc(one("r", ["a", "b"]), 0);
    commitWritten(s, "r", 1);
    s.release("r", 2);
    expect(s.stats().slotsReady).toBe(2);
    expect(s.listEntries(2).every((e) => e.refcount === 0)).toBe(true);
    expect(atBaseline(s)).toBe(true);
    expect(codeOf(() => s.release("r", 3))).toBe("NOT_FOUND");
  });

  it("release of an uncommitted request is refused: that is what Abort is for", () => {
    const s = makeStore();
    s.alloc(one("r", ["a"]), 0);
    expect(codeOf(() => s.release("r", 1))).toBe("FAILED_PRECONDITION");
  });
});

describe("KvStore leases, sweeper and quarantine", () => {
  it("sets the lease before the entry is visible, and the sweeper expires it", () => {
    const s = makeStore({ leaseMs: 100 });
    const r = s.alloc(one("r", ["a"]), 1000);
    expect(r.leaseExpiresAt).toBe(1100);
    expect(s.listEntries(1000)[0]!.leaseLeftMs).toBe(100);
    expect(s.sweep(1099).expired).toEqual([]);
    expect(s.sweep(1100).expired).toEqual(["r"]);
    expect(s.stats().leasesExpired).toBe(1);
    expect(s.stats().slotsQuarantined).toBe(1);
    checkInvariants(s);
  });

  it("a Commit that arrives after its lease ran out fails and releases, whether or not the sweeper ran", () => {
    const s = makeStore({ leaseMs: 100 });
    s.alloc(one("r", ["a"]), 0);
    expect(codeOf(() => commitWritten(s, "r", 100))).toBe("FAILED_PRECONDITION");
    expect(s.hasRequest("r")).toBe(false);
    expect(s.stateOf("a")).toBeUndefined();
    checkInvariants(s);
  });

  it("renew extends the lease; a renewed request survives a sweep it would have failed", () => {
    const s = makeStore({ leaseMs: 100 });
    s.alloc(one("r", ["a"]), 0);
    expect(s.renew("r", 90)).toBe(190);
    expect(s.sweep(150).expired).toEqual([]);
    commitWritten(s, "r", 160);
    checkInvariants(s);
  });

  it("quarantined slots are not reused before the grace period ends", () => {
    const s = makeStore({ slots: 1, quarantineMs: 500 });
    s.alloc(one("r", ["a"]), 0);
    s.abort("r", { kind: "admin" }, 10);
    expect(codeOf(() => s.alloc(one("r2", ["b"]), 20))).toBe("RESOURCE_EXHAUSTED");
    expect(s.sweep(509).quarantineReleased).toBe(0);
    expect(s.sweep(510).quarantineReleased).toBe(1);
    expect(s.alloc(one("r2", ["b"]), 511).remoteIndexes).toEqual([0]);
    checkInvariants(s);
  });

  it("a committed request that is never released gives its pins back when its hold expires", () => {
    const s = makeStore({ holdMs: 200 });
    s.alloc(one("r", ["a"]), 0);
    commitWritten(s, "r", 10);
    expect(s.sweep(209).holdsExpired).toEqual([]);
    expect(s.sweep(210).holdsExpired).toEqual(["r"]);
    expect(atBaseline(s)).toBe(true);
    checkInvariants(s);
  });
});

describe("KvStore data-plane admission", () => {
  it("admits only the owner's WRITING slot, with its token, within bounds", () => {
    const s = makeStore();
    const r = s.alloc(one("r", ["a"], 100), 0);
    s.alloc(one("q", ["b"], 100), 0);
    const slot = r.remoteIndexes[0]!;
    const tok = r.writeTokens[0]!;
    expect(s.admitWrite("r", slot, 0, 100, tok, 1)).toEqual({ ok: true, slot });
    expect(s.admitWrite("r", slot, 50, 51, tok, 1)).toMatchObject({ ok: false, code: "INVALID_ARGUMENT" });
    expect(s.admitWrite("r", slot, 0, 10, Buffer.alloc(8), 1)).toMatchObject({ ok: false, code: "PERMISSION_DENIED" });
    expect(s.admitWrite("q", slot, 0, 10, tok, 1)).toMatchObject({ ok: false, code: "PERMISSION_DENIED" });
    expect(s.admitWrite("zz", slot, 0, 10, tok, 1)).toMatchObject({ ok: false, code: "NOT_FOUND" });
    expect(s.admitWrite("r", 999, 0, 10, tok, 1)).toMatchObject({ ok: false, code: "INVALID_ARGUMENT" });
    commitWritten(s, "r", 2);
    expect(s.admitWrite("r", slot, 0, 10, tok, 3)).toMatchObject({ ok: false, code: "FAILED_PRECONDITION" });
  });

  it("refuses writes after the lease ran out", () => {
    const s = makeStore({ leaseMs: 100 });
    const r = s.alloc(one("r", ["a"]), 0);
    expect(s.admitWrite("r", r.remoteIndexes[0]!, 0, 1, r.writeTokens[0]!, 100)).toMatchObject({ ok: false, code: "FAILED_PRECONDITION" });
  });
});

describe("KvStore reads", () => {
  it("reading a missing key is a miss and creates nothing (no phantom entries)", () => {
    const s = makeStore();
    const before = s.stats();
    expect(s.stateOf("ghost")).toBeUndefined();
    expect(s.readable("ghost")).toBeUndefined();
    expect(s.keyStates("ghost-request")).toBeUndefined();
    expect(s.matchPrefix(["ghost", "x"])).toBe(0);
    expect(s.listEntries(0)).toEqual([]);
    expect(s.stats()).toEqual(before);
    checkInvariants(s);
  });

  it("matchPrefix counts the leading keys present", () => {
    const s = makeStore();
    s.alloc(one("r", ["a", "b", "d"]), 0);
    expect(s.matchPrefix(["a", "b", "c", "d"])).toBe(2);
  });

  it("evict refuses pinned and in-flight entries and frees unpinned READY ones", () => {
    const s = makeStore();
    s.alloc(one("r", ["a", "b"]), 0);
    expect(codeOf(() => s.evict("a"))).toBe("FAILED_PRECONDITION");
    commitWritten(s, "r", 1);
    expect(codeOf(() => s.evict("a"))).toBe("FAILED_PRECONDITION");
    s.release("r", 2);
    s.evict("a");
    expect(s.stateOf("a")).toBeUndefined();
    expect(codeOf(() => s.evict("a"))).toBe("NOT_FOUND");
    expect(s.evictUnpinned()).toBe(1);
    expect(s.stats().slotsFree).toBe(8);
    checkInvariants(s);
  });
});
