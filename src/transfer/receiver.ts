// The receiving side of a transfer: the pure store plus what it cannot do itself: the pool memory,
// the single lease sweeper, waiters for READY keys, and the write gate the TCP data plane asks before
// any byte lands. Every store call here is one synchronous step; awaits happen only around them.
// It is the boundary of the store: nobody else touches it; services, health and metrics ask the
// receiver's queries and listen to its typed events. A request's repair rounds (repair-groups.ts)
// are answered for under the request's own id.

import { createHash, randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import { DEFAULT_HOLD_MS } from "../config/defaults.js";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import type { PoolMemory } from "../memory/pool-memory.js";
import { type Clock, systemClock } from "../store/clock.js";
import { describeEndReason, type EndReason } from "../store/end-reason.js";
import { checkInvariants } from "../store/invariants.js";
import {
  type AllocInput,
  type AllocResult,
  type CommitResult,
  type EntryState,
  type EntryView,
  type KeyState,
  KvStore,
  type ReleaseSummary,
  type RequestPhase,
  type RequestView,
  type StoreConfig,
  type StoreStats,
} from "../store/kv-store.js";
import type { AdmitResult, CommitGate, CommitVerdict, DataPlaneOffer, WriteGate } from "../transport/transport.js";
import { proofVerifier } from "./commit-proof.js";
import { ChangeWaiters } from "./change-waiters.js";
import { LeaseSweeper } from "./lease-sweeper.js";
import type { CommittedEvent, KeyStatesResult, NotOffered, ReceiverEventMap, ReceiverOptions } from "./receiver-types.js";
import { MAX_REPAIR_ROUNDS, RepairGroups } from "./repair-groups.js";
import { WriteTokenSource } from "./write-tokens.js";

export type { CommittedEvent, KeyStatesResult, NotOffered, ReceiverEventMap, ReceiverOptions } from "./receiver-types.js";

export const DEFAULT_MAX_KEYS_PER_ALLOC = 1024;

export class KvReceiver implements WriteGate, CommitGate {
  private readonly store: KvStore;
  readonly memory: PoolMemory;
  readonly nodeId: string;
  private fingerprintSet: ReadonlySet<string>;
  /** requestId -> the fingerprint its KV was allocated under; dropped when the request ends. */
  private readonly requestFingerprints = new Map<string, string>();
  /** New every process start: senders drop cached slot addresses and rkeys when it changes. */
  readonly generation: number;
  readonly leaseMs: number;
  readonly maxKeysPerAlloc: number;
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private readonly sweeper: LeaseSweeper;
  /** Woken whenever a key or request changes state; awaitReady waits on it. */
  private readonly changes = new ChangeWaiters();
  private readonly admissionWatchers = new Set<() => void>();
  private offers: DataPlaneOffer[] = [];
  private notOffered: NotOffered[] = [];
  /** Commits that arrived on the data plane (COMMIT frames) rather than by the gRPC Commit, refused ones included. */
  private dataPlaneCommits = 0;
  private readonly repairs = new RepairGroups();
  private closed = false;
  readonly events = new EventEmitter<ReceiverEventMap>();

  constructor(opts: ReceiverOptions) {
    this.memory = opts.memory;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger;
    this.nodeId = opts.nodeId;
    this.fingerprintSet = new Set([opts.fingerprint]);
    this.events.on("ended", ({ requestId }) => this.requestFingerprints.delete(requestId));
    this.leaseMs = opts.leaseMs;
    this.maxKeysPerAlloc = opts.maxKeysPerAlloc ?? DEFAULT_MAX_KEYS_PER_ALLOC;
    // Milliseconds since the epoch times 1024 plus randomness stays below 2^53 and differs per start.
    this.generation = Date.now() * 1024 + randomBytes(2).readUInt16LE(0) % 1024;
    const tokens = new WriteTokenSource();
    const config: StoreConfig = {
      slots: opts.memory.slots,
      slotBytes: opts.memory.slotBytes,
      leaseMs: opts.leaseMs,
      quarantineMs: opts.quarantineMs,
      holdMs: opts.holdMs ?? DEFAULT_HOLD_MS,
      maxKeysPerAlloc: this.maxKeysPerAlloc,
      maxChunksPerRequest: opts.maxChunksPerRequest ?? 65_536,
      maxRequests: opts.maxRequests ?? 4096,
      newToken: () => tokens.take(),
    };
    this.store = new KvStore(config);
    this.sweeper = new LeaseSweeper({
      intervalMs: Math.max(10, Math.min(1000, Math.floor(Math.min(opts.leaseMs, opts.quarantineMs || opts.leaseMs) / 4))),
      sweep: () => this.sweepNow(),
    });
    this.sweeper.start();
  }

  /** Requests the store holds now, in O(1) (stats() walks every entry): read on every request's end. */
  get activeRequests(): number {
    return this.store.counts().activeRequests;
  }

  /** KV bytes received and committed, over any transport (UCX puts are invisible until Commit). */
  get bytesReceived(): number {
    return this.store.counts().bytesCommitted;
  }

  /**
   * The fingerprints senders may use, joined with "," ("" for raw transfers): one per model the node
   * serves now (docs/models.md); for reports, not for checks (accepts() is the check).
   */
  get fingerprint(): string {
    return [...this.fingerprintSet].join(",");
  }

  /** The fingerprints senders may use now. */
  get fingerprints(): ReadonlySet<string> {
    return this.fingerprintSet;
  }

  /** Whether KV made under `fingerprint` may be sent here now. */
  accepts(fingerprint: string): boolean {
    return this.fingerprintSet.has(fingerprint);
  }

  /**
   * Sets the fingerprint once the engine has loaded (the node serves health and inspection while it
   * loads). Only before any request exists: keys already stored were made under the old one.
   */
  setFingerprint(fingerprint: string): void {
    const n = this.store.counts();
    if (n.entries > 0 || n.activeRequests > 0) {
      throw new KvbridgeError("FAILED_PRECONDITION", "the fingerprint cannot change once the store holds entries");
    }
    this.fingerprintSet = new Set([fingerprint]);
  }

  /**
   * The fingerprints of the models a node serves now (several models: they change as models load and
   * unload). Entries stay: chunk keys are per fingerprint, so KV of one model is never another's.
   */
  setFingerprints(fingerprints: Iterable<string>): void {
    this.fingerprintSet = new Set(fingerprints);
  }

  /** The fingerprint request `requestId`'s KV was allocated under (its first Alloc's); undefined when unknown. */
  requestFingerprint(requestId: string): string | undefined {
    return this.store.hasRequest(requestId) ? this.requestFingerprints.get(requestId) : undefined;
  }

  /** The data planes senders may use, and those the node has but does not offer, with why (Hello, kvctl status). */
  setOffers(offers: DataPlaneOffer[], notOffered: NotOffered[] = []): void {
    this.offers = offers;
    this.notOffered = notOffered;
  }

  getOffers(): readonly DataPlaneOffer[] {
    return this.offers;
  }

  getNotOffered(): readonly NotOffered[] {
    return this.notOffered;
  }

  /** How many commits arrived on the data plane (COMMIT frames) instead of the gRPC Commit. */
  get commitsOnDataPlane(): number {
    return this.dataPlaneCommits;
  }

  now(): number {
    return this.clock();
  }

  // ------------------------------------------------------------ control plane

  /** `fingerprint`: the sender's, remembered for the request (requestFingerprint). */
  alloc(input: AllocInput, fingerprint?: string): AllocResult {
    this.assertOpen();
    const res = this.ending(input.requestId, () => this.store.alloc(input, this.clock()));
    if (fingerprint !== undefined && !this.requestFingerprints.has(input.requestId) && this.store.hasRequest(input.requestId)) {
      // Bounded: an entry whose request ended without an "ended" event is dropped here.
      if (this.requestFingerprints.size >= 2 * (this.store.counts().activeRequests + 64)) {
        for (const id of this.requestFingerprints.keys()) if (!this.store.hasRequest(id)) this.requestFingerprints.delete(id);
      }
      this.requestFingerprints.set(input.requestId, fingerprint);
    }
    // The slots may have belonged to an ended request whose frame is still arriving: the TCP data
    // plane re-checks such frames now, before the new owner can even learn the slots.
    if (res.remoteIndexes.length > 0) this.admissionsChanged();
    return res;
  }

  /**
   * Repair round `round` of a committed request: allocates again, for this request, keys it deduped
   * whose writer failed, so its sender writes them itself (then Commits again). Each key absent now
   * gets a slot; one another request re-created meanwhile is deduped again. Idempotent per round.
   */
  repairAlloc(input: AllocInput & { round: number }): AllocResult {
    this.assertOpen();
    const { requestId: parent, round } = input;
    if (!Number.isInteger(round) || round < 1 || round > MAX_REPAIR_ROUNDS) {
      throw new KvbridgeError("INVALID_ARGUMENT", `repair_round must be 1..${MAX_REPAIR_ROUNDS}, got ${round}`, { details: { param: "repair_round" } });
    }
    const phase = this.store.requestPhase(parent);
    if (phase === undefined) this.keyStates(parent); // throws NOT_FOUND, saying how it ended
    if (phase !== "committed") {
      throw new KvbridgeError("FAILED_PRECONDITION", `request ${parent} is not committed; a repair Alloc follows the request's Commit`, {
        details: { reason: "repair_invalid", param: "repair_round" },
      });
    }
    let id = this.repairs.round(parent, round);
    if (!id) {
      // A new round may only take keys this request holds and that failed: nobody else's keys.
      const states = new Map((this.mergedStates(parent) ?? []).map((s) => [s.key, s.state]));
      for (const key of input.keys) {
        const st = states.get(key);
        if (st !== "failed") {
          throw new KvbridgeError(
            "FAILED_PRECONDITION",
            `key ${key} ${st ? `of request ${parent} is ${st}` : `is not a key of request ${parent}`}; a repair Alloc takes only the request's failed keys`,
            { details: { reason: "repair_invalid", param: "keys" } },
          );
        }
      }
      id = this.repairs.newId(parent, round);
    }
    const res = this.store.alloc({ ...input, requestId: id, batchSeq: 0, totalChunks: 0, isLastBatch: true }, this.clock());
    this.repairs.add(parent, round, id);
    if (res.remoteIndexes.length > 0) this.admissionsChanged();
    this.logger?.info({ requestId: parent, round, keys: input.keys.length, allocated: res.remoteIndexes.length }, "repair round: deduped keys whose writer failed are written again by this request");
    return res;
  }

  /**
   * Commits the request (or, once it is committed, its open repair rounds). A chunk becomes READY
   * only when the data plane counted all its bytes or `proofs` (key -> CRC-32 of the bytes put)
   * matches its slot; otherwise nothing of that request becomes READY and it ends (commit_unproven).
   */
  commit(requestId: string, proofs: ReadonlyMap<string, number> = new Map()): CommitResult {
    this.assertOpen();
    try {
      const verify = proofVerifier(this.memory, proofs);
      const phase = this.store.requestPhase(requestId);
      const ids = phase === "committed" ? this.repairs.repairsOf(requestId).filter((id) => this.store.requestPhase(id) === "allocating") : [requestId];
      let last: CommitResult | undefined;
      for (const id of ids) {
        last = this.ending(id, () => this.store.commit(id, this.clock(), verify));
        const seconds = Math.max(0, this.clock() - last.startedAt) / 1000;
        this.events.emit("committed", { requestId, bytes: last.bytesCommitted, viaTcpBytes: last.bytesCounted, seconds });
      }
      if (last && ids.length === 1 && ids[0] === requestId) return last;
      // Repeated Commit, or repairs committed: the counts of the request as its group answers them.
      const res = last ?? this.store.commit(requestId, this.clock(), verify);
      const states = this.mergedStates(requestId) ?? [];
      return {
        ...res,
        ready: states.filter((s) => s.state === "ready").length,
        pending: states.filter((s) => s.state === "writing").length,
        failed: states.filter((s) => s.state === "failed").length,
      };
    } finally {
      // READY bytes must not change any more, even under a frame its sender did not finish.
      this.admissionsChanged();
      this.changes.wake();
    }
  }

  /**
   * CommitGate: a COMMIT frame's commit, answered as the gRPC Commit would be (same step, same
   * errors, carried as a verdict the data plane sends back as COMMIT_ACK or NACK).
   */
  commitOnDataPlane(requestId: string, proofs: ReadonlyMap<string, number>): CommitVerdict {
    this.dataPlaneCommits++;
    try {
      const r = this.commit(requestId, proofs);
      return { ok: true, result: { ready: r.ready, pending: r.pending, failed: r.failed } };
    } catch (err) {
      const e = toKvbridgeError(err);
      return { ok: false, code: e.code, reason: e.details.reason, message: e.message };
    }
  }

  abort(requestId: string, reason: EndReason): ReleaseSummary {
    const res = this.store.abort(requestId, reason, this.clock());
    this.endRepairs(requestId, reason);
    this.logger?.info({ requestId, reason: describeEndReason(reason), kind: reason.kind, ...res }, "request aborted");
    this.events.emit("aborted", { requestId, reason });
    this.events.emit("ended", { requestId });
    this.changes.wake();
    return res;
  }

  release(requestId: string): ReleaseSummary {
    const res = this.store.release(requestId, this.clock());
    this.endRepairs(requestId, { kind: "released" });
    this.events.emit("ended", { requestId });
    this.changes.wake();
    return res;
  }

  renew(requestId: string): number {
    this.assertOpen();
    try {
      const until = this.ending(requestId, () => this.store.renew(requestId, this.clock()));
      for (const id of this.repairs.repairsOf(requestId)) {
        // A round that expired already failed its keys; the request itself lives on.
        try {
          if (this.store.hasRequest(id)) this.ending(id, () => this.store.renew(id, this.clock()));
        } catch {
          // Its keys show failed; the sender may start another round.
        }
      }
      return until;
    } finally {
      this.changes.wake();
    }
  }

  /**
   * Runs one store step for `requestId` and publishes "ended" when the step ended it (a Commit or
   * Renew past its lease, a Commit whose bytes were not all proven), whether it returned or threw.
   */
  private ending<T>(requestId: string, step: () => T): T {
    const before = this.store.hasRequest(requestId);
    try {
      return step();
    } finally {
      if (before && !this.store.hasRequest(requestId)) {
        this.events.emit("ended", { requestId });
        this.endRepairs(requestId, { kind: "sender_abort", detail: `the request it repairs, ${requestId}, ended` });
      }
    }
  }

  /** A request ended: its repair rounds end with it (released when committed, else aborted). */
  private endRepairs(requestId: string, reason: EndReason): void {
    for (const id of this.repairs.drop(requestId)) {
      const phase = this.store.requestPhase(id);
      if (phase === undefined) continue;
      if (phase === "committed" && reason.kind === "released") this.store.release(id, this.clock());
      else this.store.abort(id, reason.kind === "released" ? { kind: "decode_incomplete" } : reason, this.clock());
      this.events.emit("ended", { requestId: id });
    }
  }

  /**
   * The request's key states with its repair rounds folded in: a key whose own entry failed shows
   * the state of the latest round that took it (writing, ready, or failed again).
   */
  private mergedStates(requestId: string): Array<{ key: string; state: KeyState; slot: number | null; size: number }> | undefined {
    const own = this.store.keyStates(requestId);
    const rounds = this.repairs.repairsOf(requestId);
    if (!own || rounds.length === 0) return own;
    const latest = new Map<string, { key: string; state: KeyState; slot: number | null; size: number }>();
    for (const id of rounds) for (const s of this.store.keyStates(id) ?? []) latest.set(s.key, s);
    return own.map((s) => (s.state === "failed" ? (latest.get(s.key) ?? s) : s));
  }

  // ------------------------------------------------------------ queries

  stats(): StoreStats {
    return this.store.stats();
  }

  /**
   * True when a new one-chunk request could get a slot now: a free one beyond the reservations of
   * batched requests, or an unpinned READY entry an Alloc would evict.
   */
  canAdmitOne(): boolean {
    const s = this.store.counts();
    return s.slotsFree - s.slotsReserved > 0 || this.store.hasEvictable();
  }

  hasRequest(requestId: string): boolean {
    return this.store.hasRequest(requestId);
  }

  requestPhase(requestId: string): RequestPhase | undefined {
    return this.store.requestPhase(requestId);
  }

  /** How many of `keys`, from the first, are READY here (a router's prefix affinity). */
  matchPrefix(keys: readonly string[]): number {
    return this.store.matchPrefix(keys);
  }

  listEntries(filter: { state?: EntryState; pinnedOnly?: boolean; prefix?: string; limit?: number } = {}): EntryView[] {
    return this.store.listEntries(this.clock(), filter);
  }

  listRequests(): RequestView[] {
    return this.store.listRequests(this.clock());
  }

  /** Throws INTERNAL naming the first broken store invariant (the fuzzers' and soak runs' self-check). */
  checkInvariants(): void {
    checkInvariants(this.store);
  }

  // ------------------------------------------------------------ admin

  /** Evicts one unpinned READY key; the store refuses WRITING and pinned entries. */
  evict(key: string): void {
    this.store.evict(key);
  }

  /** Evicts every unpinned READY entry; returns how many. */
  evictUnpinned(): number {
    return this.store.evictUnpinned();
  }

  keyStates(requestId: string): KeyStatesResult {
    const states = this.mergedStates(requestId);
    if (!states) {
      throw new KvbridgeError("NOT_FOUND", `request ${requestId} is unknown (never allocated, finished, aborted or expired)`);
    }
    return {
      allReady: states.every((s) => s.state === "ready"),
      anyFailed: states.some((s) => s.state === "failed"),
      keys: states.map(({ key, state }) => ({ key, state })),
    };
  }

  /**
   * Waits until every key of the request is READY or one is FAILED, at most `timeoutMs`. Resolves
   * with the states either way (the caller decides: recompute, fail or wait more); rejects with
   * NOT_FOUND when the request is gone and CANCELLED when `signal` fires.
   */
  async awaitReady(requestId: string, timeoutMs: number, signal?: AbortSignal): Promise<KeyStatesResult> {
    const deadline = this.clock() + timeoutMs;
    for (;;) {
      const st = this.keyStates(requestId);
      if (st.allReady || st.anyFailed) return st;
      const left = deadline - this.clock();
      if (left <= 0) return st;
      await this.changes.wait(left, signal, () => this.closed);
    }
  }

  /**
   * Zero-copy views of the request's READY chunks, in key order. Valid while the request holds its
   * pins (until release/abort): the entries cannot be evicted or reused before that.
   */
  chunkViews(requestId: string): Buffer[] {
    const states = this.mergedStates(requestId);
    if (!states) throw new KvbridgeError("NOT_FOUND", `request ${requestId} is unknown`);
    return states.map((s) => {
      if (s.state !== "ready" || s.slot === null) {
        throw new KvbridgeError("KV_FAILED", `key ${s.key} of request ${requestId} is ${s.state}, not READY`);
      }
      return this.memory.slotView(s.slot, s.size);
    });
  }

  /** sha256 of each READY key's bytes; a miss is reported as "missing" and creates nothing. */
  checksums(keys: readonly string[]): Array<{ key: string; state: KeyState | "missing"; sha256: string; size: number }> {
    // Each distinct key is hashed once per call: hashing runs on the event loop, and a caller naming
    // one 1 MiB key 65536 times would otherwise stall the whole node for about a minute. The cost of
    // a call is now bounded by the pool, whatever the caller repeats.
    const seen = new Map<string, { key: string; state: KeyState | "missing"; sha256: string; size: number }>();
    return keys.map((key) => {
      let sum = seen.get(key);
      if (!sum) {
        const readable = this.store.readable(key);
        sum = readable
          ? { key, state: "ready" as const, sha256: createHash("sha256").update(this.memory.slotView(readable.slot, readable.size)).digest("hex"), size: readable.size }
          : { key, state: this.store.stateOf(key) ?? ("missing" as const), sha256: "", size: 0 };
        seen.set(key, sum);
      }
      return sum;
    });
  }

  // ------------------------------------------------------------ WriteGate (TCP data plane)

  admit(requestId: string, slot: number, offsetInSlot: number, length: number, token: Buffer): AdmitResult {
    if (this.closed) return { ok: false, code: "UNAVAILABLE", message: "receiver is closed" };
    const now = this.clock();
    let res = this.store.admitWrite(requestId, slot, offsetInSlot, length, token, now);
    // Frames of a repair round name the request: the slot is one of its round's.
    for (const id of res.ok ? [] : this.repairs.repairsOf(requestId)) {
      const r = this.store.admitWrite(id, slot, offsetInSlot, length, token, now);
      if (r.ok) res = r;
    }
    if (!res.ok) return res;
    return { ok: true, target: this.memory.slotView(slot).subarray(offsetInSlot, offsetInSlot + length) };
  }

  written(requestId: string, slot: number, length: number, offsetInSlot: number): void {
    // Counted for the slot's owner only: the request, or one of its repair rounds.
    this.store.recordWritten(requestId, slot, offsetInSlot, length);
    for (const id of this.repairs.repairsOf(requestId)) this.store.recordWritten(id, slot, offsetInSlot, length);
  }

  watchAdmissions(listener: () => void): () => void {
    this.admissionWatchers.add(listener);
    return () => this.admissionWatchers.delete(listener);
  }

  private admissionsChanged(): void {
    for (const w of [...this.admissionWatchers]) w();
  }

  connectionLost(requestIds: ReadonlySet<string>, reason: string): void {
    for (const id of requestIds) {
      // Only unfinished requests lose their writes; committed ones already have all their bytes.
      if (this.store.requestPhase(id) === "allocating") {
        this.abort(id, { kind: "connection_lost", detail: reason });
        continue;
      }
      // A committed request keeps its KV; a repair round still being written loses its writes.
      for (const r of this.repairs.repairsOf(id)) {
        if (this.store.requestPhase(r) !== "allocating") continue;
        this.store.abort(r, { kind: "connection_lost", detail: reason }, this.clock());
        this.events.emit("ended", { requestId: r });
      }
      this.changes.wake();
    }
  }

  // ------------------------------------------------------------ lifecycle

  sweepNow(): void {
    const res = this.store.sweep(this.clock());
    for (const id of [...res.expired, ...res.holdsExpired]) this.endRepairs(id, { kind: res.expired.includes(id) ? "lease_expired" : "hold_expired" });
    for (const id of res.expired) {
      this.logger?.warn({ requestId: id }, describeEndReason({ kind: "lease_expired" }));
      this.events.emit("expired", { requestId: id });
      this.events.emit("ended", { requestId: id });
    }
    for (const id of res.holdsExpired) {
      this.logger?.warn({ requestId: id }, "committed request was never consumed: pins released");
      this.events.emit("ended", { requestId: id });
    }
    if (res.expired.length > 0 || res.holdsExpired.length > 0) this.changes.wake();
  }

  /** Idempotent. Stops the sweeper and wakes every waiter; the memory is closed by its owner. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sweeper.stop();
    this.changes.wake();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private assertOpen(): void {
    if (this.closed) throw new KvbridgeError("UNAVAILABLE", `receiver ${this.nodeId} is shutting down; retry on another node`);
  }
}
