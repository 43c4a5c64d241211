// KvReceiver as the store's boundary, over a real heap pool and an injected clock: the events it
// publishes (committed once per request with its bytes by transport and its transfer time, aborted
// with the EndReason, expired, ended however a request ends), the queries health asks (canAdmitOne
// with a full pool of WRITING entries versus one of evictable prefix cache), and metrics counted from
// those events alone.
import { afterEach, describe, expect, it } from "vitest";
import type { EndReason } from "../../src/store/end-reason.js";
import { allocateHeapPool } from "../../src/memory/pool-memory.js";
import { silentLogger } from "../../src/observability/logger.js";
import { nodeMetrics, Registry } from "../../src/observability/metrics.js";
import { countReceiverEvents } from "../../src/observability/metrics-receiver.js";
import { KvReceiver, type ReceiverEventMap } from "../../src/transfer/receiver.js";

const SLOT = 1024;

interface Fixture {
  rx: KvReceiver;
  clock: { now: number };
  seen: Array<{ event: keyof ReceiverEventMap; requestId: string; detail?: unknown }>;
}

const open: KvReceiver[] = [];
afterEach(() => {
  for (const rx of open.splice(0)) rx.close();
});

function fixture(slots = 4, leaseMs = 1_000): Fixture {
  const clock = { now: 1_000_000 };
  const rx = new KvReceiver({ memory: allocateHeapPool({ slots, slotBytes: SLOT }), leaseMs, quarantineMs: 0, holdMs: 5_000, fingerprint: "", nodeId: "rx", clock: () => clock.now, logger: silentLogger() });
  open.push(rx);
  const seen: Fixture["seen"] = [];
  rx.events.on("committed", (e) => seen.push({ event: "committed", requestId: e.requestId, detail: { bytes: e.bytes, viaTcpBytes: e.viaTcpBytes, seconds: e.seconds } }));
  rx.events.on("aborted", (e) => seen.push({ event: "aborted", requestId: e.requestId, detail: e.reason }));
  rx.events.on("expired", (e) => seen.push({ event: "expired", requestId: e.requestId }));
  rx.events.on("ended", (e) => seen.push({ event: "ended", requestId: e.requestId }));
  return { rx, clock, seen };
}

/** Allocates fresh keys and writes every byte through the TCP write gate, as a data connection would. */
function allocAndWrite(rx: KvReceiver, requestId: string, keys: string[], sizes: number[]): void {
  const a = rx.alloc({ requestId, keys, sizes, batchSeq: 0, totalChunks: 0, isLastBatch: true });
  if (a.alreadySentIndexes.length > 0) throw new Error("allocAndWrite takes fresh keys only");
  a.remoteIndexes.forEach((slot, i) => {
    const admitted = rx.admit(requestId, slot, 0, sizes[i]!, a.writeTokens[i]!);
    if (!admitted.ok) throw new Error(admitted.message);
    admitted.target.fill(i + 1);
    rx.written(requestId, slot, sizes[i]!, 0);
  });
}

describe("KvReceiver events", () => {
  it("publishes committed once per request, with its bytes (all over TCP here) and the time since its first Alloc", () => {
    const { rx, clock, seen } = fixture();
    allocAndWrite(rx, "r1", ["k1", "k2"], [100, 300]);
    clock.now += 250;
    rx.commit("r1");
    rx.commit("r1"); // a retried Commit publishes nothing more
    expect(seen).toEqual([{ event: "committed", requestId: "r1", detail: { bytes: 400, viaTcpBytes: 400, seconds: 0.25 } }]);
    // A request whose every chunk was deduped commits no bytes, and says so.
    rx.alloc({ requestId: "r2", keys: ["k1"], sizes: [100], batchSeq: 0, totalChunks: 0, isLastBatch: true });
    rx.commit("r2");
    expect(seen.at(-1)).toEqual({ event: "committed", requestId: "r2", detail: { bytes: 0, viaTcpBytes: 0, seconds: 0 } });
  });

  it("publishes aborted with its EndReason and ended, for every way a request leaves: abort, release, lease expiry, hold expiry, an unproven Commit", () => {
    const { rx, clock, seen } = fixture(8, 1_000);
    const reason: EndReason = { kind: "admin", detail: "operator" };
    rx.alloc({ requestId: "a", keys: ["a0"], sizes: [10], batchSeq: 0, totalChunks: 0, isLastBatch: true });
    rx.abort("a", reason);
    expect(seen.splice(0)).toEqual([
      { event: "aborted", requestId: "a", detail: reason },
      { event: "ended", requestId: "a" },
    ]);

    allocAndWrite(rx, "b", ["b0"], [10]);
    rx.commit("b");
    rx.release("b");
    expect(seen.splice(0).map((e) => `${e.event} ${e.requestId}`)).toEqual(["committed b", "ended b"]);

    rx.alloc({ requestId: "c", keys: ["c0"], sizes: [10], batchSeq: 0, totalChunks: 0, isLastBatch: true });
    allocAndWrite(rx, "d", ["d0"], [10]);
    rx.commit("d");
    seen.splice(0);
    clock.now += 1_001;
    rx.sweepNow();
    expect(seen.splice(0)).toEqual([
      { event: "expired", requestId: "c" },
      { event: "ended", requestId: "c" },
    ]);
    clock.now += 5_000;
    rx.sweepNow();
    expect(seen.splice(0)).toEqual([{ event: "ended", requestId: "d" }]);

    // Nothing written: a TCP-only receiver cannot prove the bytes, the Commit fails and the request ends.
    rx.alloc({ requestId: "e", keys: ["e0"], sizes: [10], batchSeq: 0, totalChunks: 0, isLastBatch: true });
    expect(() => rx.commit("e")).toThrow(expect.objectContaining({ code: "FAILED_PRECONDITION" }));
    expect(seen.splice(0)).toEqual([{ event: "ended", requestId: "e" }]);
    expect(rx.hasRequest("e")).toBe(false);
    expect(rx.stats().activeRequests).toBe(0);
  });
});

