// Progress for a sender's worker: runs only while requests are in flight or a channel has writes to
// post, in slices of at most `sliceMs` so Node's event loop keeps turning, and backs off to 1 ms
// naps when a stretch of slices saw nothing happen (a slow or dead peer must not eat a core).
import { UCS_INPROGRESS } from "../../../native-bindings/ucx/ucx-constants.js";
import type { UcpRequest } from "../../../native-bindings/ucx/ucx-library.js";
import type { UcxWorker } from "./ucx-worker.js";

/** Something that has work to post (a channel with queued writes) or deadlines to watch. */
export interface PumpSource {
  /** Called on every pump iteration while registered; returns true when it did something. */
  turn(now: number, sliceDeadline: number): boolean;
}

/** A request being polled; `complete` runs once, after the request was freed. */
export interface TrackedRequest {
  readonly request: UcpRequest;
  readonly complete: (status: number, now: number) => void;
}

export interface RequestPumpOptions {
  /** Longest synchronous stretch before yielding to the event loop (default 2 ms). */
  sliceMs?: number;
  /** Quiet slices in a row before napping 1 ms between slices (default 4). */
  quietSlicesBeforeNap?: number;
}

export class RequestPump {
  private readonly worker: UcxWorker;
  private readonly sliceMs: number;
  private readonly quietSlicesBeforeNap: number;
  private readonly pending = new Set<TrackedRequest>();
  private readonly sources = new Set<PumpSource>();
  private scheduled: { cancel(): void; nap: boolean } | null = null;
  private quietSlices = 0;
  /** True inside a slice: work added then is picked up by the slice itself or its reschedule. */
  private running = false;
  /** When the current event-loop turn's first slice started (the budget chained slices share). */
  private turnStartedAt = 0;
  private chainQueued = false;
  private closed = false;

  constructor(worker: UcxWorker, opts: RequestPumpOptions = {}) {
    this.worker = worker;
    this.sliceMs = opts.sliceMs ?? 2;
    this.quietSlicesBeforeNap = opts.quietSlicesBeforeNap ?? 4;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  track(request: UcpRequest, complete: (status: number, now: number) => void): TrackedRequest {
    const t: TrackedRequest = { request, complete };
    this.pending.add(t);
    this.wake();
    return t;
  }

  /** Stops polling `t` without freeing its request (the caller frees or hands it back to UCX). */
  untrack(t: TrackedRequest): void {
    this.pending.delete(t);
  }

  addSource(s: PumpSource): void {
    this.sources.add(s);
    this.wake();
  }

  removeSource(s: PumpSource): void {
    this.sources.delete(s);
  }

  /** Makes sure a slice runs soon (after the current event-loop turn). */
  wake(): void {
    if (this.closed) return;
    this.quietSlices = 0;
    if (this.running || this.chainQueued) return;
    if (this.scheduled !== null) {
      if (!this.scheduled.nap) return;
      // New work while napping: run at the next turn, not up to 1 ms later.
      this.scheduled.cancel();
    }
    this.soon();
  }

  private soon(): void {
    const i = setImmediate(this.run);
    this.scheduled = { cancel: () => clearImmediate(i), nap: false };
  }

  private readonly run = (): void => {
    this.scheduled = null;
    if (this.closed) return;
    this.turnStartedAt = performance.now();
    this.runSlice();
  };

  private runSlice(): void {
    this.running = true;
    try {
      this.slice(this.turnStartedAt + this.sliceMs);
    } finally {
      this.running = false;
    }
    if (this.closed || this.scheduled !== null || this.chainQueued) return;
    // The slice ran out of work. Requests it completed resolve their writeAll promises in the
    // microtasks that run next, and their callers usually post the next writeAll right there:
    // catch that work in the same event-loop turn (within the same time budget) instead of
    // paying a setImmediate hop per writeAll.
    this.chainQueued = true;
    queueMicrotask(this.chain);
  }

  private readonly chain = (): void => {
    this.chainQueued = false;
    if (this.closed || this.scheduled !== null || (this.pending.size === 0 && this.sources.size === 0)) return;
    if (performance.now() - this.turnStartedAt < this.sliceMs) this.runSlice();
    else this.soon();
  };

  private slice(deadline: number): void {
    const { fns } = this.worker.ucx;
    let active = false;
    let now = performance.now();
    for (;;) {
      const events = this.worker.progress();
      now = performance.now();
      let completed = 0;
      for (const t of this.pending) {
        const status = fns.ucp_request_check_status(t.request);
        if (status === UCS_INPROGRESS) continue;
        this.pending.delete(t);
        fns.ucp_request_free(t.request);
        completed++;
        t.complete(status, now);
      }
      let posted = false;
      for (const s of this.sources) if (s.turn(now, deadline)) posted = true;
      if (events > 0 || completed > 0 || posted) active = true;
      if (this.closed || (this.pending.size === 0 && this.sources.size === 0)) return;
      now = performance.now();
      if (now >= deadline) break;
    }
    if (active) {
      this.quietSlices = 0;
      this.soon();
    } else if (++this.quietSlices < this.quietSlicesBeforeNap) {
      this.soon();
    } else {
      const t = setTimeout(this.run, 1);
      this.scheduled = { cancel: () => clearTimeout(t), nap: true };
    }
  }

  /**
   * Idempotent. Stops progressing; requests still tracked are handed back to UCX
   * (ucp_request_free releases them when they complete or when the worker is destroyed).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.scheduled?.cancel();
    this.scheduled = null;
    const { fns } = this.worker.ucx;
    for (const t of this.pending) fns.ucp_request_free(t.request);
    this.pending.clear();
    this.sources.clear();
  }
}
