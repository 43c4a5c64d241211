// The UCX data-plane commit's messages, carried as UCX active messages on the sender's endpoint:
// COMMIT (sender -> receiver, AM id UCX_AM_COMMIT) is the TCP COMMIT frame's bytes with its reserved
// bytes 20..31 holding one slot of the request and that slot's write token (the proof that the sender
// holds the request's Alloc answer); the answer (receiver -> sender, AM id UCX_AM_COMMIT_REPLY) is the
// TCP COMMIT_ACK or NACK reply frame. docs/protocol.md has the bytes.

import { KvbridgeError } from "../../errors/kvbridge-error.js";
import type { CommitProof } from "../transport.js";
import { decodeCommitHeader, decodeProofs, encodeCommitFrame, encodeProofs, COMMIT_HEADER_BYTES } from "../tcp/tcp-commit-frame.js";
import {
  encodeReply,
  encodeRequestId,
  FRAME_MAGIC,
  FrameType,
  ReplyDecoder,
  TCP_PROTOCOL_VERSION,
  WRITE_TOKEN_BYTES,
  type ReplyFrame,
} from "../tcp/tcp-frame.js";

/** Active-message id of a COMMIT (handled by the receiver's worker). */
export const UCX_AM_COMMIT = 0x6b63;
/** Active-message id of a COMMIT's answer (handled by the sender's worker). */
export const UCX_AM_COMMIT_REPLY = 0x6b61;

/** Where the ownership proof sits in the COMMIT frame's header (its reserved bytes). */
const SLOT_OFFSET = 20;
const TOKEN_OFFSET = 24;

export interface UcxCommitMessage {
  requestId: string;
  seq: number;
  /** A slot the request was allocated, and its write token: only the Alloc's caller knows it. */
  slot: number;
  token: Buffer;
  proofs: Map<string, number>;
}

/** Encodes a COMMIT. Throws INVALID_ARGUMENT for a request id, token or proofs outside the protocol's bounds. */
export function encodeUcxCommit(requestId: string, seq: number, slot: number, token: Buffer, proofs: readonly CommitProof[]): Buffer {
  if (token.length !== WRITE_TOKEN_BYTES) throw new KvbridgeError("INVALID_ARGUMENT", `write token of ${token.length} bytes; tokens are ${WRITE_TOKEN_BYTES}`);
  if (!Number.isInteger(slot) || slot < 0 || slot > 0xffffffff) throw new KvbridgeError("INVALID_ARGUMENT", `slot ${slot} is not a u32`);
  const buf = encodeCommitFrame(encodeRequestId(requestId), seq, proofs.length, encodeProofs(proofs));
  buf.writeUInt32LE(slot, SLOT_OFFSET);
  token.copy(buf, TOKEN_OFFSET);
  return buf;
}

/**
 * Decodes a COMMIT. `seq` is returned whenever the header could be read (so a malformed message can
 * still be answered with a NACK); `ok: false` says why it cannot be committed.
 */
export function decodeUcxCommit(msg: Buffer): { ok: true; commit: UcxCommitMessage } | { ok: false; seq: number | null; message: string } {
  if (msg.length < COMMIT_HEADER_BYTES) return { ok: false, seq: null, message: `COMMIT message of ${msg.length} bytes is shorter than its ${COMMIT_HEADER_BYTES}-byte header` };
  if (msg.compare(FRAME_MAGIC, 0, 4, 0, 4) !== 0 || msg.readUInt8(4) !== TCP_PROTOCOL_VERSION || msg.readUInt8(5) !== FrameType.COMMIT) {
    return { ok: false, seq: null, message: "not a kvbridge COMMIT message (magic, version or type)" };
  }
  const seq = msg.readUInt32LE(8);
  const h = decodeCommitHeader(msg.subarray(0, COMMIT_HEADER_BYTES));
  if (!h.ok) return { ok: false, seq, message: h.problem.message };
  const { requestIdBytes, proofCount, proofBytes } = h.header;
  if (msg.length !== COMMIT_HEADER_BYTES + requestIdBytes + proofBytes) {
    return { ok: false, seq, message: `COMMIT message of ${msg.length} bytes; its header announces ${COMMIT_HEADER_BYTES + requestIdBytes + proofBytes}` };
  }
  let requestId: string;
  try {
    requestId = new TextDecoder("utf-8", { fatal: true }).decode(msg.subarray(COMMIT_HEADER_BYTES, COMMIT_HEADER_BYTES + requestIdBytes));
  } catch {
    return { ok: false, seq, message: "the request id is not valid UTF-8" };
  }
  const proofs = decodeProofs(msg.subarray(COMMIT_HEADER_BYTES + requestIdBytes), proofCount);
  if (!proofs.ok) return { ok: false, seq, message: proofs.message };
  return {
    ok: true,
    commit: { requestId, seq, slot: msg.readUInt32LE(SLOT_OFFSET), token: Buffer.from(msg.subarray(TOKEN_OFFSET, TOKEN_OFFSET + WRITE_TOKEN_BYTES)), proofs: proofs.proofs },
  };
}

/** The answer: a COMMIT_ACK or NACK reply frame. */
export function encodeUcxCommitReply(reply: ReplyFrame): Buffer {
  return encodeReply(reply);
}

/** Decodes one answer (one AM carries exactly one reply frame). Throws INVALID_ARGUMENT when it is not one. */
export function decodeUcxCommitReply(msg: Buffer): ReplyFrame {
  const frames = new ReplyDecoder().push(Buffer.from(msg));
  if (frames.length !== 1) throw new KvbridgeError("INVALID_ARGUMENT", `a COMMIT answer carries one reply frame, this one ${frames.length} (or a cut one)`);
  const f = frames[0]!;
  if (f.type !== FrameType.COMMIT_ACK && f.type !== FrameType.NACK) throw new KvbridgeError("INVALID_ARGUMENT", `a COMMIT answer is COMMIT_ACK or NACK, not frame type ${f.type}`);
  return f;
}
