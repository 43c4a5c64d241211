// Commit only what arrived: an entry becomes READY only when its owner's admitted writes covered
// every byte (TCP) or the Commit's caller proved the slot's bytes (one-sided UCX puts); anything
// else fails the Commit (commit_unproven), ends the request and quarantines its slots.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { checkInvariants } from "../../src/store/invariants.js";
import type { ChunkToVerify, KvStore } from "../../src/store/kv-store.js";
import { MAX_WRITE_PIECES, WriteCoverage } from "../../src/store/write-coverage.js";
import { commitWritten, makeStore, writeOwned } from "../support/store-fixture.js";

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

/** Admits and records one write of `requestId` to its allocation `i` of `res`. */
function write(s: KvStore, requestId: string, res: { remoteIndexes: number[]; writeTokens: Buffer[] }, i: number, offset: number, length: number, now = 1): void {
  const adm = s.admitWrite(requestId, res.remoteIndexes[i]!, offset, length, res.writeTokens[i]!, now);
  expect(adm.ok).toBe(true);
  s.recordWritten(requestId, res.remoteIndexes[i]!, offset, length);
}

function expectUnproven(s: KvStore, requestId: string, message: RegExp, now = 2): void {
  const e = thrown(() => s.commit(requestId, now));
  expect(e.code).toBe("FAILED_PRECONDITION");
  expect(e.details.reason).toBe("commit_unproven");
  expect(e.message).toMatch(message);
}

