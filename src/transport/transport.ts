// The Transport contract: how a sender places chunk bytes into a receiver's slots, and how a
// receiver exposes its pool. TCP (node:net) and UCX (koffi) implement it; neither knows the store.

import type { ErrorCode } from "../errors/kvbridge-error.js";

export type TransportKind = "tcp" | "ucx";

/** What a receiver advertises for one transport in its Hello answer. */
export type DataPlaneOffer =
  | { kind: "tcp"; host: string; port: number }
  | { kind: "ucx"; workerAddress: Buffer; rkey: Buffer; baseAddress: bigint };

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

/** A connection (or UCX endpoint) from one sender to one receiver. */
export interface SenderChannel {
  readonly kind: TransportKind;
  /**
   * Places every write into its slot. Resolves only once all bytes are in the receiver's memory
   * (acknowledged on TCP, flushed on UCX), so a Commit sent after it never exposes a partial chunk.
   * Rejects with a KvbridgeError; rejects with CANCELLED when `signal` fires.
   */
  writeAll(requestId: string, writes: readonly SlotWrite[], signal: AbortSignal): Promise<void>;
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
}

/** A receiver's data plane for one transport. */
export interface ReceiverDataPlane {
  readonly kind: TransportKind;
  offer(): DataPlaneOffer;
  /** Idempotent; closes listeners and connections. */
  close(): Promise<void>;
}
