// The receiver's KV store: keys, entries, refcounts (pins), leases and the slot pool. Pure and
// synchronous: every check-then-act is one call with no await inside, and the time comes in as `now`.
// The shell (transfer/receiver.ts) owns the sockets, the timers and the waiters and only calls in here.

import { KvbridgeError } from "../errors/kvbridge-error.js";
import { batchDigest, leaseExpiredError, unprovenError, validateAllocInput } from "./alloc-validation.js";
import { describeEndReason, type EndReason } from "./end-reason.js";
import { SlotPool } from "./slot-pool.js";
import type {
  AllocInput, AllocResult, CommitResult, CommitVerifier, Entry, EntryState, EntryView, KeyState, ReleaseSummary,
  RequestPhase, RequestRecord, RequestView, StoreConfig, StoreStats, SweepResult, WriteAdmission,
} from "./store-types.js";
import { MAX_WRITE_PIECES, WriteCoverage } from "./write-coverage.js";

export * from "./store-types.js";

export class KvStore {
  readonly config: Readonly<StoreConfig>;
  readonly pool: SlotPool;
  /** The live entry per key (WRITING or READY). FAILED entries are never here. */
  private readonly live = new Map<string, Entry>();
  /** Every entry by id, FAILED ones included while a dependent still pins them. */
  private readonly entries = new Map<number, Entry>();
  /**
   * The unpinned READY entries (the prefix cache eviction may take), least recently used first: an
   * entry joins at the end when its last pin goes and leaves when pinned again or dropped. A full
   * pool then evicts from the front instead of scanning and sorting every entry on each Alloc.
   */
  private readonly evictable = new Map<number, Entry>();
  private readonly requests = new Map<string, RequestRecord>();
  /**
   * How the last 2 × maxRequests ended requests ended, oldest first. A Commit, Renew, later batch or
   * write arriving after its request's lease expired hears "lease expired" (FAILED_PRECONDITION),
   * the answer it gets when it beats the sweeper; one for a request that ended otherwise still
   * answers NOT_FOUND but says what happened (e.g. its data connection was cut before its Commit).
   * While an id is remembered here, an Alloc cannot reuse it (request_id_reused).
   */
  private readonly endedReasons = new Map<string, EndReason>();
  /** Coverage of the WRITING entries that received writes, by entry id; dropped when they leave WRITING. */
  private readonly coverage = new Map<number, WriteCoverage>();
  private nextEntryId = 1;
  private readonly counters = {
    dedupHits: 0,
    dedupMisses: 0,
    leasesExpired: 0,
    holdsExpired: 0,
    requestsCommitted: 0,
    requestsAborted: 0,
    evictions: 0,
    bytesCommitted: 0,
    commitsUnproven: 0,
  };

  constructor(config: StoreConfig) {
    if (!Number.isInteger(config.slots) || config.slots < 1) throw new RangeError("slots must be a positive integer");
    if (!Number.isInteger(config.slotBytes) || config.slotBytes < 1) throw new RangeError("slotBytes must be a positive integer");
    this.config = { ...config };
    this.pool = new SlotPool(config.slots);
  }

  // ---------------------------------------------------------------- mutations (one step each)