describe("Commit only what arrived", () => {
  it("a Commit with nothing written fails commit_unproven, makes nothing READY, ends the request and quarantines its slots", () => {
    const s = makeStore();
    s.alloc(one("hostile", ["k0", "k1"]), 0);
    expectUnproven(s, "hostile", /chunk 0 \(key k0, slot \d+\): 0 of 100 bytes seen.*\(and 1 more chunk\(s\) short\)/);
    expect(s.stateOf("k0")).toBeUndefined();
    expect(s.stateOf("k1")).toBeUndefined();
    expect(s.hasRequest("hostile")).toBe(false);
    expect(s.stats()).toMatchObject({ slotsReady: 0, slotsQuarantined: 2, commitsUnproven: 1, requestsCommitted: 0, bytesCommitted: 0 });
    // Asked again, the same answer, not NOT_FOUND and never a success; a late frame hears it too.
    expectUnproven(s, "hostile", /0 of 100 bytes seen/, 3);
    expect(s.admitWrite("hostile", 0, 0, 10, Buffer.alloc(8), 4)).toMatchObject({ ok: false, code: "FAILED_PRECONDITION", message: expect.stringMatching(/not every byte was proven written/) });
    checkInvariants(s);
  });

  it("a partial write then Commit fails naming the short chunk and the bytes seen", () => {
    const s = makeStore();
    const r = s.alloc(one("p", ["a", "b"]), 0);
    write(s, "p", r, 0, 0, 100);
    write(s, "p", r, 1, 0, 60);
    expectUnproven(s, "p", /chunk 1 \(key b, slot \d+\): 60 of 100 bytes seen/);
    // All or nothing: the fully written chunk is not READY either.
    expect(s.stateOf("a")).toBeUndefined();
    checkInvariants(s);
  });

  it("frames rewriting the same range cannot fake a complete chunk: coverage counts each byte once", () => {
    const s = makeStore();
    const r = s.alloc(one("dup", ["a"]), 0);
    write(s, "dup", r, 0, 0, 50);
    write(s, "dup", r, 0, 0, 50);
    write(s, "dup", r, 0, 10, 40);
    expect(s.internals().entries.get(1)!.bytesWritten).toBe(50);
    expectUnproven(s, "dup", /50 of 100 bytes seen/);
  });

  it("pieces arriving out of order and overlapping count once they cover every byte", () => {
    const s = makeStore();
    const r = s.alloc(one("ooo", ["a"]), 0);
    write(s, "ooo", r, 0, 70, 30);
    write(s, "ooo", r, 0, 0, 40);
    write(s, "ooo", r, 0, 30, 45);
    expect(s.commit("ooo", 2)).toMatchObject({ ready: 1, bytesCommitted: 100, bytesCounted: 100 });
    expect(s.internals().live.get("a")!.status).toMatchObject({ state: "ready", writer: "ooo", proof: "counted" });
    checkInvariants(s);
  });

  it("only the slot's owner's writes count: a write recorded under another request id adds nothing", () => {
    const s = makeStore();
    const r = s.alloc(one("owner", ["a"]), 0);
    s.alloc(one("other", ["b"]), 0);
    s.recordWritten("other", r.remoteIndexes[0]!, 0, 100);
    s.recordWritten("ghost", r.remoteIndexes[0]!, 0, 100);
    expectUnproven(s, "owner", /0 of 100 bytes seen/);
  });

  it("the verifier is asked only about chunks not fully counted, with key, slot, size and position; its proof makes them READY", () => {
    const s = makeStore();
    s.alloc(one("shared", ["s"]), 0);
    const r = s.alloc({ requestId: "u", keys: ["s", "a", "b", "c"], sizes: [100, 10, 20, 30], batchSeq: 0, totalChunks: 0, isLastBatch: true }, 0);
    write(s, "u", r, 0, 0, 10); // "a" counted
    write(s, "u", r, 1, 0, 5); // "b" partly seen
    const asked: ChunkToVerify[] = [];
    const res = s.commit("u", 2, (c) => {
      asked.push(c);
      return true;
    });
    expect(asked).toEqual([
      { key: "b", slot: r.remoteIndexes[1], size: 20, index: 2 },
      { key: "c", slot: r.remoteIndexes[2], size: 30, index: 3 },
    ]);
    expect(res).toMatchObject({ ready: 3, pending: 1, bytesCommitted: 60, bytesCounted: 15 });
    expect(s.internals().live.get("c")!.status).toMatchObject({ state: "ready", proof: "verified", writer: "u" });
    checkInvariants(s);
  });

  it("a verifier that refuses one chunk fails the whole Commit; the dependents of its chunks see FAILED", () => {
    const s = makeStore();
    s.alloc(one("w", ["a", "b"]), 0);
    s.alloc(one("d", ["a"]), 0);
    const e = thrown(() => s.commit("w", 2, (c) => c.key === "a"));
    expect(e.details.reason).toBe("commit_unproven");
    expect(e.message).toMatch(/chunk 1 \(key b/);
    expect(s.keyStates("d")!.map((k) => k.state)).toEqual(["failed"]);
    expect(s.internals().entries.get(1)!.status).toMatchObject({ state: "failed", writer: "w", reason: { kind: "commit_unproven" } });
    checkInvariants(s);
  });

  it("a write that would split a slot into more than MAX_WRITE_PIECES separate ranges is refused at admission", () => {
    const size = 2 * MAX_WRITE_PIECES + 2;
    const s = makeStore({ slotBytes: size });
    const r = s.alloc(one("frag", ["a"], size), 0);
    for (let i = 0; i < MAX_WRITE_PIECES; i++) write(s, "frag", r, 0, 2 * i, 1);
    const refused = s.admitWrite("frag", r.remoteIndexes[0]!, 2 * MAX_WRITE_PIECES, 1, r.writeTokens[0]!, 1);
    expect(refused).toMatchObject({ ok: false, code: "INVALID_ARGUMENT", message: expect.stringMatching(/separate pieces/) });
    // Filling a gap merges pieces and is still admitted; so is the whole range.
    expect(s.admitWrite("frag", r.remoteIndexes[0]!, 1, 1, r.writeTokens[0]!, 1).ok).toBe(true);
    write(s, "frag", r, 0, 0, size);
    expect(s.commit("frag", 2)).toMatchObject({ ready: 1 });
    checkInvariants(s);
  });

  it("the honest path still works: write everything, Commit, Release", () => {
    const s = makeStore();
    s.alloc(one("ok", ["a", "b"]), 0);
    expect(writeOwned(s, "ok", 1)).toBe(2);
    expect(s.commit("ok", 2)).toMatchObject({ ready: 2, pending: 0, failed: 0, bytesCommitted: 200, bytesCounted: 200 });
    s.release("ok", 3);
    // A dedup of the READY keys plus a fresh one: only the fresh one needs writing.
    s.alloc(one("next", ["a", "b", "c"]), 4);
    expect(commitWritten(s, "next", 5)).toMatchObject({ ready: 3, bytesCommitted: 100, bytesCounted: 100 });
    checkInvariants(s);
  });
});

describe("WriteCoverage", () => {
  it("agrees with a byte map on covered bytes and pieces for any sequence of writes", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }).chain((size) =>
          fc.tuple(fc.constant(size), fc.array(fc.tuple(fc.integer({ min: 0, max: size - 1 }), fc.integer({ min: 0, max: size })), { maxLength: 30 })),
        ),
        ([size, writes]) => {
          const cov = new WriteCoverage();
          const bytes = new Uint8Array(size);
          for (const [offset, len] of writes) {
            const length = Math.min(len, size - offset);
            const predicted = cov.piecesAfter(offset, length);
            cov.add(offset, length);
            bytes.fill(1, offset, offset + length);
            expect(cov.pieces).toBe(predicted);
            expect(cov.covered).toBe(bytes.reduce((a, b) => a + b, 0));
            let runs = 0;
            for (let i = 0; i < size; i++) if (bytes[i] && (i === 0 || !bytes[i - 1])) runs++;
            expect(cov.pieces).toBe(runs);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
