// A small real WriteGate for transport-level tests: a table of allocations (request, slot, length,
// token) over a PoolMemory, recording what was written and which connections were lost.

import { randomBytes } from "node:crypto";
import type { ErrorCode } from "../../src/errors/kvbridge-error.js";
import type { PoolMemory } from "../../src/memory/pool-memory.js";
import type { AdmitResult, WriteGate } from "../../src/transport/transport.js";

interface Allocation {
  requestId: string;
  slot: number;
  length: number;
  token: Buffer;
  written: number;
  aborted: boolean;
}

export interface LostCall {
  ids: string[];
  reason: string;
}

export class TableWriteGate implements WriteGate {
  private readonly memory: PoolMemory;
  private readonly bySlot = new Map<number, Allocation>();
  readonly lost: LostCall[] = [];
  readonly refusals: Array<{ requestId: string; slot: number; code: ErrorCode }> = [];
  private lostWaiters: Array<() => void> = [];
  /** Test hook run after each completed frame (e.g. to tear something down mid-transfer). */
  onWritten: ((requestId: string, slot: number, length: number) => void) | null = null;

  constructor(memory: PoolMemory) {
    this.memory = memory;
  }

  /** Allocates `slot` to `requestId` for `length` bytes (whole slot by default); returns its token. */
  allocate(requestId: string, slot: number, length = this.memory.slotBytes): Buffer {
    if (this.bySlot.has(slot)) throw new Error(`test gate: slot ${slot} already allocated`);
    if (slot < 0 || slot >= this.memory.slots || length > this.memory.slotBytes) throw new Error("test gate: bad allocation");
    const token = randomBytes(8);
    this.bySlot.set(slot, { requestId, slot, length, token, written: 0, aborted: false });
    return token;
  }

  allocation(slot: number): Readonly<Allocation> | undefined {
    return this.bySlot.get(slot);
  }

  admit(requestId: string, slot: number, offsetInSlot: number, length: number, token: Buffer): AdmitResult {
    const refuse = (code: ErrorCode, message: string): AdmitResult => {
      this.refusals.push({ requestId, slot, code });
      return { ok: false, code, message };
    };
    const a = this.bySlot.get(slot);
    if (!a) return refuse("NOT_FOUND", `slot ${slot} is not allocated`);
    if (a.requestId !== requestId) return refuse("PERMISSION_DENIED", `slot ${slot} belongs to another request`);
    if (!a.token.equals(token)) return refuse("PERMISSION_DENIED", `bad write token for slot ${slot}`);
    if (a.aborted) return refuse("FAILED_PRECONDITION", `request ${requestId} was aborted`);
    if (offsetInSlot + length > a.length) {
      return refuse("INVALID_ARGUMENT", `write [${offsetInSlot}, ${offsetInSlot + length}) is outside the ${a.length}-byte allocation`);
    }
    return { ok: true, target: this.memory.slotView(slot).subarray(offsetInSlot, offsetInSlot + length) };
  }

  written(requestId: string, slot: number, length: number): void {
    const a = this.bySlot.get(slot);
    if (!a || a.requestId !== requestId) throw new Error(`test gate: written() for unadmitted slot ${slot}`);
    a.written += length;
    this.onWritten?.(requestId, slot, length);
  }

  connectionLost(requestIds: ReadonlySet<string>, reason: string): void {
    this.lost.push({ ids: [...requestIds].sort(), reason });
    // "Unfinished" for this table: an allocation of a named request with bytes still missing.
    for (const a of this.bySlot.values()) {
      if (requestIds.has(a.requestId) && a.written < a.length) a.aborted = true;
    }
    const waiters = this.lostWaiters;
    this.lostWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once connectionLost has been called `count` times in all; rejects after timeoutMs. */
  async waitForLost(count: number, timeoutMs = 5_000): Promise<LostCall[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.lost.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connectionLost called ${this.lost.length} times, expected ${count} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.lostWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.lost;
  }
}
