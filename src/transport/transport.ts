// The Transport contract: how a sender places chunk bytes into a receiver's slots, and how a
// receiver exposes its pool. TCP (node:net) and UCX (koffi) implement it; neither knows the store.
// A transport may also carry a request's Commit after its last write (the data-plane commit,
// negotiated in Hello as `data_plane_commit`); one that does not leaves it to the gRPC Commit.

import { KvbridgeError, type ErrorCode, type ErrorDetails, type ReasonKind } from "../errors/kvbridge-error.js";

export type TransportKind = "tcp" | "ucx";

/** What a receiver advertises for one transport in its Hello answer. */
export type DataPlaneOffer =
  | { kind: "tcp"; host: string; port: number }
  | {
      kind: "ucx";
      workerAddress: Buffer;
      rkey: Buffer;
      baseAddress: bigint;
      /** The receiver's UCX plane takes COMMIT messages (known to the receiver only; never on the wire). */
      takesCommits?: boolean;
    };

/** Whether a receiver offering these data planes takes commits on one of them (TCP always does). */
export function offersDataPlaneCommit(offers: readonly DataPlaneOffer[]): boolean {
  return offers.some((o) => o.kind === "tcp" || o.takesCommits === true);
}

/** One chunk to place into one remote slot. */
export interface SlotWrite {
  /** Slot index in the receiver's pool. */
  slot: number;
  /** Byte offset of the slot from the pool's base (slot * slotBytes). */
  poolOffset: number;
  /** The allocation's write token (8 bytes), checked by the receiver on TCP. */
  token: Buffer;
  /** The chunk's bytes; length <= slot size. Must stay untouched until writeAll settles. */
  data: Buffer;
}

/**
 * Proof of one chunk written by one-sided puts (the receiver never saw its bytes arrive): the CRC-32
 * (ISO-HDLC, zlib's) of exactly the bytes put into the chunk's slot. Same meaning as the gRPC
 * CommitRequest's ChunkProof; chunks whose bytes arrived on the TCP data plane need none.
 */
export interface CommitProof {
  key: string;
  crc32: number;
}

/** What a data-plane commit answers: the gRPC CommitResponse's counts for the request. */
export interface DataPlaneCommitResult {
  /** Keys of the request READY now. */
  ready: number;
  /** Deduped keys another request is still writing. */
  pending: number;
  /** Deduped keys whose writer failed (the sender may repair them). */
  failed: number;
}

/**
 * What a failed data-plane commit leaves the sender knowing:
 * - "refused": the receiver answered and did not commit. The error's code and details.reason are
 *   those the gRPC Commit would have given (FAILED_PRECONDITION lease_expired or commit_unproven,
 *   NOT_FOUND for an ended request...); `remote` is true. Final.
 * - "unknown": the commit left the sender but no answer came (connection lost, no reply in time, the
 *   caller cancelled meanwhile): the receiver may or may not have committed. The sender settles it
 *   with the gRPC Commit, which is idempotent once committed and says how the request ended otherwise.
 */
export type DataPlaneCommitOutcome = "refused" | "unknown";

/** The rejection of writeAndCommit once its commit has left the sender (see DataPlaneCommitOutcome). */
export class DataPlaneCommitError extends KvbridgeError {
  readonly outcome: DataPlaneCommitOutcome;
  constructor(outcome: DataPlaneCommitOutcome, code: ErrorCode, message: string, options?: { cause?: unknown; details?: ErrorDetails }) {
    super(code, message, { ...options, remote: outcome === "refused" });
    this.name = "DataPlaneCommitError";
    this.outcome = outcome;
  }
}