  /**
   * Allocates one batch of a request: pins every present key, allocates a slot for every absent one.
   * Decides everything (validation, dedup, room, eviction) before changing anything, so a refusal
   * leaves no partial allocation behind.
   */
  alloc(input: AllocInput, now: number): AllocResult {
    validateAllocInput(input, this.config);
    const { requestId, keys, sizes, batchSeq } = input;
    const digest = batchDigest(keys, sizes, input.totalChunks, input.isLastBatch);
    const existing = this.requests.get(requestId);

    if (existing) {
      const previous = existing.batches[batchSeq];
      if (previous) {
        // A retried batch gets the same answer and allocates nothing twice.
        if (previous.digest !== digest) {
          throw new KvbridgeError(
            "ALREADY_EXISTS",
            `request ${requestId} batch ${batchSeq} was already allocated with different keys or sizes; use a new request id`,
          );
        }
        return previous.result;
      }
      if (existing.phase !== "allocating") {
        throw new KvbridgeError("FAILED_PRECONDITION", `request ${requestId} is already committed; it cannot allocate more`);
      }
      if (now >= existing.leaseExpiresAt) {
        this.expire(existing, now);
        throw leaseExpiredError("alloc", requestId);
      }
      if (existing.lastBatchSeen) {
        throw new KvbridgeError("FAILED_PRECONDITION", `request ${requestId} already sent its last batch`);
      }
      if (batchSeq !== existing.batches.length) {
        throw new KvbridgeError(
          "FAILED_PRECONDITION",
          `request ${requestId}: expected batch ${existing.batches.length}, got ${batchSeq}; send batches in order`,
        );
      }
      if (existing.keys.length + keys.length > existing.totalChunks) {
        throw new KvbridgeError(
          "INVALID_ARGUMENT",
          `request ${requestId} declared ${existing.totalChunks} chunks but batch ${batchSeq} brings the count to ${existing.keys.length + keys.length}`,
        );
      }
    } else {
      const ended = this.endedReasons.get(requestId);
      // A later batch of an ended request hears how it ended, like any late call.
      if (batchSeq !== 0 && ended) this.requireUnexpired(requestId, "alloc");
      if (ended) {
        // A reused id would let a late Commit (or frame) of the first incarnation act on the second.
        throw new KvbridgeError(
          "ALREADY_EXISTS",
          `request id ${requestId} belongs to a request that ended (${describeEndReason(ended)}); ` +
            `an id cannot be reused while this node remembers it: use a new request id`,
          { details: { reason: "request_id_reused" } },
        );
      }
      if (batchSeq !== 0) {
        throw new KvbridgeError(
          "NOT_FOUND",
          `request ${requestId} is unknown (never allocated, aborted or expired); batch ${batchSeq} needs batch 0 first`,
        );
      }
      if (this.requests.size >= this.config.maxRequests) {
        throw new KvbridgeError(
          "RESOURCE_EXHAUSTED",
          `too many requests in flight: ${this.requests.size} of ${this.config.maxRequests}; retry later`,
        );
      }
    }

    const total = existing ? existing.totalChunks : input.totalChunks === 0 ? keys.length : input.totalChunks;
    if (!existing && total < keys.length) {
      throw new KvbridgeError("INVALID_ARGUMENT", `total_chunks ${total} is less than the ${keys.length} keys of batch 0`);
    }
    if (total > this.config.maxChunksPerRequest) {
      throw new KvbridgeError(
        "INVALID_ARGUMENT",
        `request ${requestId} has ${total} chunks; the most one request may have is ${this.config.maxChunksPerRequest}`,
      );
    }
    if (!existing && total > this.pool.total) {
      // Every chunk holds a slot while the request lives (a deduped one too), so no amount of
      // waiting, eviction or quarantine release helps: a retry would be refused forever.
      throw new KvbridgeError(
        "RESOURCE_EXHAUSTED",
        `request ${requestId} can never fit: it needs ${total} slots of ${this.config.slotBytes} bytes; the pool has ${this.pool.total}: ` +
          `raise --pool-slots or split the request`,
        { details: { reason: "never_fits", limit: this.pool.total } },
      );
    }
    const isLast = input.totalChunks === 0 && !existing ? true : input.isLastBatch;

    // Classify: present keys are pinned (dedup), absent ones need a slot.
    const dedup: number[] = [];
    const fresh: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (existing?.holds.has(key)) {
        throw new KvbridgeError("INVALID_ARGUMENT", `request ${requestId} already holds key ${key}; keys must be unique within a request`);
      }
      if (this.live.has(key)) dedup.push(i);
      else fresh.push(i);
    }

    // Slots whose quarantine is over are usable now, whether or not the sweeper has run yet.
    this.pool.releaseDue(now);
    // Room: a new request reserves its whole worst case (every chunk fresh) up front, so two big
    // batched requests can never each hold half the pool and wait for the other.
    const needNow = existing ? 0 : fresh.length + (total - keys.length);
    if (existing && fresh.length > existing.reserved) {
      throw new KvbridgeError("INTERNAL", `request ${requestId}: reservation ${existing.reserved} < ${fresh.length} fresh keys`);
    }
    if (needNow > this.pool.available) {
      const protectedKeys = new Set(dedup.map((i) => keys[i]!));
      this.evictForRoom(needNow - this.pool.available, protectedKeys, requestId);
    }

