// Event-driven progress for a worker that only serves remote operations (the receiver): it sleeps
// on the worker's event fd inside Node's own event loop (libuv poll through koffi), progresses in
// short slices when woken, lingers briefly after activity to ride out bursts without a wakeup per
// message, and re-arms. Idle costs no CPU; busy never holds the event loop longer than one slice.
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { loadKoffi } from "../../../native-bindings/koffi/load-koffi.js";
import { UCS_ERR_BUSY, UCS_OK } from "../../../native-bindings/ucx/ucx-constants.js";
import type { UcxWorker } from "./ucx-worker.js";

export interface EventProgressOptions {
  /** Longest synchronous progress stretch before yielding to the event loop (default 1 ms). */
  sliceMs?: number;
  /** How long to keep polling after the last event before sleeping on the fd again (default 2 ms). */
  lingerMs?: number;
}

/** The part of koffi's (undocumented in its typings) libuv poll handle that we use. */
interface PollHandle {
  close(): void;
  unref(): void;
}
type PollFn = (fd: number, opts: { readable: boolean }, cb: (status: number) => void) => PollHandle;

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
  /** Held strongly: koffi closes the libuv handle when its JS object is collected. */
  private poll: PollHandle | null;
  private scheduled: { cancel(): void } | null = null;
  private lastEventAt = 0;
  private stopped = false;
  readonly stats: EventProgressStats = { wakeups: 0, events: 0 };

  constructor(worker: UcxWorker, opts: EventProgressOptions = {}) {
    this.worker = worker;
    this.sliceMs = opts.sliceMs ?? 1;
    this.lingerMs = opts.lingerMs ?? 2;
    const k = loadKoffi();
    if (!k.ok) throw new KvbridgeError("UNAVAILABLE", k.reason);
    const poll = (k.koffi as unknown as { node?: { poll?: PollFn } }).node?.poll;
    if (typeof poll !== "function") {
      throw new KvbridgeError("UNAVAILABLE", "this koffi has no node.poll (libuv fd polling); kvbridge needs koffi >= 3.2");
    }
    const fd = worker.eventFd();
    // The fd is level-triggered: while we are draining or lingering it may report readable on every
    // loop turn; onReadable ignores those because a drive is already scheduled.
    this.poll = poll(fd, { readable: true }, () => this.onReadable());
    // A data plane alone should not keep a process alive; its node's servers do.
    this.poll.unref();
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
    this.poll?.close();
    this.poll = null;
  }
}
