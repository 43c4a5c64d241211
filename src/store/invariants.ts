// The DESIGN.md invariants as one check over a store's whole state. Tests call it after every step;
// the node can run it as a self-check. Throws an Error naming the first broken invariant.

import type { KvStore } from "./kv-store.js";

export function checkInvariants(store: KvStore): void {
  const { live, entries, evictable, requests, coverage } = store.internals();
  const pool = store.pool;
  const fail = (msg: string): never => {
    throw new Error(`store invariant broken: ${msg}`);
  };

  // A slot is free, quarantined, or referenced by exactly one entry; never two of these.
  const seen = new Map<number, string>();
  const mark = (slot: number, what: string): void => {
    const before = seen.get(slot);
    if (before !== undefined) fail(`slot ${slot} is both ${before} and ${what}`);
    seen.set(slot, what);
  };
  for (const s of pool.freeSlots()) mark(s, "free");
  for (const q of pool.quarantinedSlots()) mark(q.slot, "quarantined");
  for (const e of entries.values()) {
    if (e.slot === null) {
      if (e.status.state !== "failed") fail(`entry ${e.key} (${e.status.state}) has no slot`);
      continue;
    }
    mark(e.slot, `used by entry ${e.id}`);
    const st = pool.stateOf(e.slot);
    if (st.state !== "used" || st.entryId !== e.id) fail(`entry ${e.key} points at slot ${e.slot} whose pool state is ${JSON.stringify(st)}`);
  }
  if (seen.size !== pool.total) fail(`${pool.total - seen.size} slot(s) are neither free, quarantined nor used`);

  // The key map holds only live (WRITING/READY) entries, each also in the id map.
  for (const [key, e] of live) {
    if (e.key !== key) fail(`key map ${key} -> entry of key ${e.key}`);
    if (e.status.state === "failed") fail(`failed entry ${key} is still live`);
    if (entries.get(e.id) !== e) fail(`live entry ${key} missing from the entry table`);
  }
  for (const e of entries.values()) {
    if (e.status.state !== "failed" && live.get(e.key) !== e) fail(`${e.status.state} entry ${e.key} (#${e.id}) is not the live entry of its key`);
    // A FAILED entry exists only while some dependent still pins it.
    if (e.status.state === "failed" && e.pins.size === 0) fail(`failed entry ${e.key} has no pins left but was kept`);
    // Every WRITING allocation belongs to a live, allocating request (which carries the lease).
    if (e.status.state === "writing") {
      const owner = requests.get(e.status.owner);
      if (!owner) fail(`writing entry ${e.key} is owned by unknown request ${e.status.owner}`);
      else {
        if (owner.phase !== "allocating") fail(`writing entry ${e.key} owned by ${owner.id} in phase ${owner.phase}`);
        if (!Number.isFinite(owner.leaseExpiresAt)) fail(`owner ${owner.id} of ${e.key} has no lease`);
        if (owner.holds.get(e.key)?.role !== "writer") fail(`owner ${owner.id} does not hold ${e.key} as writer`);
      }
      if (!e.pins.has(e.status.owner)) fail(`writing entry ${e.key} is not pinned by its writer`);
    }
    // Pins and holds mirror each other: refcount = number of requests holding the entry.
    for (const r of e.pins) {
      const rec = requests.get(r);
      if (!rec) fail(`entry ${e.key} pinned by unknown request ${r}`);
      else if (rec.holds.get(e.key)?.entryId !== e.id) fail(`entry ${e.key} pinned by ${r} which does not hold it`);
    }
  }
  // READY ⇒ fully written by its owner: the writer that committed it either covered every byte
  // with its own admitted writes, or its Commit's caller verified the slot's bytes; and while that
  // writer still holds the entry, it holds it as its writer.
  for (const e of entries.values()) {
    if (e.status.state !== "ready") continue;
    const { writer, proof } = e.status;
    if (proof === "counted" && e.bytesWritten !== e.size) fail(`READY entry ${e.key} counts ${e.bytesWritten} of ${e.size} bytes written by ${writer}`);
    const w = requests.get(writer);
    if (w) {
      const hold = w.holds.get(e.key);
      if (hold && hold.entryId === e.id && hold.role !== "writer") fail(`READY entry ${e.key} names ${writer} as its writer, which holds it as ${hold.role}`);
      if (w.phase !== "committed" && hold?.entryId === e.id) fail(`READY entry ${e.key} was made READY by ${writer}, which has not committed`);
    }
  }
  // Coverage is kept only for WRITING entries, and is what their byte count says.
  for (const [id, cov] of coverage) {
    const e = entries.get(id);
    if (!e || e.status.state !== "writing") fail(`write coverage kept for entry #${id}, which is ${e ? e.status.state : "gone"}`);
    else if (e.bytesWritten !== cov.covered) fail(`entry ${e.key} says ${e.bytesWritten} bytes written, its coverage ${cov.covered}`);
  }
  for (const e of entries.values()) {
    if (e.bytesWritten < 0 || e.bytesWritten > e.size) fail(`entry ${e.key} has ${e.bytesWritten} of ${e.size} bytes written`);
    if (e.status.state === "writing" && e.bytesWritten > 0 && !coverage.has(e.id)) fail(`writing entry ${e.key} counts bytes without coverage`);
  }
  // The eviction order lists exactly the unpinned READY entries (the ones eviction may take).
  for (const [id, e] of evictable) {
    if (entries.get(id) !== e) fail(`evictable entry #${id} is not in the entry table`);
    if (e.status.state !== "ready" || e.pins.size > 0) fail(`entry ${e.key} (${e.status.state}, ${e.pins.size} pins) is listed as evictable`);
  }
  for (const e of entries.values()) {
    if (e.status.state === "ready" && e.pins.size === 0 && evictable.get(e.id) !== e) fail(`unpinned READY entry ${e.key} is missing from the eviction order`);
  }
  let reserved = 0;
  for (const rec of requests.values()) {
    reserved += rec.reserved;
    if (rec.reserved < 0) fail(`request ${rec.id} has negative reservation`);
    if (rec.holds.size !== rec.keys.length) fail(`request ${rec.id} holds ${rec.holds.size} keys but lists ${rec.keys.length}`);
    for (const [key, hold] of rec.holds) {
      const e = entries.get(hold.entryId);
      if (!e) fail(`request ${rec.id} holds ${key} -> entry #${hold.entryId} which does not exist`);
      else if (!e.pins.has(rec.id)) fail(`request ${rec.id} holds ${key} but is not among its pins`);
    }
  }
  if (reserved !== pool.reserved) fail(`pool reserves ${pool.reserved} slots but requests account for ${reserved}`);
  if (pool.reserved > pool.freeCount) fail(`reserved ${pool.reserved} > free ${pool.freeCount}`);
}

/** True when nothing is held by any request: what the pool returns to after all requests end. */
export function atBaseline(store: KvStore): boolean {
  const s = store.stats();
  return s.activeRequests === 0 && s.slotsWriting === 0 && s.slotsReserved === 0 && s.slotsFree + s.slotsReady + s.slotsQuarantined === s.slotsTotal;
}
