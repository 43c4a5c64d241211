// The sender's side of the UCX data-plane commit: once a request's writes are in the receiver's
// memory (copies through the mapped pool made, or puts flushed), a COMMIT active message on the
// same endpoint; the answer comes back as an active message to this worker, matched by sequence
// number. Whatever leaves the outcome open (no answer in time, the endpoint failed, the caller
// cancelled after the COMMIT left) rejects as "unknown", which the sender settles with the gRPC Commit.

import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { UCS_OK } from "../../../native-bindings/ucx/ucx-constants.js";
import type { UcpEp } from "../../../native-bindings/ucx/ucx-library.js";
import { DataPlaneCommitError, type CommitProof, type DataPlaneCommitResult } from "../transport.js";
import type { ErrorCode, ReasonKind } from "../../errors/kvbridge-error.js";
import { FrameType } from "../tcp/tcp-frame.js";
import { UCP_AM_FLAG_WHOLE_MSG, UCP_AM_SEND_FLAG_EAGER, UCP_AM_SEND_FLAG_REPLY, ucxAm, type UcxAm } from "./ucx-am-bindings.js";
import { decodeUcxCommitReply, encodeUcxCommit, UCX_AM_COMMIT, UCX_AM_COMMIT_REPLY } from "./ucx-commit-message.js";
import type { PumpSource, RequestPump } from "./ucx-request-pump.js";
import { ucxError } from "./ucx-status.js";
import type { UcxWorker } from "./ucx-worker.js";

/** The channel a COMMIT travels on, as this module sees it. */
export interface CommitChannel {
  readonly broken: boolean;
  /** The endpoint, or null once the channel failed or closed. */
  readonly endpoint: UcpEp | null;
  /** Marks the channel unusable (an AM send failed on its endpoint). */
  fail(err: KvbridgeError): void;
  /** Called with every answer this channel's COMMITs get, and once when one went unanswered. */
  commitAnswered(answered: boolean): void;
}

/** A COMMIT encoded and numbered, not sent yet. */
export interface PreparedCommit {
  requestId: string;
  seq: number;
  message: Buffer;
}

/** One COMMIT that left: settled once, by its answer or by losing it (outcome unknown). */
class SentCommit {
  readonly requestId: string;
  readonly promise: Promise<DataPlaneCommitResult>;
  private resolveFn!: (r: DataPlaneCommitResult) => void;
  private rejectFn!: (err: KvbridgeError) => void;

  constructor(requestId: string) {
    this.requestId = requestId;
    this.promise = new Promise<DataPlaneCommitResult>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
  }

  committed(result: DataPlaneCommitResult): void {
    this.resolveFn(result);
  }

  refused(code: ErrorCode, message: string, reason: ReasonKind | undefined): void {
    this.rejectFn(new DataPlaneCommitError("refused", code, message, reason ? { details: { reason } } : undefined));
  }

  lost(err: KvbridgeError): void {
    this.rejectFn(new DataPlaneCommitError("unknown", err.code, `commit of request ${this.requestId} sent but not answered: ${err.message}`, { cause: err }));
  }
}

interface Waiting {
  commit: SentCommit;
  channel: CommitChannel;
  deadline: number;
  signal: AbortSignal;
}

export class UcxCommitSender implements PumpSource {
  private readonly worker: UcxWorker;
  private readonly pump: RequestPump;
  private readonly am: UcxAm;
  private readonly replyTimeoutMs: number;
  private readonly sendParam: Buffer;
  private readonly callback: bigint;
  private readonly waiting = new Map<number, Waiting>();
  private nextSeq = 1;
  private closed = false;

  constructor(worker: UcxWorker, pump: RequestPump, replyTimeoutMs: number) {
    this.worker = worker;
    this.pump = pump;
    this.replyTimeoutMs = replyTimeoutMs;
    this.am = ucxAm(worker.ucx);
    // REPLY: the receiver answers on the endpoint the COMMIT came from. EAGER: never rendezvous,
    // so the receiver gets the whole message inside its handler.
    this.sendParam = worker.ucx.requestParam({ flags: UCP_AM_SEND_FLAG_REPLY | UCP_AM_SEND_FLAG_EAGER });
    this.callback = this.am.register((_arg, _header, _headerLength, data, length) => {
      if (data !== null && length > 0 && length <= 4096) this.onAnswer(this.worker.ucx.copyOut(data, length));
      return UCS_OK;
    });
    const st = this.am.setHandler(worker.worker, UCX_AM_COMMIT_REPLY, this.callback, UCP_AM_FLAG_WHOLE_MSG);
    if (st !== UCS_OK) {
      worker.ucx.unregisterCallback(this.callback);
      throw ucxError(worker.ucx, "installing the UCX commit answer handler (ucp_worker_set_am_recv_handler) failed", st, "UNAVAILABLE");
    }
  }

