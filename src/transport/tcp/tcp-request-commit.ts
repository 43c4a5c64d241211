// The sender's bookkeeping for one COMMIT frame: whether it left (handed to the socket), and how it
// ended: COMMIT_ACK (committed), NACK (refused: final), or no answer once sent (outcome unknown, the
// sender settles it with the gRPC Commit). A frame that never left rejects with its writes' failure.

import { KvbridgeError, type ErrorCode, type ReasonKind } from "../../errors/kvbridge-error.js";
import { DataPlaneCommitError, type DataPlaneCommitResult } from "../transport.js";
import type { RequestWrite } from "./tcp-request-write.js";

export class PendingCommit {
  readonly requestId: string;
  /** The writes the commit follows: when they fail before the frame left, the frame is never sent. */
  readonly write: RequestWrite;
  readonly promise: Promise<DataPlaneCommitResult>;
  private sentFlag = false;
  private done = false;
  private resolveFn!: (r: DataPlaneCommitResult) => void;
  private rejectFn!: (err: KvbridgeError) => void;

  constructor(requestId: string, write: RequestWrite) {
    this.requestId = requestId;
    this.write = write;
    this.promise = new Promise<DataPlaneCommitResult>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
  }

  get sent(): boolean {
    return this.sentFlag;
  }

  get settled(): boolean {
    return this.done;
  }

  /** The frame was handed to the socket: from now on a missing answer leaves the outcome unknown. */
  markSent(): void {
    this.sentFlag = true;
  }

  committed(result: DataPlaneCommitResult): void {
    if (this.done) return;
    this.done = true;
    this.resolveFn(result);
  }

  refused(code: ErrorCode, message: string, reason: ReasonKind | undefined): void {
    if (this.done) return;
    this.done = true;
    this.rejectFn(new DataPlaneCommitError("refused", code, message, reason ? { details: { reason } } : undefined));
  }

  /**
   * No answer will come (connection died, stalled, protocol error, cancel). Sent: outcome unknown.
   * Not sent: the request is simply not committed; the caller sees `err` as after a failed write.
   */
  lost(err: KvbridgeError): void {
    if (this.done) return;
    this.done = true;
    if (this.sentFlag) {
      this.rejectFn(
        new DataPlaneCommitError("unknown", err.code, `commit of request ${this.requestId} sent but not answered: ${err.message}`, { cause: err }),
      );
    } else {
      this.rejectFn(err);
    }
  }
}
