// Event-driven progress for a worker that only serves remote operations (the receiver): it sleeps
// on the worker's event fd inside Node's own event loop (libuv poll through koffi), progresses in
// short slices when woken, lingers briefly after activity to ride out bursts without a wakeup per
// message, and re-arms. Idle costs no CPU; busy never holds the event loop longer than one slice.
import { UCS_ERR_BUSY, UCS_OK } from "../../../native-bindings/ucx/ucx-constants.js";
import { watchEventFd, type EventFdWatch } from "./ucx-event-fd.js";
import type { UcxWorker } from "./ucx-worker.js";

export interface EventProgressOptions {
  /** Longest synchronous progress stretch before yielding to the event loop (default 1 ms). */
  sliceMs?: number;
  /** How long to keep polling after the last event before sleeping on the fd again (default 2 ms). */
  lingerMs?: number;
}

export interface EventProgressStats {
  /** Times the fd woke us. */
  wakeups: number;
  /** Events ucp_worker_progress reported. */
  events: number;
}

export class EventDrivenProgress {
  private readonly worker: UcxWorker;
  private readonly sliceMs: number;
  private readonly lingerMs: number;
  private readonly watch: EventFdWatch;
  private scheduled: { cancel(): void } | null = null;
  private lastEventAt = 0;
  private stopped = false;
  readonly stats: EventProgressStats = { wakeups: 0, events: 0 };

  constructor(worker: UcxWorker, opts: EventProgressOptions = {}) {
    this.worker = worker;
    this.sliceMs = opts.sliceMs ?? 1;
    this.lingerMs = opts.lingerMs ?? 2;
    // The fd is level-triggered: while we are draining or lingering it may report readable on every
    // loop turn; onReadable ignores those because a drive is already scheduled. A data plane alone
    // does not keep its process alive (the watch is unref'd); its node's servers do.
    this.watch = watchEventFd(worker, () => this.onReadable());
    // Events may have arrived between worker creation and now: drain once, then arm.
    this.drive();
  }

  private onReadable(): void {
    if (this.stopped || this.scheduled !== null) return;
    this.stats.wakeups++;
    this.lastEventAt = performance.now();
    this.drive();
  }

  private readonly drive = (): void => {
    this.scheduled = null;
    if (this.stopped) return;
    const start = performance.now();
    let n = 0;
    let now = start;
    do {
      n = this.worker.progress();
      this.stats.events += n;
      now = performance.now();
      if (n > 0) this.lastEventAt = now;
    } while (n > 0 && now - start < this.sliceMs);
    // More work than one slice, or a burst that may continue: come back after the event loop turns.
    if (n > 0 || now - this.lastEventAt < this.lingerMs) {
      this.soon();
      return;
    }
    const status = this.worker.arm();
    if (status === UCS_ERR_BUSY) {
      // Events arrived while we were deciding to sleep.
      this.soon();
    } else if (status !== UCS_OK) {
      // Arming cannot fail on a healthy worker; if it does, keep serving by polling every
      // millisecond rather than going deaf or spinning.
      const t = setTimeout(this.drive, 1);
      this.scheduled = { cancel: () => clearTimeout(t) };
    }
  };

  private soon(): void {
    const i = setImmediate(this.drive);
    this.scheduled = { cancel: () => clearImmediate(i) };
  }

  /** Idempotent: stops polling the fd; the worker may be destroyed afterwards. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.scheduled?.cancel();
    this.scheduled = null;
    this.watch.close();
  }
}
