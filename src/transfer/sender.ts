// The sending side of a transfer: Hello (cached per peer and generation) -> Alloc (batched) -> skip
// deduped chunks -> write the rest over the negotiated transport -> Commit (with a CRC-32 proof of
// each chunk put one-sided over UCX): on the data plane right behind the last write where the
// receiver negotiated it and the channel can (TCP COMMIT frame, UCX COMMIT active message), else the gRPC Commit. Deduped chunks another request was still writing are then
// watched until READY: one whose writer failed is written again by this request (repair rounds), so
// another client's cancel never costs this request its KV. Any failure or cancel before Commit
// Aborts the request on the receiver, so nothing this request allocated outlives it.

import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { ABORT_TIMEOUT_MS, DEFAULT_KV_WAIT_MS, RPC_TIMEOUT_MS } from "../config/defaults.js";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import type { CommitResponse__Output } from "../wire/generated/kvbridge/v1/CommitResponse.js";
import { DataPlaneCommitError, type SenderChannel, type SenderTransport, type SlotWrite, type TransportKind } from "../transport/transport.js";
import type { WireChunkProof } from "./commit-proof.js";
import { awaitDependencies, proveWrites, type KeyedWrite } from "./dependency-repair.js";
import { startLeaseRenewal } from "./lease-renewal.js";
import { channelStuck, handshake, notOfferedReason, type Peer, type ProtocolChoice } from "./sender-peer.js";
import { raceSignal, sleepUnlessAborted } from "./signal-race.js";
import { proofsFitFrame } from "../transport/tcp/tcp-commit-frame.js";

export type TransportPreference = "auto" | TransportKind;

export interface SenderOptions {
  /** Model compatibility fingerprint; "" for raw transfers. */
  fingerprint: string;
  /** The transports this process can use (tcp always; ucx when libucp loaded). */
  transports: Partial<Record<TransportKind, SenderTransport>>;
  preference?: TransportPreference;
  /** Bound on each control-plane call. Default RPC_TIMEOUT_MS. */
  rpcTimeoutMs?: number;
  senderId?: string;
  credentials?: grpc.ChannelCredentials;
  logger?: Logger;
  /**
   * Fault injection for failure tests: wait this long between a batch's Alloc and its writes, so a
   * test can kill the process while it holds WRITING allocations. 0 (default) in production.
   */
  faultDelayBeforeWriteMs?: number;
  /** Called when a UCX failure made a peer fall back to TCP. */
  onFallback?: (peer: string, reason: string) => void;
  /**
   * After Commit, how long a push waits for the deduped chunks other requests are still writing
   * (re-writing those whose writer failed) before it returns and leaves them to the decode node's
   * policy. Default DEFAULT_KV_WAIT_MS.
   */
  dependencyWaitMs?: number;
  /**
   * "auto" (default): protocol 2, falling back to 1 for a receiver that refuses 2. 1: always 1, so
   * every Commit goes over gRPC (tests; a fleet still partly on protocol 1).
   */
  protocol?: ProtocolChoice;
}

export interface PushChunk {
  key: string;
  data: Buffer;
}

export interface PushResult {
  requestId: string;
  chunks: number;
  deduped: number;
  /** Payload bytes actually moved (deduped chunks excluded). */
  bytesSent: number;
  transport: TransportKind;
  /** The request's keys when the push returned (after any repair rounds). */
  commit: { ready: number; pending: number; failed: number };
  /** Deduped chunks whose writer failed and that this push wrote again itself. */
  repaired: number;
  allocMs: number;
  writeMs: number;
  commitMs: number;
  generation: number;
  /** Where the Commit went: on the data plane behind the last write, or the gRPC Commit (also when a data-plane commit went unanswered and the gRPC Commit settled it). */
  commitVia: "data_plane" | "grpc";
}

export interface PushOptions {
  signal?: AbortSignal;
  /** Called once per deduped chunk, as soon as its Alloc answer arrives: its staging buffer can go. */
  onSkip?: (index: number) => void;
}

