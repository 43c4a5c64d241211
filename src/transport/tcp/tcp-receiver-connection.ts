// One accepted data connection on the receiver: feeds socket reads to the frame reader, sends its
// replies, remembers which requests wrote through it (they alone may commit on it), and reports them
// to the gate when it ends.

import net from "node:net";
import type { Logger } from "pino";
import type { PoolMemory } from "../../memory/pool-memory.js";
import type { WriteGate } from "../transport.js";
import { FrameType, encodeReply, type HeaderProblem } from "./tcp-frame.js";
import { WriteFrameReader } from "./tcp-write-frame-reader.js";

/**
 * "zero-copy": the kernel reads payloads straight into slot memory (net.Socket `onread` with a
 * buffer chosen per read). "copy": ordinary data events, payloads copied into the slot.
 */
export type TcpReceiveMode = "zero-copy" | "copy";

export interface ReceiverConnectionOptions {
  gate: WriteGate;
  memory: PoolMemory;
  maxFrameBytes: number;
  mode: TcpReceiveMode;
  /** A frame that has started but sees no bytes for this long closes the connection. */
  stallTimeoutMs: number;
  /** Request ids idle on this connection for this long are forgotten (the lease sweeper is the backstop). */
  forgetIdleMs: number;
  logger: Logger | undefined;
  onClosed(conn: TcpReceiverConnection): void;
}

/** Replies queued beyond this pause reading, so a sender that never reads ACKs cannot grow our memory. */
const REPLY_BACKLOG_BYTES = 256 * 1024;
/** After a fatal protocol error, how long the CLOSE reply gets to reach the sender before a hard close. */
const CLOSE_GRACE_MS = 1000;
const MIN_IDS_BEFORE_SWEEP = 1024;

interface HandleOwner {
  _handle: object | null;
}

/** The libuv stream handle's setter for the buffer its next read fills (what `onread` arms after each read). */
interface UserBufferHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

function isUserBufferHandle(h: object | null): h is UserBufferHandle {
  return h !== null && typeof (h as Partial<UserBufferHandle>).useUserBuffer === "function";
}

function hasHandle(socket: net.Socket): socket is net.Socket & HandleOwner {
  const h = (socket as unknown as Partial<HandleOwner>)._handle;
  return typeof h === "object" && h !== null;
}

export class TcpReceiverConnection {
  readonly remote: string;
  private readonly opts: ReceiverConnectionOptions;
  private readonly reader: WriteFrameReader;
  private readonly socket: net.Socket;
  /** Zero-copy only: the handle reading into the buffers the reader picks. */
  private userBufferHandle: UserBufferHandle | null = null;
  /** Request id -> last time one of its frames was admitted here. */
  private readonly ids = new Map<string, number>();
  private nextSweepAt = MIN_IDS_BEFORE_SWEEP;
  private lostReported = false;
  private closeReason = "connection closed by the sender";
  private readPausedForReplies = false;
  private graceTimer: NodeJS.Timeout | null = null;
  private ackScheduled = false;
  private readonly flushAck = (): void => {
    this.ackScheduled = false;
    this.reader.flushAck();
  };
  readonly closed: Promise<void>;

  constructor(accepted: net.Socket, opts: ReceiverConnectionOptions) {
    this.opts = opts;
    this.remote = `${accepted.remoteAddress ?? "?"}:${accepted.remotePort ?? "?"}`;
    this.reader = new WriteFrameReader({
      gate: opts.gate,
      memory: opts.memory,
      maxFrameBytes: opts.maxFrameBytes,
      sink: {
        reply: (frame) => this.reply(frame),
        fatal: (problem) => this.onFatal(problem),
        admitted: (requestId) => this.track(requestId),
        wroteHere: (requestId) => this.ids.has(requestId),
      },
    });
    this.socket = opts.mode === "zero-copy" ? this.adopt(accepted) : this.useDataEvents(accepted);
    this.socket.setNoDelay(true);
    this.socket.setTimeout(opts.stallTimeoutMs);
    this.socket.on("timeout", () => {
      // Idle between frames is normal (pooled connections); idle inside a frame is a stuck sender.
      if (this.reader.midFrame && !this.reader.dead) {
        this.destroy(`no bytes for ${opts.stallTimeoutMs} ms in the middle of a frame`);
      }
    });
    this.socket.on("drain", () => {
      if (this.readPausedForReplies) {
        this.readPausedForReplies = false;
        this.socket.resume();
      }
    });
    this.socket.on("end", () => this.destroy("connection closed by the sender"));
    this.socket.on("error", (err) => {
      this.closeReason = `connection error: ${err.message}`;
    });
    this.closed = new Promise<void>((resolve) => {
      this.socket.once("close", () => {
        if (this.graceTimer) clearTimeout(this.graceTimer);
        this.reportLost(this.closeReason);
        opts.onClosed(this);
        resolve();
      });
    });
    opts.logger?.debug({ remote: this.remote, mode: opts.mode }, "tcp data connection accepted");
  }

