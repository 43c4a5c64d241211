// The sender's TCP data plane: a channel of a few connections to one receiver; writeAll cuts each
// chunk into frames, spreads them over the connections and resolves when every frame is ACKed;
// writeAndCommit sends a COMMIT frame behind them and resolves with the receiver's commit.

import type { Logger } from "pino";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { type CommitProof, type DataPlaneCommitResult, type DataPlaneOffer, type SenderChannel, type SenderTransport, type SlotWrite } from "../transport.js";
import { encodeProofs } from "./tcp-commit-frame.js";
import { PendingCommit } from "./tcp-request-commit.js";
import { DEFAULT_MAX_FRAME_BYTES, WRITE_TOKEN_BYTES, encodeRequestId } from "./tcp-frame.js";
import { RequestWrite } from "./tcp-request-write.js";
import { TcpSenderConnection, type OutCommit, type OutFrame, type SenderConnectionOptions } from "./tcp-sender-connection.js";
import type { TcpTlsOptions } from "./tcp-tls.js";

/**
 * "spread": each frame goes to the connection with the fewest outstanding bytes, so one request
 * uses every connection. "pin": all frames of one writeAll go to one connection.
 */
export type TcpFramePlacement = "spread" | "pin";

export interface TcpSenderOptions {
  /** Connections per receiver. Default 2 (see bench/tcp-bench.ts for the measurement). */
  connections?: number;
  /** Bound on opening each connection. Default 5 s. */
  connectTimeoutMs?: number;
  /** With frames outstanding, a connection with no reply for this long fails DEADLINE_EXCEEDED. Default 15 s. */
  ackTimeoutMs?: number;
  /** Largest payload per frame; chunks are cut to it. Must not exceed the receiver's maxFrameBytes. Default 1 MiB. */
  frameBytes?: number;
  /** Bytes buffered in each socket before waiting for it to drain. Default 4 MiB. */
  windowBytes?: number;
  placement?: TcpFramePlacement;
  logger?: Logger;
  /** Mutual TLS to every receiver (which must then run its data plane with TLS too). Default plaintext. */
  tls?: TcpTlsOptions;
}

interface ResolvedOptions {
  connections: number;
  frameBytes: number;
  placement: TcpFramePlacement;
  connection: Omit<SenderConnectionOptions, "onDead">;
}

function positiveInt(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new KvbridgeError("INVALID_ARGUMENT", `TCP sender option ${name}=${value} must be an integer in 1..${max}`);
  }
  return value;
}

export class TcpSenderChannel implements SenderChannel {
  readonly kind = "tcp" as const;
  readonly peer: string;
  private readonly conns: TcpSenderConnection[] = [];
  private readonly opts: ResolvedOptions;
  private brokenBy: KvbridgeError | null = null;
  private closing: Promise<void> | null = null;
  private readonly onClosed: (ch: TcpSenderChannel) => void;

  /** Opens opts.connections connections; all or nothing. */
  static async open(
    host: string,
    port: number,
    opts: ResolvedOptions,
    signal: AbortSignal,
    onClosed: (ch: TcpSenderChannel) => void,
  ): Promise<TcpSenderChannel> {
    const channel = new TcpSenderChannel(`${opts.connection.tls ? "tcp+tls" : "tcp"}://${host}:${port}`, opts, onClosed);
    const connOpts: SenderConnectionOptions = { ...opts.connection, onDead: (_c, err) => channel.onConnectionDead(err) };
    const attempts = await Promise.allSettled(
      Array.from({ length: opts.connections }, () => TcpSenderConnection.open(host, port, connOpts, signal)),
    );
    for (const a of attempts) if (a.status === "fulfilled") channel.conns.push(a.value);
    const failed = attempts.find((a): a is PromiseRejectedResult => a.status === "rejected");
    if (failed) {
      await channel.close();
      throw failed.reason instanceof KvbridgeError ? failed.reason : new KvbridgeError("UNAVAILABLE", String(failed.reason));
    }
    return channel;
  }

  private constructor(peer: string, opts: ResolvedOptions, onClosed: (ch: TcpSenderChannel) => void) {
    this.peer = peer;
    this.opts = opts;
    this.onClosed = onClosed;
  }

  get broken(): boolean {
    return this.brokenBy !== null || this.closing !== null;
  }

