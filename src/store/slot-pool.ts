// Slot accounting for the pinned pool: which fixed-size slot is free, quarantined or used by an
// entry, plus the count of slots reserved for batched requests. Pure bookkeeping, no memory.

const FREE = -1;
const QUARANTINED = -2;

export type SlotState =
  | { state: "free" }
  | { state: "quarantined"; until: number }
  | { state: "used"; entryId: number };

export class SlotPool {
  readonly total: number;
  /** FREE, QUARANTINED or the id of the entry using the slot. */
  private readonly owner: number[];
  /** Free slots, used as a stack: the most recently freed slot is reused first (warm in cache). */
  private readonly freeList: number[] = [];
  /**
   * Quarantined slots in release order (the grace period is constant and the clock monotonic, so
   * appends stay sorted), as a queue: entries before `qHead` are released. Popping by index keeps a
   * sweep that frees thousands of slots linear (Array.shift would copy the rest for each one).
   */
  private quarantine: Array<{ slot: number; until: number }> = [];
  private qHead = 0;
  /** Release time of each quarantined slot (NaN otherwise), for O(1) lookups by slot. */
  private readonly quarantinedUntil: Float64Array;
  private reservedCount = 0;

  constructor(total: number) {
    this.total = total;
    this.owner = new Array<number>(total).fill(FREE);
    this.quarantinedUntil = new Float64Array(total).fill(Number.NaN);
    for (let s = total - 1; s >= 0; s--) this.freeList.push(s);
  }

  get freeCount(): number {
    return this.freeList.length;
  }
  get quarantinedCount(): number {
    return this.quarantine.length - this.qHead;
  }
  get reserved(): number {
    return this.reservedCount;
  }
  /** Free slots not promised to a batched request. */
  get available(): number {
    return this.freeList.length - this.reservedCount;
  }

  reserve(n: number): void {
    if (n < 0 || n > this.available) throw new Error(`slot pool: cannot reserve ${n} of ${this.available} available`);
    this.reservedCount += n;
  }

  unreserve(n: number): void {
    if (n < 0 || n > this.reservedCount) throw new Error(`slot pool: cannot unreserve ${n} of ${this.reservedCount}`);
    this.reservedCount -= n;
  }

  /** Takes a free slot for `entryId`; `fromReservation` draws it from the reserved count. */
  take(entryId: number, fromReservation: boolean): number {
    if (fromReservation) this.unreserve(1);
    else if (this.available < 1) throw new Error("slot pool: no available slot");
    const slot = this.freeList.pop();
    if (slot === undefined) throw new Error("slot pool: free list empty");
    this.owner[slot] = entryId;
    return slot;
  }

  /** Returns a slot that nothing can still write (a READY entry evicted or released). */
  free(slot: number, entryId: number): void {
    this.expectOwner(slot, entryId);
    this.owner[slot] = FREE;
    this.freeList.push(slot);
  }

  /**
   * Parks a slot whose write was aborted or expired: a late one-sided write may still land in it,
   * so it is not handed out again before `until`.
   */
  quarantineSlot(slot: number, entryId: number, until: number): void {
    this.expectOwner(slot, entryId);
    this.owner[slot] = QUARANTINED;
    this.quarantinedUntil[slot] = until;
    this.quarantine.push({ slot, until });
  }

  /** Frees every quarantined slot whose grace period is over; returns how many. */
  releaseDue(now: number): number {
    let n = 0;
    while (this.qHead < this.quarantine.length && this.quarantine[this.qHead]!.until <= now) {
      const { slot } = this.quarantine[this.qHead++]!;
      this.owner[slot] = FREE;
      this.quarantinedUntil[slot] = Number.NaN;
      this.freeList.push(slot);
      n++;
    }
    // Drop the released prefix once it is most of the array (amortised O(1) per slot).
    if (this.qHead > 1024 && this.qHead * 2 > this.quarantine.length) {
      this.quarantine = this.quarantine.slice(this.qHead);
      this.qHead = 0;
    } else if (this.qHead === this.quarantine.length) {
      this.quarantine.length = 0;
      this.qHead = 0;
    }
    return n;
  }

  /** The earliest quarantine release time, if any. */
  nextRelease(): number | undefined {
    return this.quarantine[this.qHead]?.until;
  }

  stateOf(slot: number): SlotState {
    const o = this.owner[slot];
    if (o === undefined) throw new RangeError(`slot ${slot} out of range 0..${this.total - 1}`);
    if (o === FREE) return { state: "free" };
    if (o === QUARANTINED) return { state: "quarantined", until: this.quarantinedUntil[slot]! };
    return { state: "used", entryId: o };
  }

  /** Read-only views for invariant checks. */
  freeSlots(): readonly number[] {
    return this.freeList;
  }
  quarantinedSlots(): ReadonlyArray<{ slot: number; until: number }> {
    return this.qHead === 0 ? this.quarantine : this.quarantine.slice(this.qHead);
  }

  private expectOwner(slot: number, entryId: number): void {
    if (this.owner[slot] !== entryId) {
      throw new Error(`slot pool: slot ${slot} is not used by entry ${entryId} (owner ${this.owner[slot]})`);
    }
  }
}