  /** Encodes a COMMIT (before the writes, so a commit that cannot be encoded costs no write). Throws INVALID_ARGUMENT. */
  prepare(requestId: string, slot: number, token: Buffer, proofs: readonly CommitProof[]): PreparedCommit {
    const seq = this.nextSeq;
    this.nextSeq = this.nextSeq >= 0xffffffff ? 1 : this.nextSeq + 1;
    return { requestId, seq, message: encodeUcxCommit(requestId, seq, slot, token, proofs) };
  }

  /**
   * Sends a prepared COMMIT on `channel` (its writes are all in the receiver's memory) and resolves
   * with the receiver's counts. A COMMIT that could not leave rejects with a plain KvbridgeError (the
   * request is not committed); after it left, rejections are DataPlaneCommitError.
   */
  send(channel: CommitChannel, prepared: PreparedCommit, signal: AbortSignal): Promise<DataPlaneCommitResult> {
    const { requestId, seq, message } = prepared;
    if (this.closed) return Promise.reject(new KvbridgeError("UNAVAILABLE", "the UCX sender transport is closed"));
    if (signal.aborted) return Promise.reject(new KvbridgeError("CANCELLED", `request ${requestId} was cancelled before its UCX commit was sent`));
    const ep = channel.endpoint;
    if (ep === null || channel.broken) return Promise.reject(new KvbridgeError("UNAVAILABLE", `the UCX channel failed before the commit of request ${requestId} was sent`));
    const { ucx } = this.worker;
    const r = ucx.classifyStatusPtr(this.am.send(ep, UCX_AM_COMMIT, message, this.sendParam));
    if (r.kind === "failed") {
      const err = ucxError(ucx, `sending the UCX commit of request ${requestId} failed`, r.status, "UNAVAILABLE");
      channel.fail(err);
      return Promise.reject(err);
    }
    const commit = new SentCommit(requestId);
    if (r.kind === "request") {
      // `message` is read until the send completes: the closure keeps it referenced until then.
      this.pump.track(r.request, (status) => {
        void message;
        if (status !== UCS_OK) this.lose(seq, ucxError(ucx, `the UCX commit of request ${requestId} was not delivered`, status, "UNAVAILABLE"));
      });
    }
    this.waiting.set(seq, { commit, channel, deadline: performance.now() + this.replyTimeoutMs, signal });
    this.pump.addSource(this);
    return commit.promise;
  }

  private onAnswer(msg: Buffer): void {
    let reply: ReturnType<typeof decodeUcxCommitReply>;
    try {
      reply = decodeUcxCommitReply(msg);
    } catch {
      return; // Not an answer we can read: the COMMIT it answers times out as unknown.
    }
    const w = this.waiting.get(reply.seq);
    if (!w) return; // Late (already timed out as unknown, and settled over gRPC).
    this.waiting.delete(reply.seq);
    w.channel.commitAnswered(true);
    if (reply.type === FrameType.COMMIT_ACK) w.commit.committed({ ready: reply.ready, pending: reply.pending, failed: reply.failed });
    else if (reply.type === FrameType.NACK) w.commit.refused(reply.code, reply.message, reply.reason);
  }

  private lose(seq: number, err: KvbridgeError): void {
    const w = this.waiting.get(seq);
    if (!w) return;
    this.waiting.delete(seq);
    w.commit.lost(err);
  }

  /** Pump hook: ends COMMITs whose answer can no longer come (deadline, failed channel, cancel). */
  turn(now: number): boolean {
    for (const [seq, w] of this.waiting) {
      if (w.signal.aborted) this.lose(seq, new KvbridgeError("CANCELLED", `request ${w.commit.requestId} was cancelled while its UCX commit awaited an answer`));
      else if (w.channel.broken) this.lose(seq, new KvbridgeError("UNAVAILABLE", `the UCX channel failed while the commit of request ${w.commit.requestId} awaited an answer`));
      else if (now >= w.deadline) {
        w.channel.commitAnswered(false);
        this.lose(seq, new KvbridgeError("DEADLINE_EXCEEDED", `no answer to the UCX commit of request ${w.commit.requestId} within ${this.replyTimeoutMs} ms`));
      }
    }
    if (this.waiting.size === 0) this.pump.removeSource(this);
    return false;
  }

  /** Idempotent: every COMMIT still waiting is unknown; the handler is cleared (before the worker goes). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const seq of [...this.waiting.keys()]) this.lose(seq, new KvbridgeError("UNAVAILABLE", "the UCX sender transport closed"));
    this.pump.removeSource(this);
    if (!this.worker.closed) this.am.setHandler(this.worker.worker, UCX_AM_COMMIT_REPLY, null, 0);
    this.worker.ucx.unregisterCallback(this.callback);
  }
}