/** A connection (or UCX endpoint) from one sender to one receiver. */
export interface SenderChannel {
  readonly kind: TransportKind;
  /**
   * Places every write into its slot. Resolves only once all bytes are in the receiver's memory
   * (acknowledged on TCP, flushed on UCX), so a Commit sent after it never exposes a partial chunk.
   * Rejects with a KvbridgeError; rejects with CANCELLED when `signal` fires.
   */
  writeAll(requestId: string, writes: readonly SlotWrite[], signal: AbortSignal): Promise<void>;
  /**
   * Optional data-plane commit: places `writes` like writeAll, then commits the request on this
   * channel once every byte of it (these writes and those of earlier writeAll calls for the request)
   * is in the receiver's memory, with no gRPC call. The receiver commits exactly as the gRPC Commit
   * with `proofs` would (all or none, only proven chunks; idempotent once committed; on a committed
   * request it commits its open repair rounds), deciding and acting in one synchronous step.
   * - Used only when the handshake negotiated `data_plane_commit`; a channel without the method, or a
   *   peer that did not negotiate it, gets writeAll and then the gRPC Commit (the fallback).
   * - `writes` must not be empty: a receiver takes a request's data-plane commit only on a channel
   *   that carried some of its writes (TCP: the very connection the commit travels on), so a request
   *   whose chunks were all deduped commits over gRPC.
   * - Resolves with the commit's counts (what CommitResponse carries).
   * - Rejects with DataPlaneCommitError when every write is in the receiver's memory but the commit
   *   failed ("refused": final; "unknown": no answer, settle with the gRPC Commit). Any other
   *   KvbridgeError means the writes failed (refused, connection cut or stalled, CANCELLED): handled
   *   exactly as after a failed writeAll (the caller aborts the request; a commit that may have
   *   reached the receiver behind them is ended by that abort too, never left half).
   * - `writes` stay untouched by the caller until the promise settles, as for writeAll.
   */
  writeAndCommit?(
    requestId: string,
    writes: readonly SlotWrite[],
    proofs: readonly CommitProof[],
    signal: AbortSignal,
  ): Promise<DataPlaneCommitResult>;
  /** True once the channel is unusable (peer gone); the sender then reconnects. */
  readonly broken: boolean;
  /** Idempotent. */
  close(): Promise<void>;
}

export interface SenderTransport {
  readonly kind: TransportKind;
  connect(offer: DataPlaneOffer, signal: AbortSignal): Promise<SenderChannel>;
  /** Idempotent. */
  close(): Promise<void>;
}

export type AdmitResult =
  | { ok: true; target: Buffer }
  | { ok: false; code: ErrorCode; message: string };

/** A receiver's answer to a data-plane commit: the counts, or why it did not commit (as the gRPC Commit says it). */
export type CommitVerdict =
  | { ok: true; result: DataPlaneCommitResult }
  | { ok: false; code: ErrorCode; reason?: ReasonKind; message: string };

/**
 * Receiver side of the data-plane commit, implemented by the transfer layer over the store. One
 * synchronous call decides and commits (no await between): the same step as the gRPC Commit with
 * `proofs` (CRC-32 by key). A data plane calls it only for a request that wrote through the same
 * channel (TCP: an admitted WRITE frame on the connection); anything else it refuses itself.
 */
export interface CommitGate {
  commitOnDataPlane(requestId: string, proofs: ReadonlyMap<string, number>): CommitVerdict;
}

/**
 * Receiver side gate for writes that arrive by frame (TCP). Implemented by the transfer layer over the
 * store; each call is one synchronous decision, so no frame can land in a slot it was not allocated.
 */
export interface WriteGate {
  /** Checks one frame header against the allocation it claims; returns the exact destination view. */
  admit(requestId: string, slot: number, offsetInSlot: number, length: number, token: Buffer): AdmitResult;
  /**
   * A frame's payload is fully in memory: `length` bytes at `offsetInSlot` (the range its header was
   * admitted for). The receiver counts which bytes of each allocation arrived, each byte once.
   */
  written(requestId: string, slot: number, length: number, offsetInSlot: number): void;
  /** A data connection ended while these requests had frames on it. */
  connectionLost(requestIds: ReadonlySet<string>, reason: string): void;
  /**
   * Optional: calls `listener` synchronously whenever an admission may have lapsed where it matters:
   * slots were handed to a request (possibly slots an ended request held) or a request committed.
   * A data plane whose payload reads outlive one admission (a frame arriving slowly) re-checks them
   * then, before another byte lands. Returns the unsubscribe function.
   */
  watchAdmissions?(listener: () => void): () => void;
  /** Optional: the data-plane commit (COMMIT frames); without it such frames are refused UNAVAILABLE. */
  commitOnDataPlane?: CommitGate["commitOnDataPlane"];
}

/** A receiver's data plane for one transport. */
export interface ReceiverDataPlane {
  readonly kind: TransportKind;
  offer(): DataPlaneOffer;
  /** Idempotent; closes listeners and connections. */
  close(): Promise<void>;
}
