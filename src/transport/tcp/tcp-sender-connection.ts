// One sender data connection: queues WRITE frames (and a request's COMMIT frame after its writes),
// hands header + payload to the kernel without copying the payload (corked writev), respects
// backpressure, and matches ACK / NACK / COMMIT_ACK replies.
// With TLS the connection is mutual TLS (node:tls); frames and their handling are the same.

import net from "node:net";
import tls from "node:tls";
import type { Logger } from "pino";
import { KvbridgeError, type ErrorCode, type ReasonKind } from "../../errors/kvbridge-error.js";
import type { DataPlaneCommitResult } from "../transport.js";
import { encodeCommitFrame } from "./tcp-commit-frame.js";
import { FrameType, ReplyDecoder, encodeWriteHeader, type ReplyFrame } from "./tcp-frame.js";
import type { PendingCommit } from "./tcp-request-commit.js";
import type { RequestWrite } from "./tcp-request-write.js";
import { TLS_HANDSHAKE_TIMEOUT_MS, isNotTlsError, tlsConnectOptions, tlsErrorReason, type TcpTlsOptions } from "./tcp-tls.js";

export interface OutFrame {
  kind: "write";
  write: RequestWrite;
  requestIdBytes: Buffer;
  slot: number;
  offsetInSlot: number;
  token: Buffer;
  payload: Buffer;
  seq: number;
  flushed: boolean;
}

/** A COMMIT frame: small, sent from one buffer; counts as outstanding like a write until answered. */
export interface OutCommit {
  kind: "commit";
  commit: PendingCommit;
  requestIdBytes: Buffer;
  proofCount: number;
  proofs: Buffer;
  /** The proofs' length: what it adds to the connection's outstanding bytes. */
  payload: Buffer;
  seq: number;
  flushed: boolean;
}

type Queued = OutFrame | OutCommit;

/** What a reply says about the frame it names. */
type Answer =
  | { kind: "ack" }
  | { kind: "nack"; code: ErrorCode; message: string; reason?: ReasonKind }
  | { kind: "committed"; result: DataPlaneCommitResult };

export interface SenderConnectionOptions {
  connectTimeoutMs: number;
  /** With frames outstanding, no reply for this long declares the connection dead. */
  ackTimeoutMs: number;
  /** Bytes queued in the socket before waiting for 'drain'. */
  windowBytes: number;
  logger: Logger | undefined;
  /** Mutual TLS to the receiver; plaintext when absent. */
  tls?: TcpTlsOptions;
  /** Called once when the connection dies (error, peer close, stall, CLOSE reply, or close()). */
  onDead(conn: TcpSenderConnection, err: KvbridgeError): void;
}

function connectTls(o: TcpTlsOptions, host: string, port: number, windowBytes: number): tls.TLSSocket {
  // tls.connect hands highWaterMark (both directions) to the TLSSocket; writableHighWaterMark is not passed on.
  const options: tls.ConnectionOptions & { highWaterMark: number; noDelay: boolean } = { ...tlsConnectOptions(o, host, port), noDelay: true, highWaterMark: windowBytes };
  return tls.connect(options);
}

/** What went wrong opening a data connection, and what the operator should check. */
function connectFailure(peer: string, err: Error, tls: boolean): string {
  if (!tls || "syscall" in err) return `cannot connect to the TCP data plane at ${peer}: ${err.message}; is the receiver up and its data port reachable?`;
  if (isNotTlsError(err)) {
    return `cannot connect to the TCP data plane at ${peer}: the TLS handshake failed (${tlsErrorReason(err)}): the receiver does not speak TLS; run it with the same --tls-* flags, or drop --tls-* here`;
  }
  return (
    `cannot connect to the TCP data plane at ${peer}: the TLS handshake failed (${tlsErrorReason(err)}); the receiver's certificate must chain to --tls-ca and ` +
    `name the dialed host (or --tls-server-name), and the receiver must trust this sender's certificate (--tls-*)`
  );
}

