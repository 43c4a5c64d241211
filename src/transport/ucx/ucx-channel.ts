// One sender endpoint to one receiver: writeAll() pipelines ucp_put_nbx calls (many in flight, a
// bounded window shared round-robin by concurrent writeAll calls), then flushes the endpoint and
// resolves only when the flush completed. Every wait is bounded by a no-progress watchdog. With a
// commit sender, writeAndCommit() follows the writes with a COMMIT active message (ucx-commit-sender.ts).
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { UCP_EP_CLOSE_FLAG_FORCE, UCS_OK } from "../../../native-bindings/ucx/ucx-constants.js";
import type { UcpEp, UcpRkey, UcpRequest } from "../../../native-bindings/ucx/ucx-library.js";
import type { CommitProof, DataPlaneCommitResult, SenderChannel, SlotWrite } from "../transport.js";
import type { CommitChannel, UcxCommitSender } from "./ucx-commit-sender.js";
import type { PumpSource, RequestPump, TrackedRequest } from "./ucx-request-pump.js";
import type { UcxDirectness } from "./ucx-directness.js";
import type { MappedTarget } from "./ucx-mapped-target.js";
import { ucxError } from "./ucx-status.js";
import type { UcxWorker } from "./ucx-worker.js";

export type UcxErrorHandling = "none" | "peer";

export interface UcxChannelLimits {
  /** Most puts in flight on one channel, across all its writeAll calls. */
  window: number;
  /** Writes larger than this are split into several puts (keeps each synchronous copy short). */
  maxPutBytes: number;
  /** A channel with requests in flight and none completing for this long is declared dead. */
  stallTimeoutMs: number;
  /** Bound on closing the endpoint (flush-mode close needs the peer's help). */
  closeTimeoutMs: number;
}

export interface UcxChannelStats {
  writeAlls: number;
  puts: number;
  /** Puts UCX completed inside ucp_put_nbx (a direct copy through a mapped segment, or buffered). */
  immediatePuts: number;
  bytes: number;
}

interface Segment {
  data: Buffer;
  remote: bigint;
}

interface WriteJob {
  requestId: string;
  segments: Segment[];
  next: number;
  inflight: number;
  flushing: boolean;
  cancelled: boolean;
  settled: boolean;
  signal: AbortSignal;
  resolve: () => void;
  reject: (err: KvbridgeError) => void;
}

export interface UcxChannelParts {
  id: bigint;
  worker: UcxWorker;
  pump: RequestPump;
  ep: UcpEp;
  rkey: UcpRkey;
  baseAddress: bigint;
  errorHandling: UcxErrorHandling;
  limits: UcxChannelLimits;
  /** Called once the channel is closed, so its transport forgets it. */
  onClosed: (ch: UcxSenderChannel) => void;
  /** The data-plane commit (COMMIT active messages); null: the channel has no writeAndCommit. */
  commits: UcxCommitSender | null;
}

