// Receiver-side decoder of the frame stream of one connection (WRITE frames, and COMMIT frames where
// negotiated). It tells the socket where the next bytes must land (header buffer, the admitted slot
// view, or a scratch buffer for refused payloads), so payloads are read by the kernel straight into
// pool memory. A COMMIT frame is answered in the step that completes it: the gate commits in one
// synchronous call, after every earlier frame of the connection was handled.

import type { ErrorCode, ReasonKind } from "../../errors/kvbridge-error.js";
import type { PoolMemory } from "../../memory/pool-memory.js";
import type { CommitVerdict, WriteGate } from "../transport.js";
import { COMMIT_HEADER_BYTES, decodeCommitHeader, decodeProofs, type CommitFrameHeader } from "./tcp-commit-frame.js";
import {
  FrameType,
  MAX_REQUEST_ID_BYTES,
  WRITE_HEADER_BYTES,
  WRITE_PREFIX_BYTES,
  checkWritePrefix,
  decodeWriteHeader,
  encodeReply,
  type HeaderProblem,
  type WriteFrameHeader,
} from "./tcp-frame.js";

/** What the reader needs from its connection. */
export interface FrameReaderSink {
  /** Sends one encoded reply (ACK / NACK) to the sender. */
  reply(frame: Buffer): void;
  /** The stream cannot be decoded any further: the connection must close. */
  fatal(problem: HeaderProblem): void;
  /** A frame of `requestId` was admitted on this connection (its payload may now land in a slot). */
  admitted(requestId: string): void;
  /** Whether a WRITE frame of `requestId` was admitted on this connection (a COMMIT frame needs one). */
  wroteHere(requestId: string): boolean;
}

export interface FrameReaderOptions {
  gate: WriteGate;
  memory: PoolMemory;
  maxFrameBytes: number;
  sink: FrameReaderSink;
}

type ReaderState =
  | { at: "header" }
  | { at: "request-id"; header: WriteFrameHeader }
  | { at: "payload"; requestId: string; header: WriteFrameHeader; token: Buffer; got: number }
  | { at: "skip"; left: number; nack?: { seq: number; code: ErrorCode; message: string } }
  | { at: "commit-id"; header: CommitFrameHeader }
  | { at: "commit-proofs"; requestId: string; header: CommitFrameHeader; body: Buffer; got: number }
  | { at: "dead" };

const SCRATCH_BYTES = 64 * 1024;
const utf8 = new TextDecoder("utf-8", { fatal: true });

export class WriteFrameReader {
  private readonly opts: FrameReaderOptions;
  private state: ReaderState = { at: "header" };
  // Fixed header and request id share one buffer: [0, 32) header, [32, 32 + idBytes) id.
  private readonly headerBuf = Buffer.alloc(WRITE_HEADER_BYTES + MAX_REQUEST_ID_BYTES);
  private headerGot = 0;
  private scratch: Buffer | null = null;
  /** Seq of the last completed frame not yet acknowledged; ACKs are cumulative, so one covers many. */
  private ackDue: number | null = null;

  constructor(opts: FrameReaderOptions) {
    this.opts = opts;
  }

  /** True while a frame has started but not finished (a stall here is a stuck sender). */
  get midFrame(): boolean {
    return this.state.at !== "header" || this.headerGot > 0;
  }

  get dead(): boolean {
    return this.state.at === "dead";
  }

  /**
   * The buffer the next socket read must fill: exactly the bytes still missing from the current
   * part of the frame, so one read never spans a header and a payload and nothing needs copying.
   */
  nextBuffer(): Buffer {
    const s = this.state;
    switch (s.at) {
      case "header":
        return this.headerBuf.subarray(this.headerGot, WRITE_HEADER_BYTES);
      case "request-id":
        return this.headerBuf.subarray(this.headerGot, WRITE_HEADER_BYTES + s.header.requestIdBytes);
      case "payload": {
        const target = this.readmit(s);
        if (target) return target;
        return this.nextBuffer(); // the allocation ended: the rest of the payload is skipped
      }
      case "skip":
        return this.scratchBuf().subarray(0, Math.min(s.left, SCRATCH_BYTES));
      case "commit-id":
        return this.headerBuf.subarray(this.headerGot, COMMIT_HEADER_BYTES + s.header.requestIdBytes);
      case "commit-proofs":
        return s.body.subarray(s.got);
      case "dead":
        // Reads after a fatal error are drained and dropped until the socket closes.
        return this.scratchBuf();
    }
  }

