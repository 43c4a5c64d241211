// The data-plane commit (a TCP COMMIT frame) racing what can end a request, explored with fast-check's
// scheduler over the real KvReceiver, driven through the calls its TCP data plane makes: admit and
// written per frame, commitOnDataPlane for the COMMIT frame, connectionLost when the connection is torn,
// abort (the sender's or an admin's), and lease expiry (the sweeper on a manual clock). Each request
// has one outcome: its commit is answered COMMIT_ACK and every chunk it wrote is READY with its bytes,
// or it ends (expired, aborted, torn, unproven) and none of its chunks becomes READY; never half.
// After every step: the DESIGN.md invariants (checkInvariants) and the data-level ones: each READY
// slot holds exactly its committed writer's bytes.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { allocateHeapPool } from "../../src/memory/pool-memory.js";
import { KvReceiver } from "../../src/transfer/receiver.js";
import { manualClock } from "../support/store-fixture.js";

type Racer = "lease" | "abort" | "tear" | "none";
interface Spec {
  chunks: number;
  /** Leading chunks shared with every other request (dedup, possibly of a WRITING key). */
  shared: number;
  /** One chunk is written only in part: its commit must be refused (commit_unproven). */
  short: boolean;
  racer: Racer;
  /** Scheduler turns the racer lets pass first, so it strikes anywhere in the request's life. */
  delay: number;
}

const SIZE = 32;
const SHARED = ["s0", "s1"];

const specArb: fc.Arbitrary<Spec> = fc.record({
  chunks: fc.integer({ min: 1, max: 3 }),
  shared: fc.integer({ min: 0, max: 2 }),
  short: fc.boolean(),
  racer: fc.constantFrom<Racer>("lease", "abort", "tear", "none"),
  delay: fc.nat(8),
});

/** The byte request `id` writes at `offset` of chunk `key`: tells every writer's bytes apart. */
function byteOf(id: string, key: string, offset: number): number {
  let h = offset * 31;
  for (const c of `${id}/${key}`) h = (h * 33 + c.charCodeAt(0)) & 0xff;
  return h;
}

/** What the exploration saw, so the test can show every race was reached. */
const seen = { committed: 0, refusedAfterEnd: 0, unproven: 0, expiredFirst: 0, abortedFirst: 0, tornFirst: 0, tornAfterCommit: 0 };