export class UcxSenderChannel implements SenderChannel, PumpSource, CommitChannel {
  readonly kind = "ucx" as const;
  readonly id: bigint;
  readonly stats: UcxChannelStats = { writeAlls: 0, puts: 0, immediatePuts: 0, bytes: 0 };
  /** Why this endpoint's puts are direct (set by connect() once the endpoint is wired up). */
  directness: UcxDirectness | null = null;
  private readonly worker: UcxWorker;
  private readonly pump: RequestPump;
  private readonly baseAddress: bigint;
  private readonly errorHandling: UcxErrorHandling;
  private readonly limits: UcxChannelLimits;
  private readonly onClosed: (ch: UcxSenderChannel) => void;
  private readonly param: Buffer;
  private ep: UcpEp | null;
  /**
   * The receiver's pool as mapped into this process, when shared memory maps it (ucp_rkey_ptr):
   * writes are then one memcpy each, straight from the caller's buffer into the pool, with no UCX
   * request, no registration of the source and no flush to wait for.
   */
  private mapped: MappedTarget | null = null;
  private rkey: UcpRkey | null;
  private jobs: WriteJob[] = [];
  private rr = 0;
  /** This channel's requests being polled (puts and flushes). */
  private readonly tracked = new Set<TrackedRequest>();
  private lastProgressAt = performance.now();
  private failure: KvbridgeError | null = null;
  /**
   * Source buffers of requests abandoned when the channel failed: UCX may still read them until
   * the endpoint is gone, so they stay referenced (not collectable) until then.
   */
  private abandoned: Buffer[] = [];
  private closing: Promise<void> | null = null;
  private readonly commits: UcxCommitSender | null;
  /** Whether any COMMIT on this channel was answered (a receiver that answers none loses writeAndCommit). */
  private everAnswered = false;
  /**
   * The data-plane commit (SenderChannel.writeAndCommit): present when the transport has a commit
   * sender, and removed once a COMMIT goes unanswered on a channel that never had one answered (a
   * receiver whose UCX plane does not take commits: the sender then commits over gRPC).
   */
  writeAndCommit?: (requestId: string, writes: readonly SlotWrite[], proofs: readonly CommitProof[], signal: AbortSignal) => Promise<DataPlaneCommitResult>;

  constructor(parts: UcxChannelParts) {
    this.id = parts.id;
    this.worker = parts.worker;
    this.pump = parts.pump;
    this.ep = parts.ep;
    this.rkey = parts.rkey;
    this.baseAddress = parts.baseAddress;
    this.errorHandling = parts.errorHandling;
    this.limits = parts.limits;
    this.onClosed = parts.onClosed;
    this.param = this.worker.ucx.requestParam();
    this.commits = parts.commits;
    if (this.commits) this.writeAndCommit = (requestId, writes, proofs, signal) => this.commitAfterWrites(requestId, writes, proofs, signal);
  }

  /**
   * Writes, then the COMMIT once they are in the receiver's memory (copies through the mapping are
   * complete when made; puts are flushed by writeAll). The COMMIT names the first write's slot and
   * token: the receiver takes it only from a sender holding the request's allocation.
   */
  private async commitAfterWrites(requestId: string, writes: readonly SlotWrite[], proofs: readonly CommitProof[], signal: AbortSignal): Promise<DataPlaneCommitResult> {
    const first = writes[0];
    if (!first || !this.commits) throw new KvbridgeError("INVALID_ARGUMENT", `a data-plane commit follows writes of its request; request ${requestId} has none here`);
    const prepared = this.commits.prepare(requestId, first.slot, first.token, proofs);
    await this.writeAll(requestId, writes, signal);
    return this.commits.send(this, prepared, signal);
  }

  /** CommitChannel: the endpoint while the channel is usable. */
  get endpoint(): UcpEp | null {
    return this.failure || this.closing ? null : this.ep;
  }

  /** CommitChannel: a COMMIT was answered (true) or went unanswered (false). */
  commitAnswered(answered: boolean): void {
    if (answered) this.everAnswered = true;
    else if (!this.everAnswered) delete this.writeAndCommit;
  }

  /** Copy writes through the mapping of the receiver's pool (its baseAddress as mapped here). */
  useMapping(target: MappedTarget): void {
    this.mapped = target;
  }

  /** The mapped pool writes are copied into, when shared memory maps it; null otherwise. */
  get mappedTarget(): MappedTarget | null {
    return this.mapped;
  }

  get broken(): boolean {
    return this.failure !== null;
  }

  writeAll(requestId: string, writes: readonly SlotWrite[], signal: AbortSignal): Promise<void> {
    return this.enqueue(requestId, writes, signal, true);
  }

  /** A bare endpoint flush: completes once the connection to the peer is established and idle. */
  probe(signal: AbortSignal): Promise<void> {
    return this.enqueue("connect", [], signal, false);
  }