describe("KvReceiver queries", () => {
  it("canAdmitOne: false while every slot is WRITING, true once they are READY and unpinned (evictable prefix cache)", () => {
    const { rx } = fixture(2);
    expect(rx.canAdmitOne()).toBe(true);
    allocAndWrite(rx, "full", ["f0", "f1"], [10, 10]);
    expect(rx.canAdmitOne()).toBe(false);
    rx.commit("full");
    expect(rx.canAdmitOne()).toBe(false); // READY but still pinned by its request
    rx.release("full");
    expect(rx.stats().slotsFree).toBe(0);
    expect(rx.canAdmitOne()).toBe(true);
    expect(rx.matchPrefix(["f0", "f1", "nope"])).toBe(2);
    rx.checkInvariants();
  });

  it("canAdmitOne: slots reserved for a batched request's later batches are not room", () => {
    const { rx } = fixture(3);
    rx.alloc({ requestId: "batched", keys: ["b0"], sizes: [10], batchSeq: 0, totalChunks: 3, isLastBatch: false });
    expect(rx.stats()).toMatchObject({ slotsFree: 2, slotsReserved: 2 });
    expect(rx.canAdmitOne()).toBe(false);
  });
});

describe("receiver metrics from events", () => {
  it("count transfer bytes and seconds at each first Commit and aborts by end-reason kind, and stop when detached", async () => {
    const { rx, clock } = fixture(8);
    const m = nodeMetrics(new Registry());
    const detach = countReceiverEvents(rx, m);
    allocAndWrite(rx, "t1", ["x0", "x1"], [100, 200]);
    clock.now += 40;
    rx.commit("t1");
    rx.commit("t1");
    rx.alloc({ requestId: "t2", keys: ["x0"], sizes: [100], batchSeq: 0, totalChunks: 0, isLastBatch: true });
    rx.commit("t2"); // all deduped: nothing moved, nothing counted
    rx.alloc({ requestId: "t3", keys: ["y0"], sizes: [10], batchSeq: 0, totalChunks: 0, isLastBatch: true });
    rx.abort("t3", { kind: "sender_abort", detail: "gave up" });
    rx.alloc({ requestId: "t4", keys: ["y1"], sizes: [10], batchSeq: 0, totalChunks: 0, isLastBatch: true });
    rx.connectionLost(new Set(["t4"]), "ECONNRESET");
    const text = await m.registry.metrics();
    const sample = (series: string): number | undefined => {
      const line = text.split("\n").find((l) => l.startsWith(series + " "));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(sample('kvbridge_transfer_bytes_total{transport="tcp",direction="received"}')).toBe(300);
    expect(text).not.toContain('transport="ucx"');
    expect(sample('kvbridge_transfer_seconds_count{transport="tcp",direction="received"}')).toBe(1);
    expect(sample('kvbridge_transfer_seconds_sum{transport="tcp",direction="received"}')).toBeCloseTo(0.04);
    expect(sample('kvbridge_aborts_total{reason="sender_abort"}')).toBe(1);
    expect(sample('kvbridge_aborts_total{reason="connection_lost"}')).toBe(1);
    detach();
    rx.alloc({ requestId: "t5", keys: ["y2"], sizes: [10], batchSeq: 0, totalChunks: 0, isLastBatch: true });
    rx.abort("t5", { kind: "sender_abort" });
    expect(await m.registry.metrics()).toContain('kvbridge_aborts_total{reason="sender_abort"} 1\n');
  });
});
