// The receiver's vocabulary: its options, the answer of a request's key states, and the typed events
// it publishes (metrics and the decode role listen to them instead of reaching into the store).

import type { Logger } from "pino";
import type { PoolMemory } from "../memory/pool-memory.js";
import type { Clock } from "../store/clock.js";
import type { EndReason } from "../store/end-reason.js";
import type { KeyState } from "../store/kv-store.js";
import type { TransportKind } from "../transport/transport.js";

export interface ReceiverOptions {
  memory: PoolMemory;
  leaseMs: number;
  quarantineMs: number;
  /** How long a committed request may keep its pins without consuming them (default DEFAULT_HOLD_MS). */
  holdMs?: number;
  maxKeysPerAlloc?: number;
  maxChunksPerRequest?: number;
  maxRequests?: number;
  /** Model compatibility fingerprint; empty accepts raw (engine-less) senders only. setFingerprints() changes the set. */
  fingerprint: string;
  nodeId: string;
  clock?: Clock;
  logger?: Logger;
}

/** A data plane the node has but does not offer, and why (HelloResponse.not_offered, kvctl status). */
export interface NotOffered {
  transport: TransportKind;
  /** ucx_not_direct, ucx_unavailable, not_selected (docs/protocol.md, TransportNotOffered). */
  reason: string;
  message: string;
}

export interface KeyStatesResult {
  allReady: boolean;
  anyFailed: boolean;
  keys: Array<{ key: string; state: KeyState }>;
}

/** A request's first Commit: what it wrote and how long its transfer took. */
export interface CommittedEvent {
  requestId: string;
  /** Bytes this Commit made READY (0 when every chunk was deduped). */
  bytes: number;
  /** Of those, bytes that arrived over the TCP data plane; the rest came by one-sided UCX puts. */
  viaTcpBytes: number;
  /** From the request's first Alloc to this Commit. */
  seconds: number;
}

/**
 * What a receiver publishes (receiver.events.on("committed", ...)). Listeners run synchronously inside
 * the receiver's step and must not throw.
 */
export interface ReceiverEventMap {
  committed: [CommittedEvent];
  /** An explicit abort: by its sender, an admin, a lost data connection, or a decode that gave up. */
  aborted: [{ requestId: string; reason: EndReason }];
  /** Its lease ran out and the sweeper released it. */
  expired: [{ requestId: string }];
  /** It left the store, however (released, aborted, expired, hold expired, refused at Commit). */
  ended: [{ requestId: string }];
}
