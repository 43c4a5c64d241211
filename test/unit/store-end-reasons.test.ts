// How requests end, as data: the store remembers an EndReason per ended request, FAILED entries carry
// theirs, late calls answer by reason kind; plus the queries metrics and health use instead of
// internals(): hasEvictable() and the byte counts a Commit returns.
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { describeEndReason, type EndReason } from "../../src/store/end-reason.js";
import { checkInvariants } from "../../src/store/invariants.js";
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

const ALL: EndReason[] = [
  { kind: "released" },
  { kind: "sender_abort" },
  { kind: "sender_abort", detail: "client went away" },
  { kind: "decode_incomplete" },
  { kind: "admin", detail: "10.0.0.1:4000: stuck" },
  { kind: "connection_lost", detail: "ECONNRESET" },
  { kind: "lease_expired" },
  { kind: "hold_expired" },
  { kind: "commit_unproven", detail: "chunk 0 (k): 10 of 100 bytes seen" },
];

describe("EndReason", () => {
  it("describeEndReason gives each kind its own words and keeps the detail", () => {
    const texts = ALL.map(describeEndReason);
    expect(new Set(texts).size).toBe(texts.length);
    expect(describeEndReason({ kind: "connection_lost", detail: "ECONNRESET" })).toContain("ECONNRESET");
    expect(describeEndReason({ kind: "lease_expired" })).toMatch(/^lease expired/);
  });

  it("a FAILED entry carries its writer and the EndReason that failed it", () => {
    const s = makeStore();
    s.alloc(one("w", ["a"]), 0);
    s.alloc(one("d", ["a"]), 0);
    s.abort("w", { kind: "connection_lost", detail: "reset" }, 1);
    const failed = [...s.internals().entries.values()].find((e) => e.key === "a")!;
    expect(failed.status).toEqual({ state: "failed", writer: "w", reason: { kind: "connection_lost", detail: "reset" } });
    checkInvariants(s);
  });

  it("a late call after an expired lease is FAILED_PRECONDITION with reason lease_expired; after any other end, NOT_FOUND naming it", () => {
    const s = makeStore({ leaseMs: 100 });
    s.alloc(one("exp", ["e"]), 0);
    expect(s.sweep(100).expired).toEqual(["exp"]);
    for (const call of [() => s.commit("exp", 101), () => s.renew("exp", 101)]) {
      const e = thrown(call);
      expect(e.code).toBe("FAILED_PRECONDITION");
      expect(e.details.reason).toBe("lease_expired");
      expect(e.message).toContain(describeEndReason({ kind: "lease_expired" }));
    }
    s.alloc(one("adm", ["x"]), 200);
    s.abort("adm", { kind: "admin", detail: "operator" }, 201);
    const e = thrown(() => s.commit("adm", 202));
    expect(e.code).toBe("NOT_FOUND");
    expect(e.message).toContain(describeEndReason({ kind: "admin", detail: "operator" }));
  });

  it("the lease-expired answer reads the same whichever call meets it first", () => {
    const msgs: string[] = [];
    for (const call of ["commit", "renew", "alloc", "sweep"] as const) {
      const s = makeStore({ leaseMs: 100 });
      s.alloc({ ...one("r", ["a"]), totalChunks: 2, isLastBatch: false }, 0);
      if (call === "sweep") s.sweep(100);
      const e = thrown(() => (call === "renew" ? s.renew("r", 100) : call === "alloc" || call === "sweep" ? s.alloc({ ...one("r", ["b"]), batchSeq: 1, totalChunks: 2 }, 100) : s.commit("r", 100)));
      expect(e.details.reason).toBe("lease_expired");
      msgs.push(e.message.replace(/^\w+: /, ""));
    }
    expect(new Set(msgs).size).toBe(1);
  });
});

describe("store queries for metrics and health", () => {
  it("hasEvictable is true exactly while some unpinned READY entry exists", () => {
    const s = makeStore();
    expect(s.hasEvictable()).toBe(false);
    s.alloc(one("r", ["a"]), 0);
    expect(s.hasEvictable()).toBe(false);
    commitWritten(s, "r", 1);
    expect(s.hasEvictable()).toBe(false); // pinned by its writer until released
    s.release("r", 2);
    expect(s.hasEvictable()).toBe(true);
    s.alloc(one("p", ["a"]), 3);
    expect(s.hasEvictable()).toBe(false); // pinned again
    s.release("p", commitWritten(s, "p", 4) && 5);
    s.evict("a");
    expect(s.hasEvictable()).toBe(false);
  });

  it("commit reports the bytes it made READY, those counted on the data plane, and the first Alloc time; a repeated Commit reports none", () => {
    const s = makeStore();
    s.alloc(one("shared", ["s"], 50), 0);
    s.alloc({ requestId: "r", keys: ["s", "a", "b"], sizes: [50, 100, 30], batchSeq: 0, totalChunks: 0, isLastBatch: true }, 7);
    const mine = s.keyStates("r")!;
    const a = mine[1]!;
    const tok = s.internals().entries.get(s.internals().requests.get("r")!.holds.get("a")!.entryId)!.status;
    expect(tok.state).toBe("writing");
    const token = tok.state === "writing" ? tok.token : Buffer.alloc(0);
    expect(s.admitWrite("r", a.slot!, 0, 100, token, 8)).toMatchObject({ ok: true });
    s.recordWritten("r", a.slot!, 0, 100);
    const first = s.commit("r", 9, (c) => c.key === "b");
    // "s" is deduped (its writer has not committed): only a and b are this commit's.
    expect(first).toMatchObject({ ready: 2, pending: 1, failed: 0, bytesCommitted: 130, bytesCounted: 100, startedAt: 7 });
    expect(s.commit("r", 10)).toMatchObject({ bytesCommitted: 0, bytesCounted: 0, startedAt: 7 });
    checkInvariants(s);
  });
});
