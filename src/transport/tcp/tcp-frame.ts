// The TCP data plane's wire format: fixed little-endian headers for WRITE frames (sender -> receiver)
// and ACK / NACK / CLOSE / COMMIT_ACK replies (receiver -> sender); the COMMIT frame's own layout is
// in tcp-commit-frame.ts. docs/protocol.md describes it byte by byte.

import { isReasonKind, KvbridgeError, type ErrorCode, type ReasonKind } from "../../errors/kvbridge-error.js";

/** "KVBT" in wire order; every frame in both directions starts with it. */
export const FRAME_MAGIC = Buffer.from("KVBT", "latin1");
/**
 * Bumped on any change to the layouts of existing frames; a receiver closes connections speaking
 * another one. New frame types (COMMIT, COMMIT_ACK) are sent only to peers that negotiated them in
 * Hello, so they did not change it.
 */
export const TCP_PROTOCOL_VERSION = 1;

export const FrameType = {
  WRITE: 1,
  ACK: 2,
  NACK: 3,
  CLOSE: 4,
  /**
   * Sender -> receiver: commit a request (negotiated: data_plane_commit). 0x1e is 5 bit flips away from
   * WRITE (1): a corrupted WRITE header is closed as garbage, never read as a commit.
   */
  COMMIT: 0x1e,
  /** Receiver -> sender: the COMMIT frame's request is committed; carries its key counts. */
  COMMIT_ACK: 6,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

/** Size of a WRITE frame's fixed header; the request id and then the payload follow it. */
export const WRITE_HEADER_BYTES = 32;
/** Size of a reply's fixed header; the message follows it. */
export const REPLY_HEADER_BYTES = 16;
/** Upper bound on a request id's UTF-8 length, so a header never needs more than 288 bytes of buffer. */
export const MAX_REQUEST_ID_BYTES = 256;
/** Upper bound on a reply message's UTF-8 length; longer messages are cut at a character boundary. */
export const MAX_REPLY_MESSAGE_BYTES = 1024;
/** Upper bound on a NACK's reason (ASCII, e.g. "lease_expired"), part of its message bytes. */
export const MAX_REPLY_REASON_BYTES = 64;
/** A COMMIT_ACK's body: keys_ready, keys_pending, keys_failed (u32 each). */
export const COMMIT_ACK_BODY_BYTES = 12;
export const WRITE_TOKEN_BYTES = 8;
/** Largest payload a receiver accepts by default (it refuses to even skip more than this). */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** The fields of a WRITE frame's header, decoded. */
export interface WriteFrameHeader {
  requestIdBytes: number;
  seq: number;
  slot: number;
  offsetInSlot: number;
  payloadBytes: number;
  /** A view into the header buffer; copy it before the buffer is reused. */
  token: Buffer;
}

export type ReplyFrame =
  | { type: typeof FrameType.ACK; seq: number }
  /** `reason`: only on the answer to a COMMIT frame (a sender of WRITE frames only reads byte 13 as reserved). */
  | { type: typeof FrameType.NACK; seq: number; code: ErrorCode; message: string; reason?: ReasonKind }
  | { type: typeof FrameType.CLOSE; seq: number; code: ErrorCode; message: string }
  | { type: typeof FrameType.COMMIT_ACK; seq: number; ready: number; pending: number; failed: number };

/**
 * Error codes on the wire, one byte each. The numbers are part of the protocol: append, never
 * renumber. 0 is "no error" (ACK).
 */
const WIRE_CODES: readonly ErrorCode[] = [
  "INVALID_ARGUMENT", // 1
  "NOT_FOUND", // 2
  "ALREADY_EXISTS", // 3
  "FAILED_PRECONDITION", // 4
  "RESOURCE_EXHAUSTED", // 5
  "DEADLINE_EXCEEDED", // 6
  "CANCELLED", // 7
  "UNAVAILABLE", // 8
  "PERMISSION_DENIED", // 9
  "INCOMPATIBLE", // 10
  "KV_FAILED", // 11
  "INTERNAL", // 12
];

export function errorCodeToWire(code: ErrorCode): number {
  return WIRE_CODES.indexOf(code) + 1;
}

/** Unknown numbers (a newer peer) read as INTERNAL so the caller still gets a typed error. */
export function errorCodeFromWire(value: number): ErrorCode {
  return WIRE_CODES[value - 1] ?? "INTERNAL";
}

/** UTF-8 bytes of a request id, checked against the protocol's bounds. */
export function encodeRequestId(requestId: string): Buffer {
  const bytes = Buffer.from(requestId, "utf8");
  if (bytes.length === 0 || bytes.length > MAX_REQUEST_ID_BYTES) {
    throw new KvbridgeError(
      "INVALID_ARGUMENT",
      `request id ${JSON.stringify(requestId.slice(0, 40))} is ${bytes.length} UTF-8 bytes; ` +
        `the TCP data plane needs 1..${MAX_REQUEST_ID_BYTES}`,
    );
  }
  return bytes;
}

/**
 * Builds one WRITE frame header followed by the request id bytes, in one buffer, so the sender can
 * hand the kernel [header, payload] as a single writev without copying the payload.
 */
export function encodeWriteHeader(
  requestIdBytes: Buffer,
  seq: number,
  slot: number,
  offsetInSlot: number,
  payloadBytes: number,
  token: Buffer,
): Buffer {
  const buf = Buffer.allocUnsafe(WRITE_HEADER_BYTES + requestIdBytes.length);
  FRAME_MAGIC.copy(buf, 0);
  buf.writeUInt8(TCP_PROTOCOL_VERSION, 4);
  buf.writeUInt8(FrameType.WRITE, 5);
  buf.writeUInt16LE(requestIdBytes.length, 6);
  buf.writeUInt32LE(seq >>> 0, 8);
  buf.writeUInt32LE(slot, 12);
  buf.writeUInt32LE(offsetInSlot, 16);
  buf.writeUInt32LE(payloadBytes, 20);
  token.copy(buf, 24, 0, WRITE_TOKEN_BYTES);
  requestIdBytes.copy(buf, WRITE_HEADER_BYTES);
  return buf;
}

/** Why a header cannot be a WRITE frame of this protocol; null when it is well formed. */
export type HeaderProblem = { code: ErrorCode; message: string };

/** Bytes of a frame header that identify the protocol (magic, version, type). */
export const WRITE_PREFIX_BYTES = 6;

/**
 * Checks magic, version and frame type, which the receiver does as soon as the first 6 bytes are
 * in, so a stray client (an HTTP probe, a port scanner) is turned away without waiting for 32 bytes.
 */
export function checkWritePrefix(header: Buffer): HeaderProblem | null {
  if (header.compare(FRAME_MAGIC, 0, 4, 0, 4) !== 0) {
    return {
      code: "INVALID_ARGUMENT",
      message: `bad frame magic 0x${header.subarray(0, 4).toString("hex")}; expected "KVBT" (0x4b564254): not a kvbridge TCP data-plane peer`,
    };
  }
  const version = header.readUInt8(4);
  if (version !== TCP_PROTOCOL_VERSION) {
    return {
      code: "INCOMPATIBLE",
      message: `TCP data-plane protocol version ${version} is not supported; this receiver speaks ${TCP_PROTOCOL_VERSION}: upgrade the older node`,
    };
  }
  const type = header.readUInt8(5);
  if (type !== FrameType.WRITE && type !== FrameType.COMMIT) {
    return { code: "INVALID_ARGUMENT", message: `frame type ${type} is not WRITE (1) or COMMIT (30); senders only send those` };
  }
  return null;
}

/**
 * Validates and decodes a WRITE header. Any problem is fatal for the connection: after a bad
 * header there is no way to find the next frame boundary.
 */
export function decodeWriteHeader(
  header: Buffer,
  maxFrameBytes: number,
): { ok: true; header: WriteFrameHeader } | { ok: false; problem: HeaderProblem } {
  if (header.length < WRITE_HEADER_BYTES) {
    return { ok: false, problem: { code: "INTERNAL", message: `header buffer is ${header.length} bytes` } };
  }
  const prefixProblem = checkWritePrefix(header);
  if (prefixProblem) return { ok: false, problem: prefixProblem };
  if (header.readUInt8(5) !== FrameType.WRITE) return { ok: false, problem: { code: "INTERNAL", message: "decodeWriteHeader called on a frame that is not WRITE" } };
  const requestIdBytes = header.readUInt16LE(6);
  if (requestIdBytes === 0 || requestIdBytes > MAX_REQUEST_ID_BYTES) {
    return {
      ok: false,
      problem: {
        code: "INVALID_ARGUMENT",
        message: `request id length ${requestIdBytes} is outside 1..${MAX_REQUEST_ID_BYTES}`,
      },
    };
  }
  const payloadBytes = header.readUInt32LE(20);
  if (payloadBytes > maxFrameBytes) {
    return {
      ok: false,
      problem: {
        code: "INVALID_ARGUMENT",
        message: `frame payload of ${payloadBytes} bytes exceeds this receiver's limit of ${maxFrameBytes}; split writes into smaller frames`,
      },
    };
  }
  return {
    ok: true,
    header: {
      requestIdBytes,
      seq: header.readUInt32LE(8),
      slot: header.readUInt32LE(12),
      offsetInSlot: header.readUInt32LE(16),
      payloadBytes,
      token: header.subarray(24, 24 + WRITE_TOKEN_BYTES),
    },
  };
}

function truncateUtf8(message: string, max = MAX_REPLY_MESSAGE_BYTES): Buffer {
  const bytes = Buffer.from(message, "utf8");
  if (bytes.length <= max) return bytes;
  // Step back over continuation bytes (10xxxxxx) so the cut never splits a character.
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/** The body after a reply's header: none (ACK), the counts (COMMIT_ACK), or [reason] + message. */
function replyBody(reply: ReplyFrame): { body: Buffer; reasonBytes: number } {
  switch (reply.type) {
    case FrameType.ACK:
      return { body: Buffer.alloc(0), reasonBytes: 0 };
    case FrameType.COMMIT_ACK: {
      const body = Buffer.alloc(COMMIT_ACK_BODY_BYTES);
      body.writeUInt32LE(reply.ready >>> 0, 0);
      body.writeUInt32LE(reply.pending >>> 0, 4);
      body.writeUInt32LE(reply.failed >>> 0, 8);
      return { body, reasonBytes: 0 };
    }
    case FrameType.NACK: {
      const reason = reply.reason ? Buffer.from(reply.reason, "latin1").subarray(0, MAX_REPLY_REASON_BYTES) : Buffer.alloc(0);
      const message = truncateUtf8(reply.message, MAX_REPLY_MESSAGE_BYTES - reason.length);
      return { body: Buffer.concat([reason, message]), reasonBytes: reason.length };
    }
    case FrameType.CLOSE:
      return { body: truncateUtf8(reply.message), reasonBytes: 0 };
  }
}

/** Encodes an ACK (code 0, no body), NACK, CLOSE or COMMIT_ACK reply. */
export function encodeReply(reply: ReplyFrame): Buffer {
  const { body, reasonBytes } = replyBody(reply);
  const buf = Buffer.alloc(REPLY_HEADER_BYTES + body.length);
  FRAME_MAGIC.copy(buf, 0);
  buf.writeUInt8(TCP_PROTOCOL_VERSION, 4);
  buf.writeUInt8(reply.type, 5);
  buf.writeUInt16LE(body.length, 6);
  buf.writeUInt32LE(reply.seq >>> 0, 8);
  buf.writeUInt8(reply.type === FrameType.NACK || reply.type === FrameType.CLOSE ? errorCodeToWire(reply.code) : 0, 12);
  buf.writeUInt8(reasonBytes, 13);
  body.copy(buf, REPLY_HEADER_BYTES);
  return buf;
}

/**
 * Incremental decoder for the reply stream (small frames, so copying into an accumulator is
 * cheap). push() returns the replies completed by `chunk`, or throws INVALID_ARGUMENT / INCOMPATIBLE
 * on a malformed stream, after which the connection must be dropped.
 */
export class ReplyDecoder {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): ReplyFrame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: ReplyFrame[] = [];
    let pos = 0;
    while (this.pending.length - pos >= REPLY_HEADER_BYTES) {
      const h = this.pending.subarray(pos, pos + REPLY_HEADER_BYTES);
      if (h.compare(FRAME_MAGIC, 0, 4, 0, 4) !== 0) {
        throw new KvbridgeError("INVALID_ARGUMENT", `bad reply magic 0x${h.subarray(0, 4).toString("hex")}: the peer is not a kvbridge TCP receiver`);
      }
      const version = h.readUInt8(4);
      if (version !== TCP_PROTOCOL_VERSION) {
        throw new KvbridgeError(
          "INCOMPATIBLE",
          `receiver answered with TCP data-plane protocol version ${version}; this sender speaks ${TCP_PROTOCOL_VERSION}: upgrade the older node`,
        );
      }
      const type = h.readUInt8(5);
      const messageBytes = h.readUInt16LE(6);
      if (messageBytes > MAX_REPLY_MESSAGE_BYTES) {
        throw new KvbridgeError("INVALID_ARGUMENT", `reply message length ${messageBytes} exceeds ${MAX_REPLY_MESSAGE_BYTES}`);
      }
      if (this.pending.length - pos < REPLY_HEADER_BYTES + messageBytes) break;
      const seq = h.readUInt32LE(8);
      const code = errorCodeFromWire(h.readUInt8(12));
      const bodyStart = pos + REPLY_HEADER_BYTES;
      // Byte 13: how many of the message bytes are a NACK's reason (0 on every other reply).
      const reasonBytes = type === FrameType.NACK ? Math.min(h.readUInt8(13), messageBytes) : 0;
      const message = this.pending.toString("utf8", bodyStart + reasonBytes, bodyStart + messageBytes);
      switch (type) {
        case FrameType.ACK:
          out.push({ type: FrameType.ACK, seq });
          break;
        case FrameType.NACK: {
          // A reason this sender does not know (a newer receiver) is dropped, never trusted.
          const reason = this.pending.toString("latin1", bodyStart, bodyStart + reasonBytes);
          out.push(isReasonKind(reason) ? { type: FrameType.NACK, seq, code, message, reason } : { type: FrameType.NACK, seq, code, message });
          break;
        }
        case FrameType.CLOSE:
          out.push({ type: FrameType.CLOSE, seq, code, message });
          break;
        case FrameType.COMMIT_ACK:
          if (messageBytes !== COMMIT_ACK_BODY_BYTES) {
            throw new KvbridgeError("INVALID_ARGUMENT", `COMMIT_ACK with a ${messageBytes}-byte body; it carries ${COMMIT_ACK_BODY_BYTES}`);
          }
          out.push({
            type: FrameType.COMMIT_ACK,
            seq,
            ready: this.pending.readUInt32LE(bodyStart),
            pending: this.pending.readUInt32LE(bodyStart + 4),
            failed: this.pending.readUInt32LE(bodyStart + 8),
          });
          break;
        default:
          throw new KvbridgeError("INVALID_ARGUMENT", `reply frame type ${type} is not ACK (2), NACK (3), CLOSE (4) or COMMIT_ACK (6)`);
      }
      pos += REPLY_HEADER_BYTES + messageBytes;
    }
    // Keep only the unconsumed tail; a copy so the socket's chunk can be released.
    this.pending = pos === this.pending.length ? Buffer.alloc(0) : Buffer.from(this.pending.subarray(pos));
    return out;
  }
}