export class KvSender {
  private readonly opts: Required<Pick<SenderOptions, "rpcTimeoutMs" | "preference" | "senderId" | "dependencyWaitMs" | "protocol">> & SenderOptions;
  private readonly peers = new Map<string, Promise<Peer>>();
  /** Each cached handshake once it has succeeded, so peer() can look at its channel without awaiting. */
  private readonly settled = new WeakMap<Promise<Peer>, Peer>();
  /** Aborted on close(): bounds shared work (handshakes, connects) that no single request owns. */
  private readonly lifetime = new AbortController();
  private closed = false;

  constructor(opts: SenderOptions) {
    if (!opts.transports.tcp && !opts.transports.ucx) throw new KvbridgeError("INVALID_ARGUMENT", "a sender needs at least one transport");
    this.opts = { rpcTimeoutMs: RPC_TIMEOUT_MS, preference: "auto", senderId: `sender-${process.pid}`, dependencyWaitMs: DEFAULT_KV_WAIT_MS, protocol: "auto", ...opts };
  }

  /** Pushes one request's chunks into the receiver at `target` (host:port of its gRPC endpoint). */
  async push(target: string, requestId: string, chunks: readonly PushChunk[], options: PushOptions = {}): Promise<PushResult> {
    if (this.closed) throw new KvbridgeError("UNAVAILABLE", "sender is closed");
    if (chunks.length === 0) throw new KvbridgeError("INVALID_ARGUMENT", "nothing to push: a request needs at least one chunk");
    try {
      return await this.attempt(target, requestId, chunks, options, true);
    } catch (err) {
      const e = toKvbridgeError(err);
      if (!this.retryable(e, options)) throw e;
      // A receiver that restarted under the same address answers with another generation, or our
      // cached channel to it is still failing from the old process: forget everything cached about
      // the peer (channel, handshake, data channels, rkeys), handshake again and retry once under
      // the same id (the decode node generates under it). The first attempt was not aborted: a
      // receiver that still has it answers its batches the same way and the retry finishes it.
      this.opts.logger?.warn({ requestId, peer: target, reason: e.message, generation: e.details.generation }, "receiver unreachable or restarted; handshaking again");
      await this.forget(target);
      try {
        return await this.attempt(target, requestId, chunks, options, false);
      } catch (err2) {
        const e2 = toKvbridgeError(err2);
        // The receiver ended the first attempt meanwhile (its data connection was cut, an abort got
        // through) and never lets an id be reused: this request cannot be sent again. Final.
        if (e2.code === "ALREADY_EXISTS" && e2.details.reason === "request_id_reused") {
          throw new KvbridgeError(
            "FAILED_PRECONDITION",
            `push of ${requestId} to ${target} cannot be retried: the receiver ended its first attempt (${e.message}) and never reuses a request id; ` +
              `the decode node recomputes or fails the request by its policy`,
            { details: { reason: "request_id_reused" }, cause: e2 },
          );
        }
        throw e2;
      }
    }
  }

  /** Worth one retry after a fresh handshake: the receiver restarted, or we could not reach it. */
  private retryable(e: KvbridgeError, options: PushOptions): boolean {
    // A node that answers UNAVAILABLE itself (draining) is alive and means it: no retry there.
    const restarted = e.code === "FAILED_PRECONDITION" && e.details.reason === "receiver_restarted";
    const unreachable = e.code === "UNAVAILABLE" && !e.remote;
    return (restarted || unreachable) && !options.signal?.aborted && !this.closed;
  }

  private async attempt(target: string, requestId: string, chunks: readonly PushChunk[], options: PushOptions, first: boolean): Promise<PushResult> {
    const signal = options.signal;
    const cached = this.peer(target);
    const peer = await raceSignal(cached, signal, `push of ${requestId}`);
    peer.users++;
    try {
      return await this.pushTo(peer, requestId, chunks, options, first);
    } catch (err) {
      // Failed or cancelled on our side (a stalled or cut data connection, a deadline, the caller's
      // cancel mid-transfer): the cached handshake and data channels may be the stalled ones, so the
      // next push to this peer starts fresh. Pushes still running keep them until they end.
      if (!toKvbridgeError(err).remote) {
        if (this.peers.get(target) === cached) this.peers.delete(target);
        peer.retired = true;
      }
      throw err;
    } finally {
      peer.users--;
      if (peer.retired && peer.users === 0) this.closePeer(peer);
    }
  }

