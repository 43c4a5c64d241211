// The receiver store at scale: the cost of one request's Alloc + Commit + Release when the pool is
// full of cached (unpinned READY) entries, so every Alloc evicts, and of a sweep that ends a burst of
// quarantined slots. Each is measured on a large pool and on a small one in the same run: a ratio
// near 1 means the operation does not grow with the pool (eviction from an LRU list, a quarantine
// queue), where scanning every entry or shifting an array would grow with it.
import { KvStore } from "../src/store/kv-store.js";
import type { BenchFigure } from "./bench-figure.js";

const SMALL = 1_024;
const LARGE = 131_072; // a 32 GiB pool of 256 KiB slots
const KEYS = 16;

function store(slots: number, quarantineMs: number): KvStore {
  const token = Buffer.alloc(8);
  return new KvStore({
    slots,
    slotBytes: 1,
    leaseMs: 1e12,
    quarantineMs,
    holdMs: 1e12,
    maxKeysPerAlloc: 1_024,
    maxChunksPerRequest: 1_000_000,
    maxRequests: 1_000_000,
    newToken: () => token,
  });
}

function request(id: string, keys: number): { requestId: string; keys: string[]; sizes: number[]; batchSeq: number; totalChunks: number; isLastBatch: boolean } {
  const k = Array.from({ length: keys }, (_, i) => `${id}-k${i}`);
  return { requestId: id, keys: k, sizes: k.map(() => 1), batchSeq: 0, totalChunks: 0, isLastBatch: true };
}

/** Microseconds per 16-key Alloc + Commit + Release on a pool of `slots` full of cached entries. */
function evictingRequestUs(slots: number): number {
  const s = store(slots, 0);
  let now = 0;
  for (let r = 0; r < slots / KEYS; r++) {
    s.alloc(request(`fill${r}`, KEYS), now++);
    s.commit(`fill${r}`, now++);
    s.release(`fill${r}`, now++);
  }
  const n = 2_000;
  const t0 = performance.now();
  for (let r = 0; r < n; r++) {
    s.alloc(request(`x${r}`, KEYS), now++);
    s.commit(`x${r}`, now++);
    s.release(`x${r}`, now++);
  }
  return ((performance.now() - t0) / n) * 1000;
}

/** Microseconds per slot to quarantine `slots` slots (aborted requests) and release them in one sweep. */
function quarantineSweepUsPerSlot(slots: number): number {
  const s = store(slots, 10);
  let now = 0;
  for (let r = 0; r < slots / KEYS; r++) s.alloc(request(`q${r}`, KEYS), now);
  for (let r = 0; r < slots / KEYS; r++) s.abort(`q${r}`, { kind: "sender_abort", detail: "bench" }, now);
  const t0 = performance.now();
  s.sweep(now + 10);
  const us = ((performance.now() - t0) / slots) * 1000;
  if (s.stats().slotsFree !== slots) throw new Error("store bench: the sweep did not free every quarantined slot");
  return us;
}

export function runStoreBench(): BenchFigure[] {
  // Warm-up so the small pool is not measured cold.
  evictingRequestUs(SMALL);
  quarantineSweepUsPerSlot(SMALL);
  const evSmall = evictingRequestUs(SMALL);
  const evLarge = evictingRequestUs(LARGE);
  const qSmall = quarantineSweepUsPerSlot(SMALL * 16);
  const qLarge = quarantineSweepUsPerSlot(LARGE);
  return [
    { bench: `store.evicting_request.${LARGE}_entries`, value: evLarge, unit: "us", baseline: evSmall, baselineName: `the same on ${SMALL} entries`, ratio: evLarge / evSmall },
    { bench: `store.quarantine_sweep.${LARGE}_slots`, value: qLarge, unit: "us/slot", baseline: qSmall, baselineName: `the same on ${SMALL * 16} slots`, ratio: qLarge / qSmall },
  ];
}
