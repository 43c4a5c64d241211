// The receiver's side of the UCX data-plane commit: an active-message handler on the receiver's
// worker, called from ucp_worker_progress on the JavaScript thread. For each COMMIT it checks that
// the sender holds the request's allocation (a slot of it and that slot's write token, as a TCP WRITE
// frame must), commits through the CommitGate in the same synchronous step, and answers on the
// sender's endpoint (COMMIT_ACK with the counts, or NACK with code and reason).

import type { Logger } from "pino";
import { UCS_INPROGRESS, UCS_OK } from "../../../native-bindings/ucx/ucx-constants.js";
import type { UcpEp, UcpRequest } from "../../../native-bindings/ucx/ucx-library.js";
import type { RequestPhase } from "../../store/kv-store.js";
import type { CommitGate, CommitVerdict, WriteGate } from "../transport.js";
import { FrameType } from "../tcp/tcp-frame.js";
import { UCP_AM_FLAG_WHOLE_MSG, UCP_AM_RECV_ATTR_FIELD_REPLY_EP, UCP_AM_RECV_ATTR_FLAG_RNDV, UCP_AM_SEND_FLAG_EAGER, ucxAm, type UcxAm } from "./ucx-am-bindings.js";
import { decodeUcxCommit, encodeUcxCommitReply, UCX_AM_COMMIT, UCX_AM_COMMIT_REPLY } from "./ucx-commit-message.js";
import { MAX_COMMIT_PROOF_BYTES } from "../tcp/tcp-commit-frame.js";
import type { UcxWorker } from "./ucx-worker.js";

/**
 * What the UCX commit needs from the receiver (KvReceiver implements it): the commit itself, the
 * write gate's admission check (to see that the committer holds one of the request's slot tokens)
 * and the request's phase.
 */
export interface UcxCommitGate extends CommitGate {
  admit: WriteGate["admit"];
  requestPhase(requestId: string): RequestPhase | undefined;
}

export interface UcxCommitStats {
  /** COMMIT messages handled (answered or not). */
  received: number;
  committed: number;
  refused: number;
  /** Messages that could not be answered (no reply endpoint) or whose answer could not be sent. */
  unanswered: number;
}

/** Largest COMMIT message read: header, request id, proofs. */
const MAX_MESSAGE_BYTES = 32 + 256 + MAX_COMMIT_PROOF_BYTES;
/** How often answers still being sent are polled (only while some are). */
const REPLY_POLL_MS = 5;

export class UcxCommitReceiver {
  readonly stats: UcxCommitStats = { received: 0, committed: 0, refused: 0, unanswered: 0 };
  private readonly worker: UcxWorker;
  private readonly am: UcxAm;
  private readonly gate: UcxCommitGate;
  private readonly logger: Logger | undefined;
  private readonly callback: bigint;
  private readonly replyParam: Buffer;
  /** Answers UCX has not sent yet: their buffers stay referenced until the request completes. */
  private sending: Array<{ request: UcpRequest; data: Buffer }> = [];
  private pollTimer: NodeJS.Timeout | null = null;
  private closed = false;

  /** Installs the handler; throws (UNAVAILABLE via the caller) when UCX refuses it. */
  constructor(worker: UcxWorker, gate: UcxCommitGate, logger?: Logger) {
    this.worker = worker;
    this.gate = gate;
    this.logger = logger;
    this.am = ucxAm(worker.ucx);
    this.replyParam = worker.ucx.requestParam({ flags: UCP_AM_SEND_FLAG_EAGER });
    this.callback = this.am.register((_arg, _header, _headerLength, data, length, param) => this.onMessage(data, length, param));
    const st = this.am.setHandler(worker.worker, UCX_AM_COMMIT, this.callback, UCP_AM_FLAG_WHOLE_MSG);
    if (st !== UCS_OK) {
      worker.ucx.unregisterCallback(this.callback);
      throw new Error(`ucp_worker_set_am_recv_handler failed: ${worker.ucx.describeStatus(st)}`);
    }
  }