    // Act. Nothing below can fail on input; the lease is set before any entry is inserted.
    const leaseExpiresAt = now + this.config.leaseMs;
    let rec = existing;
    if (!rec) {
      rec = {
        id: requestId,
        peer: input.peer ?? "",
        createdAt: now,
        phase: "allocating",
        leaseExpiresAt,
        holdExpiresAt: 0,
        totalChunks: total,
        reserved: 0,
        lastBatchSeen: false,
        batches: [],
        keys: [],
        holds: new Map(),
      };
      this.pool.reserve(needNow);
      rec.reserved = needNow;
      this.requests.set(requestId, rec);
    } else {
      rec.leaseExpiresAt = leaseExpiresAt;
    }

    const result: AllocResult = { remoteIndexes: [], alreadySentIndexes: [], writeTokens: [], leaseExpiresAt };
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const present = this.live.get(key);
      if (present) {
        present.pins.add(requestId);
        this.evictable.delete(present.id);
        if (present.status.state === "ready") present.status.lastUsedAt = now;
        rec.holds.set(key, { entryId: present.id, role: "dedup" });
        result.alreadySentIndexes.push(i);
        this.counters.dedupHits++;
      } else {
        const id = this.nextEntryId++;
        const slot = this.pool.take(id, true);
        rec.reserved--;
        const token = this.config.newToken();
        const entry: Entry = {
          id,
          key,
          size: sizes[i]!,
          slot,
          createdAt: now,
          pins: new Set([requestId]),
          status: { state: "writing", owner: requestId, token },
          bytesWritten: 0,
        };
        this.entries.set(id, entry);
        this.live.set(key, entry);
        rec.holds.set(key, { entryId: id, role: "writer" });
        result.remoteIndexes.push(slot);
        result.writeTokens.push(token);
        this.counters.dedupMisses++;
      }
      rec.keys.push(key);
    }
    if (isLast) {
      rec.lastBatchSeen = true;
      // Chunks the request declared but never sent give their reservation back.
      this.pool.unreserve(rec.reserved);
      rec.reserved = 0;
    }
    rec.batches.push({ digest, result });
    return result;
  }

  /**
   * Turns the request's WRITING entries READY, all or none, and only when each one's bytes are shown
   * complete: every byte covered by the owner's admitted writes, or else `verify` vouching for the
   * slot (one-sided writes the store never sees). Otherwise the request ends (commit_unproven), its
   * slots go to quarantine and nothing becomes READY. Idempotent once committed.
   */
  commit(requestId: string, now: number, verify?: CommitVerifier): CommitResult {
    const rec = this.requireUnexpired(requestId, "commit");
    let bytesCommitted = 0;
    let bytesCounted = 0;
    if (rec.phase === "allocating") {
      if (now >= rec.leaseExpiresAt) {
        this.expire(rec, now);
        throw leaseExpiredError("commit", requestId);
      }
      if (!rec.lastBatchSeen) {
        throw new KvbridgeError(
          "FAILED_PRECONDITION",
          `request ${requestId} cannot commit: ${rec.batches.length} batch(es) received and the last batch has not been sent`,
        );
      }
      // Decide first: every chunk proven, or the request ends with nothing made READY.
      const proven: Array<{ entry: Entry; proof: "counted" | "verified" }> = [];
      const unproven: Array<{ entry: Entry; index: number }> = [];
      rec.keys.forEach((key, index) => {
        const hold = rec.holds.get(key)!;
        if (hold.role !== "writer") return;
        const entry = this.entries.get(hold.entryId);
        if (!entry || entry.status.state !== "writing") return;
        if (entry.bytesWritten === entry.size) proven.push({ entry, proof: "counted" });
        else if (verify?.({ key, slot: entry.slot!, size: entry.size, index })) proven.push({ entry, proof: "verified" });
        else unproven.push({ entry, index });
      });
      if (unproven.length > 0) {
        const { entry, index } = unproven[0]!;
        const detail =
          `chunk ${index} (key ${entry.key}, slot ${entry.slot}): ${entry.bytesWritten} of ${entry.size} bytes seen, no proof of the rest` +
          (unproven.length > 1 ? ` (and ${unproven.length - 1} more chunk(s) short)` : "");
        this.releaseRequest(rec, { kind: "commit_unproven", detail }, now);
        this.counters.commitsUnproven++;
        throw unprovenError("commit", requestId, detail);
      }
      for (const { entry, proof } of proven) {
        entry.status = { state: "ready", lastUsedAt: now, writer: requestId, proof };
        this.coverage.delete(entry.id);
        bytesCommitted += entry.size;
        bytesCounted += entry.bytesWritten;
      }
      this.counters.bytesCommitted += bytesCommitted;
      rec.phase = "committed";
      rec.holdExpiresAt = now + this.config.holdMs;
      this.counters.requestsCommitted++;
    }
    return { ...this.countStates(rec), bytesCommitted, bytesCounted, startedAt: rec.createdAt };
  }

  /** Releases exactly what the request holds (its WRITING allocations and all its pins). */
  abort(requestId: string, reason: EndReason, now: number): ReleaseSummary {
    const rec = this.requireRequest(requestId, "abort");
    this.counters.requestsAborted++;
    return this.releaseRequest(rec, reason, now);
  }

  /** A committed request is done with its keys: drop its pins; READY entries stay as prefix cache. */
  release(requestId: string, now: number): ReleaseSummary {
    const rec = this.requireRequest(requestId, "release");
    if (rec.phase !== "committed") {
      throw new KvbridgeError("FAILED_PRECONDITION", `request ${requestId} is not committed; use Abort to give up an unfinished request`);
    }
    return this.releaseRequest(rec, { kind: "released" }, now);
  }

  /** Extends an allocating request's lease, or a committed request's hold. */
  renew(requestId: string, now: number): number {
    const rec = this.requireUnexpired(requestId, "renew");
    if (rec.phase === "allocating") {
      if (now >= rec.leaseExpiresAt) {
        this.expire(rec, now);
        throw leaseExpiredError("renew", requestId);
      }
      rec.leaseExpiresAt = now + this.config.leaseMs;
      return rec.leaseExpiresAt;
    }
    rec.holdExpiresAt = now + this.config.holdMs;
    return rec.holdExpiresAt;
  }

  /** The single sweeper's step: expire leases and holds, end quarantines. */
  sweep(now: number): SweepResult {
    const expired: string[] = [];
    const holdsExpired: string[] = [];
    for (const rec of [...this.requests.values()]) {
      if (rec.phase === "allocating" && now >= rec.leaseExpiresAt) {
        this.expire(rec, now);
        expired.push(rec.id);
      } else if (rec.phase === "committed" && now >= rec.holdExpiresAt) {
        this.releaseRequest(rec, { kind: "hold_expired" }, now);
        this.counters.holdsExpired++;
        holdsExpired.push(rec.id);
      }
    }
    const quarantineReleased = this.pool.releaseDue(now);
    return { expired, holdsExpired, quarantineReleased };
  }

  /**
   * Checks one incoming data-plane write against the allocation it claims, in one step: the request
   * must be allocating and within its lease, the slot must be a WRITING entry this request owns, the
   * token must match and the range must fit the entry.
   */
  admitWrite(requestId: string, slot: number, offset: number, length: number, token: Buffer, now: number): WriteAdmission {
    const rec = this.requests.get(requestId);
    if (!rec) {
      const ended = this.endedReasons.get(requestId);
      // As for a late Commit: the ends a writer must hear as "your writes did not count".
      if (ended?.kind === "lease_expired" || ended?.kind === "commit_unproven") {
        return { ok: false, code: "FAILED_PRECONDITION", message: `request ${requestId}: ${describeEndReason(ended)}` };
      }
      return { ok: false, code: "NOT_FOUND", message: ended ? `request ${requestId} has ended (${describeEndReason(ended)})` : `request ${requestId} is unknown (aborted or expired?)` };
    }
    if (rec.phase !== "allocating") {
      return { ok: false, code: "FAILED_PRECONDITION", message: `request ${requestId} is committed; no more writes` };
    }
    if (now >= rec.leaseExpiresAt) {
      return { ok: false, code: "FAILED_PRECONDITION", message: `request ${requestId}: ${describeEndReason({ kind: "lease_expired" })}` };
    }
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.pool.total) {
      return { ok: false, code: "INVALID_ARGUMENT", message: `slot ${slot} out of range 0..${this.pool.total - 1}` };
    }
    const st = this.pool.stateOf(slot);
    const entry = st.state === "used" ? this.entries.get(st.entryId) : undefined;
    if (!entry || entry.status.state !== "writing" || entry.status.owner !== requestId) {
      return { ok: false, code: "PERMISSION_DENIED", message: `slot ${slot} is not allocated to request ${requestId}` };
    }
    if (!entry.status.token.equals(token)) {
      return { ok: false, code: "PERMISSION_DENIED", message: `wrong write token for slot ${slot}` };
    }
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > entry.size) {
      return {
        ok: false,
        code: "INVALID_ARGUMENT",
        message: `write [${offset}, ${offset + length}) is outside slot ${slot}'s ${entry.size}-byte allocation`,
      };
    }
    const cov = this.coverage.get(entry.id);
    if (cov && cov.piecesAfter(offset, length) > MAX_WRITE_PIECES) {
      return {
        ok: false,
        code: "INVALID_ARGUMENT",
        message: `write [${offset}, ${offset + length}) would leave slot ${slot} written in more than ${MAX_WRITE_PIECES} separate pieces; write contiguous ranges`,
      };
    }
    return { ok: true, slot };
  }

  /**
   * Accounts an admitted write whose bytes are now in the slot. Only the slot's current owner's
   * writes count, and each byte once: Commit trusts this coverage on the TCP data plane.
   */
  recordWritten(requestId: string, slot: number, offset: number, length: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.pool.total) return;
    const st = this.pool.stateOf(slot);
    if (st.state !== "used") return;
    const entry = this.entries.get(st.entryId);
    if (!entry || entry.status.state !== "writing" || entry.status.owner !== requestId) return;
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length <= 0 || offset + length > entry.size) return;
    let cov = this.coverage.get(entry.id);
    if (!cov) {
      cov = new WriteCoverage();
      this.coverage.set(entry.id, cov);
    }
    cov.add(offset, length);
    entry.bytesWritten = cov.covered;
  }

  /** Admin: evicts one unpinned READY entry. */
  evict(key: string): void {
    const entry = this.live.get(key);
    if (!entry) throw new KvbridgeError("NOT_FOUND", `key ${key} is not in the store`);
    if (entry.status.state !== "ready") {
      throw new KvbridgeError("FAILED_PRECONDITION", `key ${key} is ${entry.status.state}; only READY entries can be evicted`);
    }
    if (entry.pins.size > 0) {
      throw new KvbridgeError("FAILED_PRECONDITION", `key ${key} is pinned by ${[...entry.pins].join(", ")}; it cannot be evicted`);
    }
    this.dropReady(entry);
  }

  /** Admin: evicts every unpinned READY entry; returns how many. */
  evictUnpinned(): number {
    let n = 0;
    for (const entry of [...this.evictable.values()]) {
      this.dropReady(entry);
      n++;
    }
    return n;
  }

  // ---------------------------------------------------------------- reads (never create anything)

  /** True when some unpinned READY entry could be evicted to make room (O(1)). */
  hasEvictable(): boolean {
    return this.evictable.size > 0;
  }

  hasRequest(requestId: string): boolean {
    return this.requests.has(requestId);
  }

  requestPhase(requestId: string): RequestPhase | undefined {
    return this.requests.get(requestId)?.phase;
  }

  /** The state of each key the request holds, in order; undefined for an unknown request. */
  keyStates(requestId: string): Array<{ key: string; state: KeyState; slot: number | null; size: number }> | undefined {
    const rec = this.requests.get(requestId);
    if (!rec) return undefined;
    return rec.keys.map((key) => {
      const hold = rec.holds.get(key)!;
      const entry = this.entries.get(hold.entryId)!;
      return { key, state: entry.status.state, slot: entry.slot, size: entry.size };
    });
  }

  /** A READY entry's slot and size, or undefined (a miss is a miss). */
  readable(key: string): { slot: number; size: number } | undefined {
    const entry = this.live.get(key);
    if (!entry || entry.status.state !== "ready" || entry.slot === null) return undefined;
    return { slot: entry.slot, size: entry.size };
  }

  /** Current state of a key, or undefined when absent. */
  stateOf(key: string): KeyState | undefined {
    return this.live.get(key)?.status.state;
  }

  /** How many leading keys are present (READY or WRITING): the prefix a router can reuse here. */
  matchPrefix(keys: readonly string[]): number {
    let n = 0;
    for (const key of keys) {
      if (!this.live.has(key)) break;
      n++;
    }
    return n;
  }

  /** The earliest time the sweeper has something to do. */
  nextDeadline(): number | undefined {
    let t = this.pool.nextRelease();
    for (const rec of this.requests.values()) {
      const d = rec.phase === "allocating" ? rec.leaseExpiresAt : rec.holdExpiresAt;
      if (t === undefined || d < t) t = d;
    }
    return t;
  }

  /**
   * The counts a hot path needs, each O(1) (stats() walks every live entry to count states): an Alloc,
   * a health tick or a metrics read must not cost a pass over a pool of 100k entries.
   */
  counts(): { activeRequests: number; entries: number; slotsFree: number; slotsReserved: number; bytesCommitted: number } {
    return {
      activeRequests: this.requests.size,
      entries: this.entries.size,
      slotsFree: this.pool.freeCount,
      slotsReserved: this.pool.reserved,
      bytesCommitted: this.counters.bytesCommitted,
    };
  }

  stats(): StoreStats {
    let writing = 0;
    let ready = 0;
    for (const e of this.live.values()) {
      if (e.status.state === "writing") writing++;
      else if (e.status.state === "ready") ready++;
    }
    return {
      slotsTotal: this.pool.total,
      slotsFree: this.pool.freeCount,
      slotsWriting: writing,
      slotsReady: ready,
      slotsQuarantined: this.pool.quarantinedCount,
      slotsReserved: this.pool.reserved,
      entries: this.entries.size,
      activeRequests: this.requests.size,
      ...this.counters,
    };
  }

  listEntries(now: number, filter: { state?: EntryState; pinnedOnly?: boolean; prefix?: string; limit?: number } = {}): EntryView[] {
    const out: EntryView[] = [];
    const limit = filter.limit && filter.limit > 0 ? filter.limit : Infinity;
    for (const e of this.entries.values()) {
      if (filter.state && e.status.state !== filter.state) continue;
      if (filter.pinnedOnly && e.pins.size === 0) continue;
      if (filter.prefix && !e.key.startsWith(filter.prefix)) continue;
      let leaseLeftMs: number | null = null;
      let owner: string | null = null;
      if (e.status.state === "writing") {
        owner = e.status.owner;
        const rec = this.requests.get(owner);
        leaseLeftMs = rec ? rec.leaseExpiresAt - now : 0;
      }
      out.push({
        key: e.key,
        state: e.status.state,
        refcount: e.pins.size,
        pinnedBy: [...e.pins],
        slot: e.slot,
        size: e.size,
        ageMs: now - e.createdAt,
        leaseLeftMs,
        owner,
      });
      if (out.length >= limit) break;
    }
    return out;
  }

  listRequests(now: number): RequestView[] {
    return [...this.requests.values()].map((rec) => {
      let written = 0;
      let deduped = 0;
      let pending = 0;
      let bytes = 0;
      for (const hold of rec.holds.values()) {
        const e = this.entries.get(hold.entryId)!;
        if (hold.role === "writer") {
          written++;
          // One-sided (UCX) writes are invisible to the receiver: a committed entry has all its bytes.
          bytes += e.status.state === "ready" ? e.size : e.bytesWritten;
        } else deduped++;
        if (e.status.state === "writing") pending++;
      }
      return {
        requestId: rec.id,
        phase: rec.phase,
        keysWritten: written,
        keysDeduped: deduped,
        keysPending: pending,
        bytes,
        ageMs: now - rec.createdAt,
        leaseLeftMs: (rec.phase === "allocating" ? rec.leaseExpiresAt : rec.holdExpiresAt) - now,
        peer: rec.peer,
      };
    });
  }

  /** Raw views for the invariant checker (tests, and the node's self-check). */
  internals(): {
    live: ReadonlyMap<string, Entry>;
    entries: ReadonlyMap<number, Entry>;
    evictable: ReadonlyMap<number, Entry>;
    requests: ReadonlyMap<string, RequestRecord>;
    coverage: ReadonlyMap<number, WriteCoverage>;
  } {
    return { live: this.live, entries: this.entries, evictable: this.evictable, requests: this.requests, coverage: this.coverage };
  }

  // ---------------------------------------------------------------- internals

  /**
   * requireRequest, except that a request whose lease expired or whose Commit was refused unproven
   * answers FAILED_PRECONDITION (with that reason) as it did when it ended: a retried call hears the
   * same thing as the first.
   */
  private requireUnexpired(requestId: string, op: string): RequestRecord {
    if (!this.requests.has(requestId)) {
      const ended = this.endedReasons.get(requestId);
      if (ended?.kind === "lease_expired") throw leaseExpiredError(op, requestId);
      if (ended?.kind === "commit_unproven") throw unprovenError(op, requestId, ended.detail);
    }
    return this.requireRequest(requestId, op);
  }

  private requireRequest(requestId: string, op: string): RequestRecord {
    const rec = this.requests.get(requestId);
    if (!rec) {
      const ended = this.endedReasons.get(requestId);
      if (ended) throw new KvbridgeError("NOT_FOUND", `${op}: request ${requestId} has ended (${describeEndReason(ended)}); nothing of it is held any more`);
      throw new KvbridgeError("NOT_FOUND", `${op}: request ${requestId} is unknown (never allocated, already finished, aborted or expired)`);
    }
    return rec;
  }

  /**
   * Makes room for `need` more slots by evicting unpinned READY entries, least recently used first.
   * Evicts nothing when even all of them would not be enough: the cache is not thrown away for a
   * request that is refused anyway.
   */
  private evictForRoom(need: number, protectedKeys: ReadonlySet<string>, requestId: string): void {
    // Least recently used first; the keys this Alloc is about to pin are spared.
    const candidates: Entry[] = [];
    for (const e of this.evictable.values()) {
      if (candidates.length === need) break;
      if (!protectedKeys.has(e.key)) candidates.push(e);
    }
    if (candidates.length < need) {
      const s = this.stats();
      throw new KvbridgeError(
        "RESOURCE_EXHAUSTED",
        `pool full for request ${requestId}: needs ${need} more slot(s); ${s.slotsTotal} slots: ${s.slotsFree} free ` +
          `(${s.slotsReserved} reserved), ${s.slotsWriting} writing, ${s.slotsReady} ready (${candidates.length} evictable), ` +
          `${s.slotsQuarantined} quarantined; raise --pool-slots or retry later`,
        { details: { reason: "pool_full" } },
      );
    }
    for (const e of candidates) this.dropReady(e);
  }

  private dropReady(entry: Entry): void {
    this.evictable.delete(entry.id);
    this.live.delete(entry.key);
    this.entries.delete(entry.id);
    this.pool.free(entry.slot!, entry.id);
    entry.slot = null;
    this.counters.evictions++;
  }

  private expire(rec: RequestRecord, now: number): void {
    this.releaseRequest(rec, { kind: "lease_expired" }, now);
    this.counters.leasesExpired++;
  }

  /**
   * Ends a request: its WRITING entries become FAILED (slot quarantined; dependents see FAILED), its
   * pins go, its unused reservation returns. Touches no other request's holds.
   */
  private releaseRequest(rec: RequestRecord, reason: EndReason, now: number): ReleaseSummary {
    let slotsReleased = 0;
    let pinsReleased = 0;
    for (const [key, hold] of rec.holds) {
      const entry = this.entries.get(hold.entryId);
      if (!entry) continue;
      if (hold.role === "writer" && entry.status.state === "writing") {
        // Only the live entry for this key is removed from the key map: never someone else's.
        if (this.live.get(key) === entry) this.live.delete(key);
        this.pool.quarantineSlot(entry.slot!, entry.id, now + this.config.quarantineMs);
        entry.slot = null;
        entry.status = { state: "failed", writer: rec.id, reason };
        this.coverage.delete(entry.id);
        slotsReleased++;
      }
      if (entry.pins.delete(rec.id)) pinsReleased++;
      if (entry.pins.size === 0 && entry.status.state === "failed") this.entries.delete(entry.id);
      if (entry.pins.size === 0 && entry.status.state === "ready") {
        this.evictable.delete(entry.id);
        this.evictable.set(entry.id, entry);
      }
    }
    if (rec.reserved > 0) {
      this.pool.unreserve(rec.reserved);
      rec.reserved = 0;
    }
    this.requests.delete(rec.id);
    // An id is never reused while remembered (alloc refuses it), so each id ends once.
    this.endedReasons.set(rec.id, reason);
    if (this.endedReasons.size > 2 * this.config.maxRequests) this.endedReasons.delete(this.endedReasons.keys().next().value!);
    return { slotsReleased, pinsReleased };
  }

  private countStates(rec: RequestRecord): { ready: number; pending: number; failed: number } {
    let ready = 0;
    let pending = 0;
    let failed = 0;
    for (const hold of rec.holds.values()) {
      const st = this.entries.get(hold.entryId)!.status.state;
      if (st === "ready") ready++;
      else if (st === "writing") pending++;
      else failed++;
    }
    return { ready, pending, failed };
  }
}
