// SlotPool's quarantine queue: release in order, partial sweeps, and the compaction of released
// entries (past 1024 of them) keeping counts, states and the next release time right.
import { describe, expect, it } from "vitest";
import { SlotPool } from "../../src/store/slot-pool.js";

function quarantineAll(pool: SlotPool, slots: number[], firstEntry: number, until: number): void {
  slots.forEach((slot, i) => {
    pool.take(firstEntry + i, false);
    expect(pool.stateOf(slot)).toEqual({ state: "used", entryId: firstEntry + i });
    pool.quarantineSlot(slot, firstEntry + i, until);
  });
}

describe("SlotPool quarantine", () => {
  it("releases in waves past the compaction threshold with exact counts, states and next release", () => {
    const total = 5_000;
    const pool = new SlotPool(total);
    // take() pops the free list from slot 0 upwards.
    const wave1 = Array.from({ length: 2_000 }, (_, i) => i);
    const wave2 = Array.from({ length: 2_000 }, (_, i) => 2_000 + i);
    quarantineAll(pool, wave1, 0, 100);
    quarantineAll(pool, wave2, 10_000, 200);
    expect(pool.quarantinedCount).toBe(4_000);
    expect(pool.freeCount).toBe(1_000);
    expect(pool.nextRelease()).toBe(100);
    expect(pool.stateOf(1_999)).toEqual({ state: "quarantined", until: 100 });
    expect(pool.stateOf(2_000)).toEqual({ state: "quarantined", until: 200 });

    expect(pool.releaseDue(99)).toBe(0);
    expect(pool.releaseDue(100)).toBe(2_000);
    expect(pool.quarantinedCount).toBe(2_000);
    expect(pool.freeCount).toBe(3_000);
    expect(pool.nextRelease()).toBe(200);
    expect(pool.stateOf(0)).toEqual({ state: "free" });
    expect(pool.stateOf(3_999)).toEqual({ state: "quarantined", until: 200 });
    expect(pool.quarantinedSlots().map((q) => q.slot)).toEqual(wave2);

    // New quarantines after a compaction join the queue behind the old ones.
    const again = pool.take(50_000, false);
    pool.quarantineSlot(again, 50_000, 300);
    expect(pool.quarantinedCount).toBe(2_001);
    expect(pool.releaseDue(250)).toBe(2_000);
    expect(pool.nextRelease()).toBe(300);
    expect(pool.quarantinedSlots()).toEqual([{ slot: again, until: 300 }]);
    expect(pool.releaseDue(300)).toBe(1);
    expect(pool.quarantinedCount).toBe(0);
    expect(pool.nextRelease()).toBeUndefined();
    expect(pool.freeCount).toBe(total);
    expect(new Set(pool.freeSlots()).size).toBe(total);
  });
});