export class TcpSenderConnection {
  readonly peer: string;
  private readonly socket: net.Socket;
  private readonly opts: SenderConnectionOptions;
  private readonly decoder = new ReplyDecoder();
  private queue: Array<Queued | undefined> = [];
  private queueHead = 0;
  private unacked: Array<Queued | undefined> = [];
  private unackedHead = 0;
  private nextSeq = 0;
  private waitingDrain = false;
  private stallTimer: NodeJS.Timeout | null = null;
  private deathError: KvbridgeError | null = null;
  /** Payload bytes queued or awaiting ACK: what the channel balances frames by. */
  outstandingBytes = 0;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket, peer: string, opts: SenderConnectionOptions) {
    this.socket = socket;
    this.peer = peer;
    this.opts = opts;
    this.closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => {
      this.waitingDrain = false;
      this.pump();
    });
    socket.on("error", (err) => this.die(new KvbridgeError("UNAVAILABLE", `data connection to ${peer} failed: ${err.message}`, { cause: err })));
    socket.on("end", () => this.die(new KvbridgeError("UNAVAILABLE", `receiver ${peer} closed the data connection`)));
    socket.on("close", () => this.die(new KvbridgeError("UNAVAILABLE", `data connection to ${peer} closed`)));
  }

  /** Opens one connection (and its TLS handshake); bounded by connectTimeoutMs and by `signal`. */
  static open(host: string, port: number, opts: SenderConnectionOptions, signal: AbortSignal): Promise<TcpSenderConnection> {
    const peer = `${opts.tls ? "tcp+tls" : "tcp"}://${host}:${port}`;
    return new Promise<TcpSenderConnection>((resolve, reject) => {
      if (signal.aborted) {
        reject(new KvbridgeError("CANCELLED", `connect to ${peer} cancelled`));
        return;
      }
      // writableHighWaterMark reaches the Duplex constructor at run time; @types/node omits it here.
      const connectOpts: net.TcpNetConnectOpts & { writableHighWaterMark: number } = {
        host,
        port,
        noDelay: true,
        writableHighWaterMark: opts.windowBytes,
      };
      const socket = opts.tls ? connectTls(opts.tls, host, port, opts.windowBytes) : net.connect(connectOpts);
      const ready = opts.tls ? "secureConnect" : "connect";
      const finish = (err: KvbridgeError | null): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        socket.removeListener("error", onError);
        socket.removeListener(ready, onConnect);
        if (err) {
          socket.destroy();
          reject(err);
        } else {
          resolve(new TcpSenderConnection(socket, peer, opts));
        }
      };
      const onAbort = (): void => finish(new KvbridgeError("CANCELLED", `connect to ${peer} cancelled`));
      const onError = (err: Error): void => finish(new KvbridgeError("UNAVAILABLE", connectFailure(peer, err, opts.tls !== undefined), { cause: err }));
      const onConnect = (): void => finish(null);
      const timeoutMs = opts.tls ? opts.connectTimeoutMs + TLS_HANDSHAKE_TIMEOUT_MS : opts.connectTimeoutMs;
      const timer = setTimeout(
        () =>
          finish(
            new KvbridgeError(
              "UNAVAILABLE",
              `connect to the TCP data plane at ${peer} timed out after ${timeoutMs} ms; check the address and firewall${opts.tls ? ", and that the receiver speaks TLS" : ""}`,
            ),
          ),
        timeoutMs,
      );
      signal.addEventListener("abort", onAbort, { once: true });
      socket.once("error", onError);
      socket.once(ready, onConnect);
    });
  }

  get dead(): boolean {
    return this.deathError !== null;
  }

  /** Queues a frame; call pump() after queueing a batch. */
  enqueue(frame: Queued): void {
    if (this.deathError) {
      if (frame.kind === "write") frame.write.fail(this.deathError);
      else frame.commit.lost(this.deathError);
      return;
    }
    this.queue.push(frame);
    this.outstandingBytes += frame.payload.length;
  }

  /**
   * Hands queued frames to the socket until its buffer holds windowBytes. Corked so a run of frames
   * becomes one writev of [header, payload, header, payload...] straight from the callers' buffers.
   */
  pump(): void {
    if (this.deathError || this.waitingDrain) return;
    const socket = this.socket;
    socket.cork();
    while (this.queueHead < this.queue.length) {
      const frame = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined;
      if (frame.kind === "commit") {
        if (!this.sendCommit(frame)) this.outstandingBytes -= frame.payload.length;
        continue;
      }
      if (frame.write.failed) {
        // Cancelled or refused before it was sent: never put on the wire.
        this.outstandingBytes -= frame.payload.length;
        continue;
      }
      frame.seq = this.nextSeq;
      this.nextSeq = (this.nextSeq + 1) >>> 0;
      socket.write(encodeWriteHeader(frame.requestIdBytes, frame.seq, frame.slot, frame.offsetInSlot, frame.payload.length, frame.token));
      frame.write.frameHanded();
      this.unacked.push(frame);
      const more = socket.write(frame.payload, () => this.flushed(frame));
      if (!more) {
        this.waitingDrain = true;
        break;
      }
    }
    socket.uncork();
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    }
    this.armStallTimer();
  }

  /**
   * Puts a COMMIT frame on the wire right behind the frames queued before it, unless its writes
   * already failed or it was settled (cancelled): such a commit is never sent. Returns whether sent.
   */
  private sendCommit(frame: OutCommit): boolean {
    const c = frame.commit;
    if (c.settled) return false;
    if (c.write.failed) {
      // Its writes failed before it left: the request is not committed; the write's error is the answer.
      c.write.promise.catch((err: KvbridgeError) => c.lost(err));
      return false;
    }
    frame.seq = this.nextSeq;
    this.nextSeq = (this.nextSeq + 1) >>> 0;
    this.socket.write(encodeCommitFrame(frame.requestIdBytes, frame.seq, frame.proofCount, frame.proofs));
    c.markSent();
    frame.flushed = true;
    this.unacked.push(frame);
    return true;
  }

  private flushed(frame: Queued): void {
    if (frame.flushed) return;
    frame.flushed = true;
    if (frame.kind === "write") frame.write.frameFlushed();
  }

  private armStallTimer(): void {
    const busy = this.unacked.length > this.unackedHead || this.queue.length > this.queueHead;
    if (!busy) {
      if (this.stallTimer) clearTimeout(this.stallTimer);
      this.stallTimer = null;
      return;
    }
    if (this.stallTimer) return;
    this.stallTimer = setTimeout(() => this.onStall(), this.opts.ackTimeoutMs);
    this.stallTimer.unref();
  }

  private onStall(): void {
    this.stallTimer = null;
    const frames = this.unacked.length - this.unackedHead + (this.queue.length - this.queueHead);
    this.die(
      new KvbridgeError(
        "DEADLINE_EXCEEDED",
        `no acknowledgement from ${this.peer} for ${this.opts.ackTimeoutMs} ms with ${frames} frames (${this.outstandingBytes} bytes) outstanding; the receiver is stalled or unreachable`,
      ),
    );
  }

  private onData(chunk: Buffer): void {
    let replies: ReplyFrame[];
    try {
      replies = this.decoder.push(chunk);
    } catch (err) {
      this.die(err instanceof KvbridgeError ? err : new KvbridgeError("INTERNAL", String(err)));
      return;
    }
    for (const r of replies) {
      if (this.deathError) return;
      switch (r.type) {
        case FrameType.ACK:
          this.onAck(r.seq, { kind: "ack" });
          break;
        case FrameType.NACK:
          this.onAck(r.seq, { kind: "nack", code: r.code, message: r.message, reason: r.reason });
          break;
        case FrameType.COMMIT_ACK:
          this.onAck(r.seq, { kind: "committed", result: { ready: r.ready, pending: r.pending, failed: r.failed } });
          break;
        case FrameType.CLOSE:
          this.die(new KvbridgeError(r.code, `receiver ${this.peer} closed the data connection: ${r.message}`));
          break;
      }
    }
  }

  /** A reply for `seq` covers every earlier frame on this connection (they were accepted). */
  private onAck(seq: number, answer: Answer): void {
    const head = this.unacked[this.unackedHead];
    const index = head ? (seq - head.seq) >>> 0 : Number.MAX_SAFE_INTEGER;
    if (index >= this.unacked.length - this.unackedHead) {
      this.die(new KvbridgeError("INTERNAL", `receiver ${this.peer} answered frame ${seq}, which is not awaiting an answer`));
      return;
    }
    // A COMMIT frame is answered by its own reply; an ACK covering it, or COMMIT_ACK naming a WRITE
    // frame, is a receiver that does not speak the data-plane commit right.
    const misanswered = this.unacked.slice(this.unackedHead, this.unackedHead + index + 1).some((f, i) =>
      f!.kind === "commit" ? !(i === index && answer.kind !== "ack") : i === index && answer.kind === "committed",
    );
    if (misanswered) {
      this.die(new KvbridgeError("INTERNAL", `receiver ${this.peer} answered frame ${seq} with a reply that does not fit it (COMMIT frames get COMMIT_ACK or NACK)`));
      return;
    }
    for (let i = 0; i <= index; i++) {
      const frame = this.unacked[this.unackedHead]!;
      this.unacked[this.unackedHead++] = undefined;
      this.outstandingBytes -= frame.payload.length;
      // The receiver has every byte of the frame, so the kernel has finished reading our buffer.
      this.flushed(frame);
      if (frame.kind === "commit") {
        if (answer.kind === "committed") frame.commit.committed(answer.result);
        else if (answer.kind === "nack") frame.commit.refused(answer.code, answer.message, answer.reason);
        continue;
      }
      if (i === index && answer.kind === "nack") frame.write.fail(new KvbridgeError(answer.code, answer.message));
      else frame.write.frameAcked();
    }
    if (this.unackedHead === this.unacked.length) {
      this.unacked = [];
      this.unackedHead = 0;
    } else if (this.unackedHead > 1024 && this.unackedHead * 2 > this.unacked.length) {
      this.unacked = this.unacked.slice(this.unackedHead);
      this.unackedHead = 0;
    }
    if (this.stallTimer) this.stallTimer.refresh();
    this.armStallTimer();
  }

  /** Fails everything on this connection with `err` and destroys it. Idempotent. */
  die(err: KvbridgeError): void {
    if (this.deathError) return;
    this.deathError = err;
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.socket.destroy();
    const sent = this.unacked.slice(this.unackedHead);
    const queued = this.queue.slice(this.queueHead);
    this.unacked = [];
    this.unackedHead = 0;
    this.queue = [];
    this.queueHead = 0;
    this.outstandingBytes = 0;
    for (const frame of sent) {
      if (!frame) continue;
      if (frame.kind === "commit") {
        frame.commit.lost(err);
        continue;
      }
      frame.write.fail(err);
      // destroy() closed the descriptor: the kernel reads nothing more out of our buffers.
      this.flushed(frame);
    }
    for (const frame of queued) {
      if (frame?.kind === "write") frame.write.fail(err);
      else frame?.commit.lost(err);
    }
    this.opts.logger?.debug({ peer: this.peer, code: err.code }, `tcp data connection down: ${err.message}`);
    this.opts.onDead(this, err);
  }
}