  private onMessage(data: bigint | null, length: number, paramPtr: bigint | null): number {
    if (this.closed) return UCS_OK;
    try {
      this.stats.received++;
      const param = paramPtr === null ? { recvAttr: 0n, replyEp: null } : this.am.receiveParam(paramPtr);
      // A rendezvous message (not from a kvbridge sender, which sends eager) is dropped by UCS_OK.
      if ((param.recvAttr & UCP_AM_RECV_ATTR_FLAG_RNDV) !== 0n || data === null || length > MAX_MESSAGE_BYTES) {
        this.stats.unanswered++;
        return UCS_OK;
      }
      // Without an endpoint to answer on, committing would leave the sender unknowing: do nothing;
      // its commit times out as unknown and its gRPC Commit settles the request.
      const replyEp = (param.recvAttr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP) !== 0n ? param.replyEp : null;
      if (replyEp === null) {
        this.stats.unanswered++;
        return UCS_OK;
      }
      const msg = this.worker.ucx.copyOut(data, length);
      const decoded = decodeUcxCommit(msg);
      if (!decoded.ok) {
        this.stats.refused++;
        if (decoded.seq !== null) this.answer(replyEp, decoded.seq, { ok: false, code: "INVALID_ARGUMENT", message: decoded.message });
        else this.stats.unanswered++;
        return UCS_OK;
      }
      const verdict = this.decide(decoded.commit.requestId, decoded.commit.slot, decoded.commit.token, decoded.commit.proofs);
      if (verdict.ok) this.stats.committed++;
      else this.stats.refused++;
      this.answer(replyEp, decoded.commit.seq, verdict);
    } catch (err) {
      // Never let an exception unwind into UCX's progress loop.
      this.logger?.error({ err }, "UCX commit handler failed");
    }
    return UCS_OK;
  }

  /**
   * One synchronous step: the ownership check, then the commit. A request still being written is
   * committed only by a sender holding one of its slot tokens (another peer guessing the id is
   * PERMISSION_DENIED); an ended or expired one gets the gRPC Commit's own answer (NOT_FOUND,
   * lease_expired...), which commits nothing; a committed one takes a commit only with a token of
   * one of its open repair rounds.
   */
  private decide(requestId: string, slot: number, token: Buffer, proofs: ReadonlyMap<string, number>): CommitVerdict {
    const admitted = this.gate.admit(requestId, slot, 0, 0, token);
    if (!admitted.ok) {
      const phase = this.gate.requestPhase(requestId);
      const nothingToCommit = phase === undefined || (phase === "allocating" && admitted.code === "FAILED_PRECONDITION");
      if (!nothingToCommit) {
        return {
          ok: false,
          code: "PERMISSION_DENIED",
          message: `request ${requestId} is not committed by this UCX commit: slot ${slot} with that write token is not one of its allocations (${admitted.message})`,
        };
      }
    }
    return this.gate.commitOnDataPlane(requestId, proofs);
  }

  private answer(ep: UcpEp, seq: number, verdict: CommitVerdict): void {
    const data = encodeUcxCommitReply(
      verdict.ok
        ? { type: FrameType.COMMIT_ACK, seq, ready: verdict.result.ready, pending: verdict.result.pending, failed: verdict.result.failed }
        : { type: FrameType.NACK, seq, code: verdict.code, message: verdict.message, ...(verdict.reason ? { reason: verdict.reason } : {}) },
    );
    const { ucx } = this.worker;
    const r = ucx.classifyStatusPtr(this.am.send(ep, UCX_AM_COMMIT_REPLY, data, this.replyParam));
    if (r.kind === "failed") {
      // The sender is gone or unreachable: it settles the request with the gRPC Commit.
      this.stats.unanswered++;
      this.logger?.debug({ seq, status: ucx.describeStatus(r.status) }, "UCX commit answer could not be sent");
    } else if (r.kind === "request") {
      this.sending.push({ request: r.request, data });
      this.pollSoon();
    }
  }

  private pollSoon(): void {
    if (this.pollTimer !== null || this.closed) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = null;
      this.reap();
      if (this.sending.length > 0) this.pollSoon();
    }, REPLY_POLL_MS);
    this.pollTimer.unref();
  }

  private reap(): void {
    if (this.worker.closed) return;
    const { fns } = this.worker.ucx;
    this.sending = this.sending.filter((s) => {
      if (fns.ucp_request_check_status(s.request) === UCS_INPROGRESS) return true;
      fns.ucp_request_free(s.request);
      return false;
    });
  }

  /** Idempotent: clears the handler (before the worker is destroyed) and hands pending answers to UCX. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (!this.worker.closed) {
      this.am.setHandler(this.worker.worker, UCX_AM_COMMIT, null, 0);
      for (const s of this.sending) this.worker.ucx.fns.ucp_request_free(s.request);
    }
    this.sending = [];
    this.worker.ucx.unregisterCallback(this.callback);
  }
}
