// Progress for a sender's worker. It runs only while requests are in flight or a channel has writes
// to post: in slices of at most `sliceMs` (Node's event loop keeps turning between them), chained
// within one turn when finished writeAlls hand it their successors, and, when nothing happens for a
// short spin, armed and asleep on the worker's event fd until the peer answers (a slow or dead
// peer costs no CPU; a fallback timer keeps deadlines honest and the process alive meanwhile).
import { UCS_ERR_BUSY, UCS_INPROGRESS, UCS_OK } from "../../../native-bindings/ucx/ucx-constants.js";
import type { UcpRequest } from "../../../native-bindings/ucx/ucx-library.js";
import { watchEventFd, type EventFdWatch } from "./ucx-event-fd.js";
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
  /** Progress calls in a row that find nothing before arming and sleeping (default 64, some 10 µs). */
  spinBeforeSleep?: number;
  /** Longest sleep on the event fd while work is in flight (default 5 ms): bounds watchdog lag. */
  maxSleepMs?: number;
}

type Schedule = { kind: "immediate" | "sleep"; cancel(): void };

export class RequestPump {
  private readonly worker: UcxWorker;
  private readonly sliceMs: number;
  private readonly spinBeforeSleep: number;
  private readonly maxSleepMs: number;
  private readonly pending = new Set<TrackedRequest>();
  private readonly sources = new Set<PumpSource>();
  private readonly watch: EventFdWatch;
  private scheduled: Schedule | null = null;
  /** True inside a slice: work added then is picked up by the slice itself or its reschedule. */
  private running = false;
  /** When the current event-loop turn's first slice started (the budget chained slices share). */
  private turnStartedAt = 0;
  private chainQueued = false;
  private closed = false;

  constructor(worker: UcxWorker, opts: RequestPumpOptions = {}) {
    this.worker = worker;
    this.sliceMs = opts.sliceMs ?? 2;
    this.spinBeforeSleep = opts.spinBeforeSleep ?? 64;
    this.maxSleepMs = opts.maxSleepMs ?? 5;
    this.watch = watchEventFd(worker, () => {
      // Level-triggered: only a sleeping pump cares.
      if (this.scheduled?.kind === "sleep") this.wake();
    });
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

  /** Makes sure a slice runs soon: at the next event-loop turn, or right away if asleep. */
  wake(): void {
    if (this.closed || this.running || this.chainQueued) return;
    if (this.scheduled !== null) {
      if (this.scheduled.kind === "immediate") return;
      this.scheduled.cancel();
    }
    this.soon();
  }

  private soon(): void {
    const i = setImmediate(this.run);
    this.scheduled = { kind: "immediate", cancel: () => clearImmediate(i) };
  }

  private sleep(): void {
    // Armed: the event fd turns readable when anything arrives. The timer bounds the sleep for
    // deadlines (watchdog, cancellation) and, being ref'd, keeps the process alive while work is
    // in flight; the fd watch itself is unref'd.
    const t = setTimeout(this.run, this.maxSleepMs);
    this.scheduled = { kind: "sleep", cancel: () => clearTimeout(t) };
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
    let quiet = 0;
    for (;;) {
      const events = this.worker.progress();
      const now = performance.now();
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
      if (this.closed || (this.pending.size === 0 && this.sources.size === 0)) return;
      quiet = events > 0 || completed > 0 || posted ? 0 : quiet + 1;
      if (quiet >= this.spinBeforeSleep) {
        // Nothing is moving: sleep on the event fd unless events are already pending.
        const armed = this.worker.arm();
        if (armed === UCS_OK) {
          this.sleep();
          return;
        }
        if (armed !== UCS_ERR_BUSY) {
          // Cannot arm (should not happen): fall back to the timer alone.
          this.sleep();
          return;
        }
        quiet = 0;
      }
      if (performance.now() >= deadline) break;
    }
    this.soon();
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
    this.watch.close();
    const { fns } = this.worker.ucx;
    for (const t of this.pending) fns.ucp_request_free(t.request);
    this.pending.clear();
    this.sources.clear();
  }
}