  private enqueue(requestId: string, writes: readonly SlotWrite[], signal: AbortSignal, counted: boolean): Promise<void> {
    if (signal.aborted) return Promise.reject(new KvbridgeError("CANCELLED", `request ${requestId} was cancelled before its UCX writes started`));
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new KvbridgeError("UNAVAILABLE", "the UCX channel is closed; connect again"));
    let segments: Segment[];
    try {
      segments = this.segment(writes);
    } catch (err) {
      return Promise.reject(err);
    }
    if (counted) this.stats.writeAlls++;
    return new Promise<void>((resolve, reject) => {
      const job: WriteJob = {
        requestId,
        segments,
        next: 0,
        inflight: 0,
        flushing: false,
        cancelled: false,
        settled: false,
        signal,
        resolve,
        reject,
      };
      // No abort listener: the pump runs while this job has anything to post or in flight, and
      // turn() looks at the signal on every pass.
      this.jobs.push(job);
      this.pump.addSource(this);
    });
  }

  private segment(writes: readonly SlotWrite[]): Segment[] {
    const max = this.limits.maxPutBytes;
    const out: Segment[] = [];
    for (const w of writes) {
      if (!Number.isSafeInteger(w.poolOffset) || w.poolOffset < 0) {
        throw new KvbridgeError("INVALID_ARGUMENT", `slot ${w.slot}: pool offset ${w.poolOffset} is not a non-negative integer`);
      }
      if (!(w.data instanceof Uint8Array)) throw new KvbridgeError("INVALID_ARGUMENT", `slot ${w.slot}: write data is not a Buffer`);
      // Tiny typed arrays can live inside the V8 heap, where the GC may move them while UCX reads
      // them asynchronously; asking for `.buffer` moves them out of the heap for good.
      void w.data.buffer;
      const remote = this.baseAddress + BigInt(w.poolOffset);
      if (w.data.length <= max) {
        out.push({ data: w.data, remote });
        continue;
      }
      for (let off = 0; off < w.data.length; off += max) {
        const len = Math.min(max, w.data.length - off);
        out.push({ data: w.data.subarray(off, off + len), remote: remote + BigInt(off) });
      }
    }
    return out;
  }

  /** Pump hook: post puts while the window has room, settle finished jobs, watch for stalls. */
  turn(now: number, sliceDeadline: number): boolean {
    if (this.failure || this.ep === null) {
      this.pump.removeSource(this);
      return false;
    }
    if (this.tracked.size > 0 && now - this.lastProgressAt > this.limits.stallTimeoutMs) {
      this.fail(
        new KvbridgeError(
          "UNAVAILABLE",
          `UCX peer made no progress for ${Math.round(now - this.lastProgressAt)} ms with ${this.tracked.size} operations in flight; the receiver is gone or stuck (sender reconnects)`,
        ),
      );
      return true;
    }
    let did = false;
    for (const job of this.jobs) if (!job.cancelled && job.signal.aborted) job.cancelled = true;
    // Post round-robin across jobs so one large writeAll does not starve the others.
    let idleJobs = 0;
    let posted = 0;
    while (this.tracked.size < this.limits.window && idleJobs < this.jobs.length) {
      if (this.rr >= this.jobs.length) this.rr = 0;
      const job = this.jobs[this.rr]!;
      this.rr++;
      if (job.cancelled || job.next >= job.segments.length) {
        idleJobs++;
        continue;
      }
      idleJobs = 0;
      this.post(job, job.segments[job.next++]!, now);
      did = true;
      if (this.failure) return true;
      // Reading the clock costs about as much as a small put's bookkeeping: every 4th put.
      if ((++posted & 3) === 0 && performance.now() >= sliceDeadline) break;
    }
    for (let i = 0; i < this.jobs.length; i++) {
      const job = this.jobs[i]!;
      if (job.inflight > 0 || job.settled) continue;
      if (job.cancelled) {
        this.settle(job, new KvbridgeError("CANCELLED", `request ${job.requestId} was cancelled; ${job.next} of ${job.segments.length} UCX puts had been posted`));
        did = true;
      } else if (job.next >= job.segments.length && !job.flushing) {
        // Copies through the mapping are complete when made: nothing to flush.
        if (this.mapped !== null) {
          job.flushing = true;
          this.settle(job, null);
          did = true;
          continue;
        }
        this.flush(job);
        did = true;
        if (this.failure) return true;
      }
    }
    if (this.jobs.some((j) => j.settled)) this.jobs = this.jobs.filter((j) => !j.settled);
    if (this.jobs.length === 0) this.pump.removeSource(this);
    return did;
  }

  private post(job: WriteJob, seg: Segment, now: number): void {
    const { ucx } = this.worker;
    this.stats.puts++;
    this.stats.bytes += seg.data.length;
    if (this.mapped !== null) {
      // The same copy ucp_put_nbx makes through an rkey_ptr lane, without its per-put overhead.
      try {
        this.mapped.copyIn(seg.data, Number(seg.remote - this.baseAddress));
      } catch (err) {
        this.fail(err instanceof KvbridgeError ? err : new KvbridgeError("INTERNAL", `copy into the mapped pool failed: ${String(err)}`));
        return;
      }
      this.stats.immediatePuts++;
      if (this.tracked.size > 0) this.lastProgressAt = now;
      return;
    }
    const ptr = ucx.fns.ucp_put_nbx(this.ep!, seg.data, seg.data.length, seg.remote, this.rkey!, this.param);
    const r = ucx.classifyStatusPtr(ptr);
    switch (r.kind) {
      case "done":
        this.stats.immediatePuts++;
        // The peer's memory took the bytes: that is progress for the watchdog (which only looks
        // while requests are tracked).
        if (this.tracked.size > 0) this.lastProgressAt = now;
        return;
      case "failed":
        this.fail(ucxError(ucx, `UCX put of ${seg.data.length} bytes for request ${job.requestId} failed`, r.status));
        return;
      case "request":
        job.inflight++;
        this.trackRequest(r.request, seg.data, (status) => {
          job.inflight--;
          if (status !== UCS_OK) this.fail(ucxError(ucx, `UCX put of ${seg.data.length} bytes for request ${job.requestId} failed`, status));
        });
        return;
    }
  }

  private flush(job: WriteJob): void {
    const { ucx } = this.worker;
    job.flushing = true;
    const r = ucx.classifyStatusPtr(ucx.fns.ucp_ep_flush_nbx(this.ep!, this.param));
    switch (r.kind) {
      case "done":
        this.settle(job, null);
        return;
      case "failed":
        this.fail(ucxError(ucx, `flushing the UCX endpoint for request ${job.requestId} failed`, r.status));
        return;
      case "request":
        job.inflight++;
        this.trackRequest(r.request, null, (status) => {
          job.inflight--;
          if (status !== UCS_OK) {
            this.fail(ucxError(ucx, `flushing the UCX endpoint for request ${job.requestId} failed`, status));
          } else {
            // Cancelled while the flush was in flight: the bytes are there, but the caller asked to stop.
            this.settle(job, job.cancelled ? new KvbridgeError("CANCELLED", `request ${job.requestId} was cancelled`) : null);
          }
        });
        return;
    }
  }

  private trackRequest(request: UcpRequest, keep: Buffer | null, done: (status: number) => void): void {
    // The watchdog measures silence while something is in flight, not time since the last write.
    if (this.tracked.size === 0) this.lastProgressAt = performance.now();
    // `keep` is referenced by this closure until the request completes: UCX reads it until then.
    const t = this.pump.track(request, (status, now) => {
      this.tracked.delete(t);
      this.lastProgressAt = now;
      void keep;
      done(status);
    });
    this.tracked.add(t);
    if (keep) this.keepIfAbandoned.set(t, keep);
  }

  /** Buffers of tracked requests, so fail() can keep them alive after abandoning the requests. */
  private readonly keepIfAbandoned = new WeakMap<TrackedRequest, Buffer>();

  private settle(job: WriteJob, err: KvbridgeError | null): void {
    if (job.settled) return;
    job.settled = true;
    if (err) job.reject(err);
    else job.resolve();
  }

  /**
   * The endpoint is unusable: reject every write, hand in-flight requests back to UCX (keeping
   * their buffers referenced) and close the endpoint in the background (bounded).
   */
  fail(err: KvbridgeError): void {
    if (this.failure) return;
    this.failure = err;
    for (const job of this.jobs) {
      this.settle(job, job.signal.aborted ? new KvbridgeError("CANCELLED", `request ${job.requestId} was cancelled`, { cause: err }) : this.failure);
    }
    this.jobs = [];
    this.pump.removeSource(this);
    this.abandonInFlight();
    void this.closeEndpoint(true);
  }

  private abandonInFlight(): void {
    const { fns } = this.worker.ucx;
    for (const t of this.tracked) {
      this.pump.untrack(t);
      const keep = this.keepIfAbandoned.get(t);
      if (keep) this.abandoned.push(keep);
      // Released by UCX when it completes (or when the worker is destroyed).
      fns.ucp_request_free(t.request);
    }
    this.tracked.clear();
  }

  /** UCX reported the endpoint failed (error handler, called from inside worker progress). */
  endpointFailed(status: number): void {
    this.fail(ucxError(this.worker.ucx, "the UCX endpoint to the receiver failed", status, "UNAVAILABLE"));
  }

  /**
   * Closes the endpoint: force (cancel everything) when the endpoint failed and was created with
   * peer error handling, else a flush-mode close, which needs the peer. Bounded by closeTimeoutMs;
   * on timeout the endpoint is left to the worker's destruction.
   */
  private closeEndpoint(afterFailure: boolean): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = new Promise<void>((resolve) => {
      const { ucx } = this.worker;
      const ep = this.ep;
      const mappingIdle = this.mapped?.close() ?? Promise.resolve();
      if (ep === null || this.worker.closed) {
        resolve();
        return;
      }
      this.ep = null;
      const force = afterFailure && this.errorHandling === "peer";
      const finish = (completed: boolean): void => {
        clearTimeout(timer);
        if (!completed) {
          // Requests UCX still holds may use the rkey and read the abandoned buffers, so the
          // transport keeps this channel (and them) until it destroys the worker.
          resolve();
          return;
        }
        // The endpoint is gone, so no request can read a source buffer or use the rkey any more;
        // the rkey (and the mapping it holds) goes once no prefault call is running on it.
        void mappingIdle.then(() => {
          if (this.rkey !== null && !this.worker.closed) ucx.fns.ucp_rkey_destroy(this.rkey);
          this.rkey = null;
          this.abandoned = [];
          this.onClosed(this);
          resolve();
        });
      };
      const r = ucx.classifyStatusPtr(ucx.fns.ucp_ep_close_nbx(ep, ucx.requestParam(force ? { flags: UCP_EP_CLOSE_FLAG_FORCE } : {})));
      let timer: NodeJS.Timeout | undefined;
      if (r.kind !== "request") {
        finish(true);
        return;
      }
      const t = this.pump.track(r.request, () => finish(true));
      timer = setTimeout(() => {
        this.pump.untrack(t);
        if (!this.worker.closed) ucx.fns.ucp_request_free(t.request);
        finish(false);
      }, this.limits.closeTimeoutMs);
    });
    return this.closing;
  }

  /** Idempotent. Rejects writes still running (UNAVAILABLE), then closes the endpoint (bounded). */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.jobs.length > 0 || this.tracked.size > 0) {
      this.fail(new KvbridgeError("UNAVAILABLE", "the UCX channel was closed while writes were in flight"));
      return this.closing!;
    }
    return this.closeEndpoint(false);
  }

  /** For the transport's close after its worker is gone: drop what UCX released with it. */
  forget(): void {
    this.ep = null;
    this.rkey = null;
    this.abandoned = [];
    this.jobs = [];
    this.tracked.clear();
  }
}