  private onConnectionDead(err: KvbridgeError): void {
    // One dead connection makes the channel unusable for new writes; the sender opens a fresh
    // channel. Writes that never touched the dead connection still finish on the others.
    if (!this.brokenBy) this.brokenBy = err;
  }

  writeAll(requestId: string, writes: readonly SlotWrite[], signal: AbortSignal): Promise<void> {
    let placed: Placed;
    try {
      placed = this.place(requestId, writes, signal);
    } catch (err) {
      return Promise.reject(err);
    }
    for (const conn of placed.touched) conn.pump();
    return placed.write.promise;
  }

  /**
   * The data-plane commit (SenderChannel.writeAndCommit): the request's frames, then a COMMIT frame.
   * When every frame went to one connection, the COMMIT follows them on it at once (the receiver
   * handles a connection's frames in order); otherwise it waits until the frames on the other
   * connections are acknowledged, then goes on one that carried some of them (the receiver takes a
   * commit only on such a connection).
   */
  async writeAndCommit(requestId: string, writes: readonly SlotWrite[], proofs: readonly CommitProof[], signal: AbortSignal): Promise<DataPlaneCommitResult> {
    if (writes.length === 0) throw new KvbridgeError("INVALID_ARGUMENT", `data-plane commit of ${requestId} needs at least one write on the channel; commit over gRPC`);
    const proofBuf = encodeProofs(proofs);
    const placed = this.place(requestId, writes, signal);
    const { write, touched } = placed;
    const commit = new PendingCommit(requestId, write);
    const frame = (): OutCommit => ({ kind: "commit", commit, requestIdBytes: placed.requestIdBytes, proofCount: proofs.length, proofs: proofBuf, payload: proofBuf, seq: -1, flushed: false });
    const onAbort = (): void =>
      commit.lost(new KvbridgeError("CANCELLED", `commit of request ${requestId} to ${this.peer} cancelled; the request may hold partial data until it is aborted`));
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      if (touched.size === 1) {
        const [conn] = touched;
        conn!.enqueue(frame());
        conn!.pump();
      } else {
        for (const conn of touched) conn.pump();
        // Frames on several connections: the COMMIT may go only after all of them are in memory.
        write.promise.then(
          () => {
            if (commit.settled) return;
            const conn = placed.last;
            conn.enqueue(frame());
            conn.pump();
          },
          (err: KvbridgeError) => commit.lost(err),
        );
      }
      const [w, c] = await Promise.allSettled([write.promise, commit.promise]);
      if (c.status === "fulfilled") return c.value;
      // Writes that failed (refused, cut, stalled, cancelled) are the error, as for writeAll, whatever
      // became of a COMMIT pipelined behind them: the caller aborts the request (which also ends it if
      // it did commit). Only with every write in does the commit's own answer (refused, unknown) count.
      if (w.status === "rejected") throw w.reason;
      throw c.reason;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Cuts the writes into frames and queues them (not yet pumped). Throws on a broken channel or bad input. */
  private place(requestId: string, writes: readonly SlotWrite[], signal: AbortSignal): Placed {
    if (this.closing) {
      throw new KvbridgeError("UNAVAILABLE", `TCP channel to ${this.peer} is closed; connect again`);
    }
    if (this.brokenBy) {
      throw new KvbridgeError("UNAVAILABLE", `TCP channel to ${this.peer} is broken (${this.brokenBy.message}); connect again`, { cause: this.brokenBy });
    }
    if (signal.aborted) throw new KvbridgeError("CANCELLED", `write of request ${requestId} cancelled before it started`);
    const requestIdBytes = encodeRequestId(requestId);
    for (const w of writes) validateWrite(w);

    const frameBytes = this.opts.frameBytes;
    let frameCount = 0;
    for (const w of writes) frameCount += Math.max(1, Math.ceil(w.data.length / frameBytes));
    const write = new RequestWrite(requestId, frameCount);
    const touched = new Set<TcpSenderConnection>();
    let last: TcpSenderConnection | null = null;
    let pinned: TcpSenderConnection | null = null;
    for (const w of writes) {
      let offset = 0;
      do {
        const length = Math.min(frameBytes, w.data.length - offset);
        const frame: OutFrame = {
          kind: "write",
          write,
          requestIdBytes,
          slot: w.slot,
          offsetInSlot: offset,
          token: w.token,
          payload: w.data.subarray(offset, offset + length),
          seq: -1,
          flushed: false,
        };
        const conn = this.opts.placement === "pin" ? (pinned ??= this.leastLoaded()) : this.leastLoaded();
        conn.enqueue(frame);
        touched.add(conn);
        last = conn;
        offset += length;
      } while (offset < w.data.length);
    }
    if (frameCount > 0) {
      const onAbort = (): void =>
        write.fail(new KvbridgeError("CANCELLED", `write of request ${requestId} to ${this.peer} cancelled; its slots may hold partial data until the request is aborted`));
      signal.addEventListener("abort", onAbort, { once: true });
      const cleanup = (): void => signal.removeEventListener("abort", onAbort);
      write.promise.then(cleanup, cleanup);
    }
    return { write, touched, requestIdBytes, last: last ?? this.leastLoaded() };
  }

  private leastLoaded(): TcpSenderConnection {
    let best = this.conns[0]!;
    for (let i = 1; i < this.conns.length; i++) {
      const c = this.conns[i]!;
      if (c.outstandingBytes < best.outstandingBytes) best = c;
    }
    return best;
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        const err = new KvbridgeError("UNAVAILABLE", `TCP channel to ${this.peer} closed while the write was in flight`);
        for (const c of this.conns) c.die(err);
        await Promise.all(this.conns.map((c) => c.closed));
        this.onClosed(this);
      })();
    }
    return this.closing;
  }
}

