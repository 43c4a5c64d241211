// The store's vocabulary: its configuration, the entry and request records it keeps, and the shapes
// of what its operations take and answer. kv-store.ts is the state machine over these.

import type { EndReason } from "./end-reason.js";

export interface StoreConfig {
  slots: number;
  slotBytes: number;
  /** How long an allocating request may go without Alloc/Renew before its writes are expired. */
  leaseMs: number;
  /** How long a slot from an aborted or expired write stays unusable (late one-sided writes). */
  quarantineMs: number;
  /** How long a committed request may hold its pins without consuming (Release) them. */
  holdMs: number;
  /** Most keys in one Alloc batch. */
  maxKeysPerAlloc: number;
  /** Most chunks in one request (all batches). */
  maxChunksPerRequest: number;
  /** Most requests alive at once. */
  maxRequests: number;
  /** Source of 8-byte write tokens (random in production, deterministic in tests). */
  newToken: () => Buffer;
}

export const MAX_ID_LENGTH = 256;

export type EntryStatus =
  | { state: "writing"; owner: string; token: Buffer }
  /**
   * `writer` is the request that wrote and committed it; `proof` how its bytes were shown complete:
   * "counted" (every byte covered by the writer's admitted data-plane writes) or "verified" (the
   * Commit's caller checked the slot's bytes, for one-sided writes the receiver cannot see).
   */
  | { state: "ready"; lastUsedAt: number; writer: string; proof: "counted" | "verified" }
  | { state: "failed"; writer: string; reason: EndReason };

export type EntryState = EntryStatus["state"];

export interface Entry {
  readonly id: number;
  readonly key: string;
  readonly size: number;
  /** The slot holding the bytes; null once FAILED (the slot went to quarantine). */
  slot: number | null;
  readonly createdAt: number;
  /** Requests holding this entry (its writer included). refcount = pins.size. */
  readonly pins: Set<string>;
  status: EntryStatus;
  /** Bytes of the entry covered by its owner's admitted writes while WRITING (each byte once). */
  bytesWritten: number;
}

/** What a Commit's caller is shown of each chunk it must vouch for (index: position in the request). */
export interface ChunkToVerify {
  key: string;
  slot: number;
  size: number;
  index: number;
}

/** Proof for a chunk whose bytes the store did not see arrive: true when the slot holds them all. */
export type CommitVerifier = (chunk: ChunkToVerify) => boolean;

export type HoldRole = "writer" | "dedup";

export interface Hold {
  entryId: number;
  role: HoldRole;
}

export interface AllocResult {
  remoteIndexes: number[];
  alreadySentIndexes: number[];
  writeTokens: Buffer[];
  leaseExpiresAt: number;
}

export type RequestPhase = "allocating" | "committed";

export interface RequestRecord {
  readonly id: string;
  readonly peer: string;
  readonly createdAt: number;
  phase: RequestPhase;
  /** Allocating: writes are expired after this. */
  leaseExpiresAt: number;
  /** Committed: pins are dropped after this unless released first. */
  holdExpiresAt: number;
  readonly totalChunks: number;
  /** Slots still promised to this request's later batches. */
  reserved: number;
  lastBatchSeen: boolean;
  /** One per batch received: its content digest and the answer given, for idempotent retries. */
  readonly batches: Array<{ digest: string; result: AllocResult }>;
  /** Keys in the order they were allocated, with what this request holds on each. */
  readonly keys: string[];
  readonly holds: Map<string, Hold>;
}

export interface AllocInput {
  requestId: string;
  keys: readonly string[];
  sizes: readonly number[];
  batchSeq: number;
  /** Chunks across all batches; 0 means this batch is the whole request. */
  totalChunks: number;
  isLastBatch: boolean;
  peer?: string;
}

export type KeyState = "writing" | "ready" | "failed";

export interface CommitResult {
  ready: number;
  pending: number;
  failed: number;
  /** Bytes of the entries this call made READY (0 for a repeated Commit). */
  bytesCommitted: number;
  /** Of those, bytes that arrived through admitted data-plane writes (TCP frames). */
  bytesCounted: number;
  /** The request's first Alloc time. */
  startedAt: number;
}

export interface ReleaseSummary {
  slotsReleased: number;
  pinsReleased: number;
}

export interface SweepResult {
  expired: string[];
  holdsExpired: string[];
  quarantineReleased: number;
}

export interface StoreStats {
  slotsTotal: number;
  slotsFree: number;
  slotsWriting: number;
  slotsReady: number;
  slotsQuarantined: number;
  slotsReserved: number;
  entries: number;
  activeRequests: number;
  dedupHits: number;
  dedupMisses: number;
  leasesExpired: number;
  holdsExpired: number;
  requestsCommitted: number;
  requestsAborted: number;
  evictions: number;
  /** Bytes of entries turned READY by their writer's Commit (whatever transport moved them). */
  bytesCommitted: number;
  /** Commits refused because some chunk was neither fully written on the data plane nor verified. */
  commitsUnproven: number;
}

export interface EntryView {
  key: string;
  state: EntryState;
  refcount: number;
  pinnedBy: string[];
  slot: number | null;
  size: number;
  ageMs: number;
  leaseLeftMs: number | null;
  owner: string | null;
}

export interface RequestView {
  requestId: string;
  phase: RequestPhase;
  keysWritten: number;
  keysDeduped: number;
  keysPending: number;
  bytes: number;
  ageMs: number;
  leaseLeftMs: number;
  peer: string;
}

export type WriteAdmission =
  | { ok: true; slot: number }
  | { ok: false; code: "NOT_FOUND" | "FAILED_PRECONDITION" | "PERMISSION_DENIED" | "INVALID_ARGUMENT"; message: string };