  private async pushTo(peer: Peer, requestId: string, chunks: readonly PushChunk[], options: PushOptions, first: boolean): Promise<PushResult> {
    const signal = options.signal;
    const { hello } = peer;
    for (const c of chunks) {
      if (c.data.length > hello.slotBytes) {
        throw new KvbridgeError(
          "INVALID_ARGUMENT",
          `chunk ${c.key} is ${c.data.length} bytes; receiver ${hello.nodeId} slots hold ${hello.slotBytes}: use smaller chunks or raise --slot-bytes there`,
        );
      }
    }
    // A forced transport the receiver does not offer fails here, before anything is allocated.
    this.chooseKind(peer);
    const perBatch = Math.max(1, Math.min(hello.maxKeysPerAlloc || 1024, 1024));
    const batches: number[][] = [];
    for (let i = 0; i < chunks.length; i += perBatch) {
      batches.push(Array.from({ length: Math.min(perBatch, chunks.length - i) }, (_, j) => i + j));
    }

    let allocated = false;
    let stopRenewal: (() => void) | undefined;
    let allocMs = 0;
    let writeMs = 0;
    let deduped = 0;
    let bytesSent = 0;
    let kind: TransportKind = "tcp";
    let committed = false;
    let commitMs = 0;
    let viaDataPlane: CommitResponse__Output | undefined;
    /** The data-plane commit went unanswered and the gRPC Commit said how the request ended. */
    let settledOverGrpc = false;
    const proofs: WireChunkProof[] = [];
    try {
      // Keep the lease alive during long transfers (one Renew in flight at most); a failed renew surfaces through the Commit.
      if (hello.leaseMs > 0) stopRenewal = startLeaseRenewal(() => peer.client.renew({ requestId }, { timeoutMs: this.opts.rpcTimeoutMs }), Math.max(50, Math.floor(hello.leaseMs / 3)));
      for (let b = 0; b < batches.length; b++) {
        const idx = batches[b]!;
        const ta = performance.now();
        allocated = true;
        const res = await peer.client.alloc(
          {
            requestId,
            keys: idx.map((i) => chunks[i]!.key),
            sizes: idx.map((i) => chunks[i]!.data.length),
            batchSeq: b,
            totalChunks: batches.length > 1 ? chunks.length : 0,
            isLastBatch: b === batches.length - 1,
            fingerprint: this.opts.fingerprint,
            generation: hello.generation,
          },
          { timeoutMs: this.opts.rpcTimeoutMs, signal },
        );
        allocMs += performance.now() - ta;
        const skip = new Set(res.alreadySentIndexes);
        if (res.remoteIndexes.length + skip.size !== idx.length || res.writeTokens.length !== res.remoteIndexes.length) {
          throw new KvbridgeError("INTERNAL", `Alloc answer for ${requestId} does not match its ${idx.length} keys`);
        }
        const writes: KeyedWrite[] = [];
        let r = 0;
        for (let j = 0; j < idx.length; j++) {
          if (skip.has(j)) {
            deduped++;
            options.onSkip?.(idx[j]!);
            continue;
          }
          const slot = res.remoteIndexes[r]!;
          writes.push({ slot, poolOffset: slot * hello.slotBytes, token: res.writeTokens[r]!, data: chunks[idx[j]!]!.data, key: chunks[idx[j]!]!.key });
          bytesSent += chunks[idx[j]!]!.data.length;
          r++;
        }
        if (this.opts.faultDelayBeforeWriteMs) await sleepUnlessAborted(this.opts.faultDelayBeforeWriteMs, signal);
        if (writes.length === 0) continue;
        const tw = performance.now();
        if (b === batches.length - 1 && peer.dataPlaneCommit) {
          // The last writes carry the Commit behind them where the channel can (one gRPC call less).
          const done = await this.writeAndCommit(peer, requestId, writes, proofs, signal);
          kind = done.kind;
          viaDataPlane = done.commit;
          if (viaDataPlane) committed = true;
          if (done.settledOverGrpc) settledOverGrpc = true;
          else if (kind === "ucx") proofs.push(...proveWrites(writes));
        } else {
          kind = await this.write(peer, requestId, writes, signal);
          if (kind === "ucx") proofs.push(...proveWrites(writes));
        }
        writeMs += performance.now() - tw;
      }
      const tc = performance.now();
      let commit = viaDataPlane ?? (await peer.client.commit({ requestId, proofs }, { timeoutMs: this.opts.rpcTimeoutMs, signal }));
      committed = true;
      commitMs = performance.now() - tc;
      let repaired = 0;
      if (commit.keysPending + commit.keysFailed > 0) {
        ({ commit, repaired } = await awaitDependencies(
          {
            client: peer.client,
            slotBytes: peer.hello.slotBytes,
            generation: peer.hello.generation,
            fingerprint: this.opts.fingerprint,
            waitMs: this.opts.dependencyWaitMs,
            rpcTimeoutMs: this.opts.rpcTimeoutMs,
            logger: this.opts.logger,
            write: (writes) => this.write(peer, requestId, writes, signal),
          },
          requestId,
          chunks,
          commit,
          signal,
        ));
      }
      return {
        requestId,
        chunks: chunks.length,
        deduped,
        bytesSent,
        transport: kind,
        commit: { ready: commit.keysReady, pending: commit.keysPending, failed: commit.keysFailed },
        repaired,
        allocMs,
        writeMs,
        commitMs,
        generation: hello.generation,
        commitVia: viaDataPlane && !settledOverGrpc ? "data_plane" : "grpc",
      };
    } catch (err) {
      const e = signal?.aborted ? new KvbridgeError("CANCELLED", `push of ${requestId} cancelled`, { cause: err }) : toKvbridgeError(err);
      // A retry under the same id (push) takes over this attempt's allocations; aborting them here
      // would end the request and the retry would be refused (request_id_reused).
      const retried = first && !committed && this.retryable(e, options);
      if (allocated && !retried) await this.abortQuietly(peer, requestId, e.message);
      throw e;
    } finally {
      stopRenewal?.();
    }
  }