async function scenario(s: fc.Scheduler, specs: Spec[], ticks: number[]): Promise<void> {
  const clock = manualClock(0);
  const memory = allocateHeapPool({ slots: 10, slotBytes: SIZE });
  // Lease and quarantine in manual-clock ms; their size keeps the receiver's own timer (a quarter of
  // them, in real ms) from firing during a run.
  const rx = new KvReceiver({ memory, leaseMs: 4_000, quarantineMs: 4_000, fingerprint: "", nodeId: "race", clock: () => clock.now });
  /** Requests whose data-plane commit was answered COMMIT_ACK (the sender's view). */
  const acked = new Set<string>();
  /** Who last landed bytes in each slot, and for which key. */
  const landed = new Map<number, { id: string; key: string }>();
  /** Requests that had a frame admitted (what a torn connection reports). */
  const wrote = new Set<string>();
  const check = (): void => {
    rx.checkInvariants();
    for (const e of rx.listEntries({ state: "ready" })) {
      const w = e.slot === null ? undefined : landed.get(e.slot);
      if (!w || w.key !== e.key || !acked.has(w.id)) throw new Error(`READY key ${e.key} (slot ${e.slot}) holds bytes of ${JSON.stringify(w)}: not an acknowledged commit's`);
      const view = memory.slotView(e.slot!, e.size);
      for (let i = 0; i < e.size; i++) {
        if (view[i] !== byteOf(w.id, e.key, i)) throw new Error(`READY key ${e.key} byte ${i} is not its committed writer's (${w.id})`);
      }
    }
  };
  const step = async <T>(label: string, fn: () => T): Promise<T> => {
    await s.schedule(Promise.resolve(label));
    const out = fn();
    check();
    return out;
  };

  const actor = async (id: string, spec: Spec): Promise<void> => {
    const keys = [...SHARED.slice(0, spec.shared), ...Array.from({ length: spec.chunks }, (_, i) => `${id}-k${i}`)];
    let res;
    try {
      res = await step(`${id} alloc`, () => rx.alloc({ requestId: id, keys, sizes: keys.map(() => SIZE), batchSeq: 0, totalChunks: 0, isLastBatch: true }));
    } catch {
      return; // pool full: nothing held
    }
    const fresh = keys.filter((_, i) => !res.alreadySentIndexes.includes(i));
    for (const [i, key] of fresh.entries()) {
      const slot = res.remoteIndexes[i]!;
      const length = spec.short && i === fresh.length - 1 ? SIZE / 2 : SIZE;
      // One frame per chunk: admitted (header), then its payload lands and is counted.
      const target = await step(`${id} admit ${key}`, () => rx.admit(id, slot, 0, length, res.writeTokens[i]!));
      if (!target.ok) break; // its allocation ended: the frame is NACKed, the sender stops
      await step(`${id} land ${key}`, () => {
        // Readmitted right before the bytes land, as the frame reader does before every read.
        const again = rx.admit(id, slot, 0, length, res.writeTokens[i]!);
        if (!again.ok) return;
        wrote.add(id);
        for (let b = 0; b < length; b++) again.target[b] = byteOf(id, key, b);
        landed.set(slot, { id, key });
        rx.written(id, slot, length, 0);
      });
    }
    await step(`${id} COMMIT`, () => {
      const before = rx.requestPhase(id);
      const verdict = rx.commitOnDataPlane(id, new Map());
      if (verdict.ok) {
        acked.add(id);
        seen.committed++;
        // All or nothing: every key it holds is READY now, or still being written by another request.
        const states = rx.keyStates(id).keys;
        for (const k of states) if (fresh.includes(k.key) && k.state !== "ready") throw new Error(`committed ${id} left its own chunk ${k.key} ${k.state}`);
        expect(verdict.result.ready + verdict.result.pending + verdict.result.failed).toBe(keys.length);
      } else {
        // Refused: the request is over, and nothing it wrote is READY.
        if (rx.hasRequest(id)) throw new Error(`refused commit of ${id} (${verdict.code} ${verdict.reason ?? ""}) left it alive`);
        if (before === undefined) seen.refusedAfterEnd++;
        if (verdict.reason === "commit_unproven") seen.unproven++;
      }
    });
    // The decode node consumes it.
    if (acked.has(id)) await step(`${id} release`, () => rx.requestPhase(id) === "committed" && rx.release(id));
  };

  const racer = async (id: string, spec: Spec): Promise<void> => {
    for (let i = 0; i < spec.delay; i++) await step(`${id} racer waits`, () => undefined);
    await step(`${id} ${spec.racer}`, () => {
      const phase = rx.requestPhase(id);
      switch (spec.racer) {
        case "abort":
          if (phase === undefined) return;
          rx.abort(id, { kind: "sender_abort", detail: "race" });
          if (phase === "allocating" && !acked.has(id)) seen.abortedFirst++;
          return;
        case "tear":
          // The data plane reports only requests with a frame admitted on the torn connection.
          if (!wrote.has(id)) return;
          rx.connectionLost(new Set([id]), "connection torn");
          if (phase === "allocating") seen.tornFirst++;
          else if (phase === "committed") seen.tornAfterCommit++;
          // A tear never ends a committed request.
          if (phase === "committed" && rx.requestPhase(id) !== "committed") throw new Error(`tear ended committed ${id}`);
          return;
        case "lease": {
          clock.advance(4_001);
          rx.sweepNow();
          if (phase === "allocating" && !rx.hasRequest(id)) seen.expiredFirst++;
          return;
        }
        case "none":
          return;
      }
    });
  };

  const sweeper = async (): Promise<void> => {
    for (const t of ticks) {
      await step(`tick +${t}`, () => {
        clock.advance(t);
        rx.sweepNow();
      });
    }
  };

  await s.waitFor(Promise.all([...specs.map((sp, i) => actor(`r${i}`, sp)), ...specs.map((sp, i) => racer(`r${i}`, sp)), sweeper()]));
  // Whatever happened, time passing returns the pool to its baseline.
  clock.advance(1_000_000);
  rx.sweepNow();
  clock.advance(5_000);
  rx.sweepNow();
  check();
  const st = rx.stats();
  expect(st.activeRequests).toBe(0);
  expect(st.slotsWriting + st.slotsReserved + st.slotsQuarantined).toBe(0);
  rx.close();
  memory.close();
}

describe("data-plane commit interleavings (fast-check scheduler)", () => {
  // 800 schedules of 1-4 requests, each with a COMMIT frame racing its lease's expiry, an abort or a
  // torn connection, over shared keys in a 10-slot pool.
  it("a COMMIT frame racing the lease, an abort or a torn connection has one outcome: committed whole or ended with nothing READY", async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(specArb, { minLength: 1, maxLength: 4 }), fc.array(fc.integer({ min: 1, max: 3_000 }), { maxLength: 3 }), async (s, specs, ticks) => {
        await scenario(s, specs, ticks);
      }),
      { numRuns: 800 },
    );
    // Every race was reached: each ending beat a COMMIT, a COMMIT beat a tear, commits were refused short.
    for (const [what, n] of Object.entries(seen)) expect(n, what).toBeGreaterThan(0);
  });
});
