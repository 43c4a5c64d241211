// Request ids cannot be reused while the store remembers how their request ended: a late Commit,
// Renew or frame of a first incarnation could otherwise act on a second one, unwritten.
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { checkInvariants } from "../../src/store/invariants.js";
import type { KvStore } from "../../src/store/kv-store.js";
import { commitWritten, makeStore } from "../support/store-fixture.js";

const one = (requestId: string, keys: string[], size = 100) => ({ requestId, keys, sizes: keys.map(() => size), batchSeq: 0, totalChunks: 0, isLastBatch: true });

function thrown(fn: () => unknown): KvbridgeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof KvbridgeError) return e;
    throw e;
  }
  throw new Error("expected a KvbridgeError");
}

const endings: Array<[string, (s: KvStore) => void]> = [
  ["aborted by its sender", (s) => s.abort("r", { kind: "sender_abort" }, 10)],
  ["aborted by an admin", (s) => s.abort("r", { kind: "admin", detail: "op" }, 10)],
  ["its data connection lost", (s) => s.abort("r", { kind: "connection_lost" }, 10)],
  ["released", (s) => s.release("r", commitWritten(s, "r", 5) && 10)],
  ["its hold expired", (s) => (commitWritten(s, "r", 5), s.sweep(5 + 10_000))],
  ["its lease expired", (s) => s.sweep(1_000)],
  ["its Commit unproven", (s) => thrown(() => s.commit("r", 5))],
];

describe("request id reuse", () => {
  for (const [how, end] of endings) {
    it(`an Alloc reusing the id of a request that ended (${how}) is refused with request_id_reused and changes nothing`, () => {
      const s = makeStore();
      s.alloc(one("r", ["a"]), 0);
      end(s);
      expect(s.hasRequest("r")).toBe(false);
      const before = s.stats();
      const e = thrown(() => s.alloc(one("r", ["b"]), 20_000));
      expect(e.code).toBe("ALREADY_EXISTS");
      expect(e.details.reason).toBe("request_id_reused");
      expect(e.message).toMatch(/use a new request id/);
      expect(s.stats()).toEqual(before);
      expect(s.stateOf("b")).toBeUndefined();
      checkInvariants(s);
    });
  }

  it("a late Commit of a first incarnation can never commit a second: the second is never created", () => {
    const s = makeStore({ leaseMs: 100 });
    s.alloc(one("r", ["k"]), 0);
    s.sweep(100); // the first incarnation expires unwritten
    expect(thrown(() => s.alloc(one("r", ["k"]), 101)).details.reason).toBe("request_id_reused");
    // Its late Commit still hears that its lease expired, and nothing is READY.
    expect(thrown(() => s.commit("r", 102)).details.reason).toBe("lease_expired");
    expect(s.stateOf("k")).toBeUndefined();
    checkInvariants(s);
  });

  it("a retried batch 0 of a live request still gets its first answer", () => {
    const s = makeStore();
    const first = s.alloc(one("r", ["a", "b"]), 0);
    expect(s.alloc(one("r", ["a", "b"]), 1)).toEqual(first);
  });

  it("the memory of ended ids is bounded: an id forgotten after 2 × maxRequests later endings may be used again", () => {
    const s = makeStore({ maxRequests: 2, slots: 8 });
    s.alloc(one("old", ["o"]), 0);
    s.abort("old", { kind: "sender_abort" }, 1);
    for (let i = 0; i < 4; i++) {
      s.alloc(one(`n${i}`, [`k${i}`]), 2);
      s.abort(`n${i}`, { kind: "sender_abort" }, 3);
    }
    expect(thrown(() => s.alloc(one("n0", ["x"]), 4)).details.reason).toBe("request_id_reused");
    expect(s.alloc(one("old", ["o2"]), 4).remoteIndexes).toHaveLength(1);
    checkInvariants(s);
  });
});

describe("late batches of ended requests", () => {
  it("a later batch of an aborted request is NOT_FOUND saying how it ended (not an id reuse); of an expired one, lease_expired", () => {
    const s = makeStore({ leaseMs: 100 });
    const batch = (id: string, seq: number) => ({ requestId: id, keys: [`${id}-${seq}`], sizes: [10], batchSeq: seq, totalChunks: 2, isLastBatch: seq === 1 });
    s.alloc(batch("ab", 0), 0);
    s.abort("ab", { kind: "connection_lost", detail: "reset" }, 1);
    const e = thrown(() => s.alloc(batch("ab", 1), 2));
    expect(e.code).toBe("NOT_FOUND");
    expect(e.message).toMatch(/has ended \(data connection lost before Commit: reset\)/);
    s.alloc(batch("ex", 0), 0);
    s.sweep(100);
    expect(thrown(() => s.alloc(batch("ex", 1), 101)).details.reason).toBe("lease_expired");
  });
});