  /**
   * The last batch's writes with the Commit behind them on the data plane, when the chosen channel
   * has it (SenderChannel.writeAndCommit) and the proofs fit; otherwise plain writes (commit: undefined,
   * the caller sends the gRPC Commit). A data-plane commit whose answer was lost is settled by the
   * gRPC Commit (idempotent once committed; otherwise it says how the request ended).
   */
  private async writeAndCommit(
    peer: Peer,
    requestId: string,
    writes: KeyedWrite[],
    earlierProofs: readonly WireChunkProof[],
    signal?: AbortSignal,
  ): Promise<{ kind: TransportKind; commit?: CommitResponse__Output; settledOverGrpc?: boolean }> {
    const kind = this.chooseKind(peer);
    let ch: SenderChannel;
    try {
      ch = await raceSignal(this.channel(peer, kind), signal, `push of ${requestId}`);
    } catch (err) {
      // A UCX channel that cannot connect: writeAll's path, which falls back to TCP.
      if (kind === "ucx") return { kind: await this.write(peer, requestId, writes, signal) };
      throw err;
    }
    const proofs = kind === "ucx" ? [...earlierProofs, ...proveWrites(writes)] : earlierProofs;
    // The UCX COMMIT message carries its proofs in the TCP COMMIT frame's encoding: same bound.
    if (!ch.writeAndCommit || !proofsFitFrame(proofs)) return { kind: await this.write(peer, requestId, writes, signal) };
    try {
      const r = await ch.writeAndCommit(requestId, writes, proofs, signal ?? this.lifetime.signal);
      return { kind, commit: { keysReady: r.ready, keysPending: r.pending, keysFailed: r.failed } };
    } catch (err) {
      if (err instanceof DataPlaneCommitError) {
        if (err.outcome === "refused" || signal?.aborted) throw err;
        // Every write is in; only the commit's answer is missing: the gRPC Commit says what happened.
        this.opts.logger?.debug({ requestId, peer: peer.target, err: err.message }, "data-plane commit unanswered; settling it with the gRPC Commit");
        const commit = await peer.client.commit({ requestId, proofs: [...proofs] }, { timeoutMs: this.opts.rpcTimeoutMs, signal });
        return { kind, commit, settledOverGrpc: true };
      }
      const e = toKvbridgeError(err);
      // The writes failed: as after a failed writeAll, UCX gives way to TCP (Commit then over gRPC).
      if (kind !== "ucx" || e.code === "CANCELLED" || signal?.aborted || !peer.offers.some((o) => o.kind === "tcp") || !this.opts.transports.tcp) throw e;
      this.disableUcx(peer, requestId, e);
      return { kind: await this.write(peer, requestId, writes, signal) };
    } finally {
      if (ch.broken) this.dropChannel(peer, kind);
    }
  }