interface Placed {
  write: RequestWrite;
  touched: Set<TcpSenderConnection>;
  requestIdBytes: Buffer;
  /** The connection that got the last frame (one that carried the request's frames). */
  last: TcpSenderConnection;
}

function validateWrite(w: SlotWrite): void {
  if (!Number.isInteger(w.slot) || w.slot < 0 || w.slot > 0xffffffff) {
    throw new KvbridgeError("INVALID_ARGUMENT", `slot ${w.slot} is not a u32 slot index`);
  }
  if (!Buffer.isBuffer(w.token) || w.token.length !== WRITE_TOKEN_BYTES) {
    throw new KvbridgeError("INVALID_ARGUMENT", `write token for slot ${w.slot} must be ${WRITE_TOKEN_BYTES} bytes (use the one from the Alloc answer)`);
  }
  if (!Buffer.isBuffer(w.data) || w.data.length > 0xffffffff) {
    throw new KvbridgeError("INVALID_ARGUMENT", `data for slot ${w.slot} must be a Buffer of at most 2^32-1 bytes`);
  }
}

export class TcpSenderTransport implements SenderTransport {
  readonly kind = "tcp" as const;
  private readonly opts: ResolvedOptions;
  private readonly channels = new Set<TcpSenderChannel>();
  private closing: Promise<void> | null = null;

  constructor(opts: TcpSenderOptions = {}) {
    const frameBytes = positiveInt("frameBytes", opts.frameBytes ?? 1024 * 1024, DEFAULT_MAX_FRAME_BYTES);
    this.opts = {
      connections: positiveInt("connections", opts.connections ?? 2, 64),
      frameBytes,
      placement: opts.placement ?? "spread",
      connection: {
        connectTimeoutMs: positiveInt("connectTimeoutMs", opts.connectTimeoutMs ?? 5_000, 3_600_000),
        ackTimeoutMs: positiveInt("ackTimeoutMs", opts.ackTimeoutMs ?? 15_000, 3_600_000),
        windowBytes: positiveInt("windowBytes", opts.windowBytes ?? 4 * 1024 * 1024, 1024 * 1024 * 1024),
        logger: opts.logger?.child({ component: "tcp-sender" }),
        tls: opts.tls,
      },
    };
  }

  async connect(offer: DataPlaneOffer, signal: AbortSignal): Promise<TcpSenderChannel> {
    if (this.closing) throw new KvbridgeError("UNAVAILABLE", "TCP sender transport is closed");
    if (offer.kind !== "tcp") {
      throw new KvbridgeError("INVALID_ARGUMENT", `TCP transport cannot use a ${offer.kind} offer; pick the receiver's tcp offer`);
    }
    const channel = await TcpSenderChannel.open(offer.host, offer.port, this.opts, signal, (ch) => this.channels.delete(ch));
    if (this.closing) {
      await channel.close();
      throw new KvbridgeError("UNAVAILABLE", "TCP sender transport closed while connecting");
    }
    this.channels.add(channel);
    return channel;
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closing = Promise.all([...this.channels].map((c) => c.close())).then(() => undefined);
    }
    return this.closing;
  }
}