  /**
   * Moves the accepted socket's libuv handle into a socket built with `onread`: net.Server has no
   * option for it, and the handle (paused since accept) is the only way to read into our buffers.
   */
  private adopt(accepted: net.Socket): net.Socket {
    const handle = hasHandle(accepted) ? accepted._handle : null;
    if (!hasHandle(accepted) || handle === null) return this.useDataEvents(accepted);
    accepted._handle = null;
    if (isUserBufferHandle(handle)) this.userBufferHandle = handle;
    // The empty wrapper only releases the server's connection count; the handle lives on below.
    accepted.destroy();
    const SocketWithHandle = net.Socket as unknown as new (
      opts: net.SocketConstructorOpts & { handle: object; onread: net.OnReadOpts },
    ) => net.Socket;
    return new SocketWithHandle({
      handle,
      allowHalfOpen: false,
      onread: {
        buffer: () => this.reader.nextBuffer(),
        callback: (nread: number) => {
          this.reader.consumed(nread);
          if (this.reader.ackPending && !this.ackScheduled) {
            // libuv reads a socket up to 32 times per readiness event; answering after the burst
            // (check phase) sends one cumulative ACK instead of one per frame.
            this.ackScheduled = true;
            setImmediate(this.flushAck);
          }
          return true;
        },
      },
    });
  }

  private useDataEvents(accepted: net.Socket): net.Socket {
    accepted.on("data", (chunk: Buffer) => this.reader.push(chunk));
    accepted.resume();
    return accepted;
  }

  private reply(frame: Buffer): void {
    if (this.socket.destroyed) return;
    this.socket.write(frame);
    if (!this.readPausedForReplies && this.socket.writableLength > REPLY_BACKLOG_BYTES) {
      this.readPausedForReplies = true;
      this.socket.pause();
    }
  }

  private track(requestId: string): void {
    const now = Date.now();
    const isNew = !this.ids.has(requestId);
    this.ids.set(requestId, now);
    if (isNew && this.ids.size >= this.nextSweepAt) {
      // Amortised: sweep only when the table doubled. A request silent here for forgetIdleMs has
      // outlived any lease; the store's sweeper frees it whether or not we report it.
      for (const [id, seen] of this.ids) if (now - seen > this.opts.forgetIdleMs) this.ids.delete(id);
      this.nextSweepAt = Math.max(MIN_IDS_BEFORE_SWEEP, this.ids.size * 2);
    }
  }

  private onFatal(problem: HeaderProblem): void {
    this.opts.logger?.warn({ remote: this.remote, code: problem.code }, `tcp data connection closed: ${problem.message}`);
    const reason = `protocol error from ${this.remote}: ${problem.message}`;
    this.closeReason = reason;
    // The requests are told now, not after the grace period: their writes on this connection are over.
    this.reportLost(reason);
    if (this.socket.destroyed) return;
    this.socket.end(encodeReply({ type: FrameType.CLOSE, seq: 0, code: problem.code, message: problem.message }));
    this.graceTimer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    this.graceTimer.unref();
  }

  private reportLost(reason: string): void {
    if (this.lostReported) return;
    this.lostReported = true;
    const ids = new Set(this.ids.keys());
    this.ids.clear();
    if (ids.size === 0) return;
    try {
      this.opts.gate.connectionLost(ids, reason);
    } catch (err) {
      this.opts.logger?.error({ err, remote: this.remote }, "write gate failed to handle a lost connection");
    }
  }

  /**
   * Re-checks a frame whose payload is still arriving (the gate says an admission may have lapsed).
   * Zero-copy reads fill a buffer chosen after the previous read, so a lapsed frame must also move
   * the handle's next read off its slot, now, before any more bytes arrive.
   */
  revalidate(): void {
    if (!this.reader.revalidate()) return;
    if (this.userBufferHandle && !this.socket.destroyed) this.userBufferHandle.useUserBuffer(this.reader.nextBuffer());
  }

  /** Closes the connection now; the gate hears about its requests once. Idempotent. */
  destroy(reason: string): void {
    if (!this.lostReported) this.closeReason = reason;
    this.socket.destroy();
  }
}