  /** Writes over the peer's transport; a UCX failure retries the same writes over TCP. */
  private async write(peer: Peer, requestId: string, writes: SlotWrite[], signal?: AbortSignal): Promise<TransportKind> {
    const kind = this.chooseKind(peer);
    const ac = signal ?? this.lifetime.signal;
    if (kind === "ucx") {
      try {
        const ch = await raceSignal(this.channel(peer, "ucx"), signal, `push of ${requestId}`);
        await ch.writeAll(requestId, writes, ac);
        return "ucx";
      } catch (err) {
        const e = toKvbridgeError(err);
        if (e.code === "CANCELLED" || signal?.aborted || !peer.offers.some((o) => o.kind === "tcp") || !this.opts.transports.tcp) throw e;
        this.disableUcx(peer, requestId, e);
      }
    }
    const ch = await raceSignal(this.channel(peer, "tcp"), signal, `push of ${requestId}`);
    try {
      await ch.writeAll(requestId, writes, ac);
    } finally {
      if (ch.broken) this.dropChannel(peer, "tcp");
    }
    return "tcp";
  }

  private disableUcx(peer: Peer, requestId: string, e: KvbridgeError): void {
    peer.ucxDisabled = true;
    this.dropChannel(peer, "ucx");
    this.opts.logger?.warn({ requestId, peer: peer.target, err: e.message }, "UCX failed for this peer; falling back to TCP");
    this.opts.onFallback?.(peer.target, e.message);
  }

  private chooseKind(peer: Peer): TransportKind {
    const has = (k: TransportKind): boolean => !!this.opts.transports[k] && peer.offers.some((o) => o.kind === k);
    const pref = this.opts.preference;
    if (pref !== "auto") {
      if (!has(pref)) {
        if (!this.opts.transports[pref]) throw new KvbridgeError("UNAVAILABLE", `transport ${pref} was forced but this process cannot use it`);
        const why = notOfferedReason(peer.hello, pref);
        throw new KvbridgeError(
          "UNAVAILABLE",
          `transport ${pref} was forced but the receiver does not offer it (${why ? `${why.reason}: ${why.message}` : "no reason given: a receiver of protocol 1"}); ` +
            `receiver ${peer.hello.nodeId} offers ${peer.offers.map((o) => o.kind).join(", ") || "nothing"}: drop --transport ${pref} (or use auto)`,
          why?.reason === "ucx_not_direct" ? { details: { reason: "ucx_not_direct" } } : undefined,
        );
      }
      if (pref === "ucx" && peer.ucxDisabled && has("tcp")) return "tcp";
      return pref;
    }
    if (has("ucx") && !peer.ucxDisabled) return "ucx";
    if (has("tcp")) return "tcp";
    throw new KvbridgeError("UNAVAILABLE", `no common transport with receiver ${peer.hello.nodeId}`);
  }

  /** The shared data channel to a peer; like the handshake, it lives under the sender's lifetime. */
  private channel(peer: Peer, kind: TransportKind): Promise<SenderChannel> {
    const existing = peer.channels[kind];
    if (existing) {
      return existing.then((ch) => {
        if (!ch.broken) return ch;
        this.dropChannel(peer, kind);
        return this.channel(peer, kind);
      });
    }
    const offer = peer.offers.find((o) => o.kind === kind)!;
    const transport = this.opts.transports[kind]!;
    const p = transport.connect(offer, this.lifetime.signal);
    peer.channels[kind] = p;
    p.catch(() => {
      if (peer.channels[kind] === p) delete peer.channels[kind];
    });
    return p;
  }

