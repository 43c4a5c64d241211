// Progress for a sender's worker. It runs only while requests are in flight or a channel has writes
// to post: in slices of at most `sliceMs` (Node's event loop keeps turning between them), chained
// within one turn when finished writeAlls hand it their successors. While requests are in flight it
// spins (some transports signal nothing when the peer frees room, e.g. a shared-memory FIFO), but
// once nothing has moved for `spinMs` it arms the worker and sleeps on its event fd, with a timer
// that backs off while the peer stays silent: a stalled or dead peer costs almost no CPU.
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
  /** How long nothing may move before arming and sleeping on the event fd (default 1 ms). */
  spinMs?: number;
  /** Longest sleep on the event fd while work is in flight (default 8 ms): bounds watchdog lag. */
  maxSleepMs?: number;
}

type Schedule = { kind: "immediate" | "sleep"; cancel(): void };

export class RequestPump {
  private readonly worker: UcxWorker;
  private readonly sliceMs: number;
  private readonly spinMs: number;
  private readonly maxSleepMs: number;
  /** Sleeps in a row that ended by their timer with nothing happening: the peer is silent. */
  private idleSleeps = 0;
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
    this.spinMs = opts.spinMs ?? 1;
    this.maxSleepMs = opts.maxSleepMs ?? 8;
    this.watch = watchEventFd(worker, () => {
      // Level-triggered: only a sleeping pump cares. Something arrived: the peer is not silent.
      if (this.scheduled?.kind !== "sleep") return;
      this.idleSleeps = 0;
      this.wake();
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
    // deadlines (watchdog, cancellation) and for transports that signal nothing, and, being ref'd,
    // keeps the process alive while work is in flight (the fd watch itself is unref'd). It backs
    // off (1, 2, 4... ms) while sleeps end with nothing new.
    const ms = Math.min(this.maxSleepMs, 1 << Math.min(this.idleSleeps, 10));
    const t = setTimeout(this.run, ms);
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
    // After a silent sleep, a short look is enough before sleeping again (longer).
    const spinMs = this.idleSleeps > 0 ? 0.05 : this.spinMs;
    let quietSince = performance.now();
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
      if (events > 0 || completed > 0 || posted) {
        quietSince = now;
        this.idleSleeps = 0;
      } else if (now - quietSince >= spinMs) {
        // Nothing is moving: sleep on the event fd unless events are already pending.
        const armed = this.worker.arm();
        if (armed === UCS_OK || armed !== UCS_ERR_BUSY) {
          // (Not armed and not busy cannot happen on a healthy worker: the timer alone then wakes us.)
          this.idleSleeps++;
          this.sleep();
          return;
        }
        quietSince = performance.now();
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