  /**
   * `n` bytes were read into the buffer last returned by nextBuffer(). The ACK for frames it
   * completed is left to flushAck(), so the caller can answer a burst of reads with one reply.
   */
  consumed(n: number): void {
    this.advance(n);
  }

  /**
   * Admits the rest of a frame whose payload is still arriving once more; true when it was refused
   * now (its allocation ended): the rest of its payload will be skipped and the frame NACKed.
   */
  revalidate(): boolean {
    return this.state.at === "payload" && this.readmit(this.state) === null;
  }

  /** True when completed frames await their (cumulative) ACK. */
  get ackPending(): boolean {
    return this.ackDue !== null;
  }

  /** Copying variant for a socket that delivers its own chunks (data events). */
  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length && this.state.at !== "dead") {
      const dst = this.nextBuffer();
      const n = Math.min(dst.length, chunk.length - pos);
      chunk.copy(dst, 0, pos, pos + n);
      pos += n;
      this.advance(n);
    }
    this.flushAck();
  }

  private scratchBuf(): Buffer {
    if (!this.scratch) this.scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
    return this.scratch;
  }

  private advance(n: number): void {
    const s = this.state;
    switch (s.at) {
      case "header": {
        const before = this.headerGot;
        this.headerGot += n;
        if (before < WRITE_PREFIX_BYTES && this.headerGot >= WRITE_PREFIX_BYTES) {
          const problem = checkWritePrefix(this.headerBuf);
          if (problem) {
            this.die(problem);
            return;
          }
        }
        if (this.headerGot === WRITE_HEADER_BYTES) this.onHeader();
        return;
      }
      case "request-id":
        this.headerGot += n;
        if (this.headerGot === WRITE_HEADER_BYTES + s.header.requestIdBytes) this.onRequestId(s.header);
        return;
      case "payload":
        s.got += n;
        if (s.got === s.header.payloadBytes) this.onPayload(s.requestId, s.header);
        return;
      case "skip":
        s.left -= n;
        if (s.left === 0) {
          if (s.nack) {
            this.flushAck();
            this.opts.sink.reply(encodeReply({ type: FrameType.NACK, ...s.nack }));
          }
          this.nextFrame();
        }
        return;
      case "commit-id":
        this.headerGot += n;
        if (this.headerGot === COMMIT_HEADER_BYTES + s.header.requestIdBytes) this.onCommitId(s.header);
        return;
      case "commit-proofs":
        s.got += n;
        if (s.got === s.body.length) this.onCommit(s.requestId, s.header, s.body);
        return;
      case "dead":
        return;
    }
  }

  private onHeader(): void {
    if (this.headerBuf.readUInt8(5) === FrameType.COMMIT) {
      const commit = decodeCommitHeader(this.headerBuf);
      if (!commit.ok) {
        this.die(commit.problem);
        return;
      }
      this.state = { at: "commit-id", header: commit.header };
      return;
    }
    const decoded = decodeWriteHeader(this.headerBuf, this.opts.maxFrameBytes);
    if (!decoded.ok) {
      this.die(decoded.problem);
      return;
    }
    this.state = { at: "request-id", header: decoded.header };
  }

  private onRequestId(header: WriteFrameHeader): void {
    let requestId: string;
    try {
      requestId = utf8.decode(this.headerBuf.subarray(WRITE_HEADER_BYTES, WRITE_HEADER_BYTES + header.requestIdBytes));
    } catch {
      this.die({ code: "INVALID_ARGUMENT", message: "request id is not valid UTF-8" });
      return;
    }
    // The token is copied: the header buffer is overwritten by the next frame, and the gate may
    // keep what it is given.
    const token = Buffer.from(header.token);
    let verdict: { ok: true; target: Buffer } | { ok: false; code: ErrorCode; message: string };
    try {
      verdict = this.opts.gate.admit(requestId, header.slot, header.offsetInSlot, header.payloadBytes, token);
    } catch (err) {
      verdict = { ok: false, code: "INTERNAL", message: `write gate failed: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (verdict.ok) {
      const problem = this.checkTarget(verdict.target, header.payloadBytes);
      if (problem) verdict = { ok: false, code: "INTERNAL", message: problem };
    }
    if (!verdict.ok) {
      // Earlier frames are answered first: every reply implicitly covers all frames before it.
      this.flushAck();
      this.opts.sink.reply(
        encodeReply({
          type: FrameType.NACK,
          seq: header.seq,
          code: verdict.code,
          message: `write refused (request ${requestId}, slot ${header.slot}, offset ${header.offsetInSlot}, ${header.payloadBytes} bytes): ${verdict.message}`,
        }),
      );
      if (header.payloadBytes === 0) this.nextFrame();
      else this.state = { at: "skip", left: header.payloadBytes };
      return;
    }
    // Only admitted frames count: a refused frame naming someone else's request must not let a
    // torn connection abort that request.
    this.opts.sink.admitted(requestId);
    if (header.payloadBytes === 0) {
      this.onPayload(requestId, header);
      return;
    }
    this.state = { at: "payload", requestId, header, token, got: 0 };
  }

  /**
   * The slot view the next payload read may fill, admitted again for the bytes still missing. The
   * header was admitted when it arrived, but the payload can take long (a slow or hostile sender):
   * meanwhile the request may be aborted, expire or commit, and after quarantine its slot may belong
   * to another request. In copy mode this runs right before each copy; in zero-copy mode the buffer
   * is armed after the previous read, so the gate's watchAdmissions hook also calls revalidate() (and
   * the connection re-arms the handle) the moment slots change hands. Either way every byte lands in
   * an allocation its request holds at that moment. On refusal the rest of the payload is skipped and
   * the frame is NACKed once skipped (replies stay in frame order).
   */
  private readmit(s: Extract<ReaderState, { at: "payload" }>): Buffer | null {
    const { header, requestId } = s;
    const left = header.payloadBytes - s.got;
    let verdict: { ok: true; target: Buffer } | { ok: false; code: ErrorCode; message: string };
    try {
      verdict = this.opts.gate.admit(requestId, header.slot, header.offsetInSlot + s.got, left, s.token);
    } catch (err) {
      verdict = { ok: false, code: "INTERNAL", message: `write gate failed: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (verdict.ok) {
      const problem = this.checkTarget(verdict.target, left);
      if (!problem) return verdict.target;
      verdict = { ok: false, code: "INTERNAL", message: problem };
    }
    this.state = {
      at: "skip",
      left,
      nack: {
        seq: header.seq,
        code: verdict.code,
        message:
          `write of request ${requestId} to slot ${header.slot} stopped after ${s.got} of ${header.payloadBytes} bytes: ` +
          `its allocation ended while the payload was arriving (${verdict.message}); the rest was dropped`,
      },
    };
    return null;
  }

  /** A gate bug must never let a frame write outside the pool or past the length it claimed. */
  private checkTarget(target: Buffer, length: number): string | null {
    if (target.length !== length) return `write gate returned a ${target.length}-byte view for a ${length}-byte frame`;
    if (length === 0) return null;
    let pool: Buffer;
    try {
      pool = this.opts.memory.bytes;
    } catch {
      return "pool memory is closed";
    }
    const inside =
      target.buffer === pool.buffer &&
      target.byteOffset >= pool.byteOffset &&
      target.byteOffset + target.length <= pool.byteOffset + pool.length;
    return inside ? null : "write gate returned a view outside the pool memory";
  }

  private onPayload(requestId: string, header: WriteFrameHeader): void {
    try {
      this.opts.gate.written(requestId, header.slot, header.payloadBytes, header.offsetInSlot);
    } catch (err) {
      this.die({ code: "INTERNAL", message: `write gate failed after a write: ${err instanceof Error ? err.message : String(err)}` });
      return;
    }
    this.ackDue = header.seq;
    this.nextFrame();
  }

  private onCommitId(header: CommitFrameHeader): void {
    let requestId: string;
    try {
      requestId = utf8.decode(this.headerBuf.subarray(COMMIT_HEADER_BYTES, COMMIT_HEADER_BYTES + header.requestIdBytes));
    } catch {
      this.die({ code: "INVALID_ARGUMENT", message: "request id is not valid UTF-8" });
      return;
    }
    if (header.proofBytes === 0) {
      this.onCommit(requestId, header, Buffer.alloc(0));
      return;
    }
    // Bounded by MAX_COMMIT_PROOF_BYTES (checked with the header).
    this.state = { at: "commit-proofs", requestId, header, body: Buffer.allocUnsafe(header.proofBytes), got: 0 };
  }

  /**
   * A whole COMMIT frame is in. Every earlier frame of this connection has been handled (frames are
   * read in order), so the request's bytes sent here are counted; the sender sends COMMIT only after
   * its frames on other connections were acknowledged. Only a request that wrote on this connection
   * may commit on it: its frames proved it holds the allocation's tokens, so a peer cannot commit (and
   * by a short commit, end) another sender's request through the data plane.
   */
  private onCommit(requestId: string, header: CommitFrameHeader, body: Buffer): void {
    this.nextFrame();
    // Earlier frames are answered first: replies go in frame order.
    this.flushAck();
    const seq = header.seq;
    const nack = (code: ErrorCode, message: string, reason?: ReasonKind): void =>
      this.opts.sink.reply(encodeReply({ type: FrameType.NACK, seq, code, message: `commit of request ${requestId} refused: ${message}`, reason }));
    const commit = this.opts.gate.commitOnDataPlane?.bind(this.opts.gate);
    if (!commit) {
      nack("UNAVAILABLE", "this receiver does not take commits on the data plane; use the gRPC Commit");
      return;
    }
    if (!this.opts.sink.wroteHere(requestId)) {
      nack("PERMISSION_DENIED", "no frame of this request was admitted on this connection; commit on the connection that carried its writes, or with the gRPC Commit");
      return;
    }
    const proofs = decodeProofs(body, header.proofCount);
    if (!proofs.ok) {
      nack("INVALID_ARGUMENT", proofs.message, "proof_invalid");
      return;
    }
    let verdict: CommitVerdict;
    try {
      verdict = commit(requestId, proofs.proofs);
    } catch (err) {
      verdict = { ok: false, code: "INTERNAL", message: `commit gate failed: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (verdict.ok) {
      this.opts.sink.reply(encodeReply({ type: FrameType.COMMIT_ACK, seq, ...verdict.result }));
    } else {
      nack(verdict.code, verdict.message, verdict.reason);
    }
  }

  private nextFrame(): void {
    this.headerGot = 0;
    this.state = { at: "header" };
  }

  /** Sends the ACK covering every frame completed so far, if any. */
  flushAck(): void {
    if (this.ackDue === null || this.state.at === "dead") return;
    const seq = this.ackDue;
    this.ackDue = null;
    this.opts.sink.reply(encodeReply({ type: FrameType.ACK, seq }));
  }

  private die(problem: HeaderProblem): void {
    // Frames completed before the garbage are in memory: tell the sender so before closing.
    this.flushAck();
    this.state = { at: "dead" };
    this.opts.sink.fatal(problem);
  }
}