  private dropChannel(peer: Peer, kind: TransportKind): void {
    const p = peer.channels[kind];
    delete peer.channels[kind];
    p?.then((ch) => ch.close()).catch(() => undefined);
  }

  /**
   * The cached handshake with a peer. It is shared by every request to that peer, so it runs under
   * the sender's own lifetime, never under one request's signal: cancelling one request must not
   * fail the others waiting on the same handshake.
   */
  private peer(target: string): Promise<Peer> {
    let p = this.peers.get(target);
    const known = p && this.settled.get(p);
    if (known && channelStuck(known.client)) {
      // Its connection was dropped (keepalive, a reset) and the channel is reconnecting on a connect
      // attempt that may be stalled by a partition that has healed since: a fresh channel connects
      // now. Pushes still using the old one keep it until they end.
      this.peers.delete(target);
      known.retired = true;
      if (known.users === 0) this.closePeer(known);
      p = undefined;
    }
    if (!p) {
      p = this.handshake(target, this.lifetime.signal);
      this.peers.set(target, p);
      const promise = p;
      p.then(
        (peer) => this.settled.set(promise, peer),
        () => undefined,
      );
      // A failed handshake is not cached: the next push tries again.
      p.catch(() => {
        if (this.peers.get(target) === p) this.peers.delete(target);
      });
    }
    return p;
  }

  private handshake(target: string, signal?: AbortSignal): Promise<Peer> {
    return handshake(
      target,
      {
        fingerprint: this.opts.fingerprint,
        senderId: this.opts.senderId,
        transports: (["ucx", "tcp"] as const).filter((k) => this.opts.transports[k]),
        rpcTimeoutMs: this.opts.rpcTimeoutMs,
        credentials: this.opts.credentials ?? grpc.credentials.createInsecure(),
        protocol: this.opts.protocol,
      },
      signal,
    );
  }

  /** The protocol agreed with `target` by its cached handshake; undefined before one succeeded. */
  negotiated(target: string): { protocolVersion: number; dataPlaneCommit: boolean } | undefined {
    const p = this.peers.get(target);
    const peer = p && this.settled.get(p);
    return peer ? { protocolVersion: peer.hello.protocolVersion, dataPlaneCommit: peer.dataPlaneCommit } : undefined;
  }

  /**
   * Drops the cached handshake for a peer so the next push handshakes again. Its client and data
   * channels are shared by pushes still running: they are closed when the last of those is done,
   * never under them (closing a data connection aborts every request with frames on it).
   */
  async forget(target: string): Promise<void> {
    const p = this.peers.get(target);
    this.peers.delete(target);
    if (!p) return;
    const peer = await p.catch(() => undefined);
    if (!peer) return;
    peer.retired = true;
    if (peer.users === 0) this.closePeer(peer);
  }

  private closePeer(peer: Peer): void {
    for (const k of Object.keys(peer.channels) as TransportKind[]) this.dropChannel(peer, k);
    peer.client.close();
  }

  private async abortQuietly(peer: Peer, requestId: string, reason: string): Promise<void> {
    try {
      await peer.client.abort({ requestId, reason: reason.slice(0, 500) }, { timeoutMs: Math.min(this.opts.rpcTimeoutMs, ABORT_TIMEOUT_MS) });
    } catch (err) {
      const e = toKvbridgeError(err);
      // NOT_FOUND: the receiver already released it (expired, or never allocated). Anything else:
      // the receiver's lease sweeper releases it; say so, since the caller already has its error.
      if (e.code !== "NOT_FOUND") this.opts.logger?.warn({ requestId, err: e.message }, "abort failed; the receiver's lease will release the request");
    }
  }

  /** Idempotent: closes every channel and client. Transports are closed by their owner. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.lifetime.abort();
    // Closing the sender ends everything, in-flight pushes included (they fail and abort).
    const peers = await Promise.all([...this.peers.values()].map((p) => p.catch(() => undefined)));
    this.peers.clear();
    for (const peer of peers) if (peer) this.closePeer(peer);
  }
}
