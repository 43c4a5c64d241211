// The TCP data plane's COMMIT frame (sender -> receiver): a request's Commit sent on the data
// connection after its last WRITE frame, with the request id and the proofs the gRPC Commit carries.
// Only sent to a receiver that negotiated `data_plane_commit` in Hello. docs/protocol.md has the bytes.

import { KvbridgeError } from "../../errors/kvbridge-error.js";
import type { CommitProof } from "../transport.js";
import { FRAME_MAGIC, FrameType, MAX_REQUEST_ID_BYTES, TCP_PROTOCOL_VERSION, WRITE_HEADER_BYTES, type HeaderProblem } from "./tcp-frame.js";

/** A COMMIT frame's fixed header is as long as a WRITE frame's, so the receiver reads both alike. */
export const COMMIT_HEADER_BYTES = WRITE_HEADER_BYTES;
/** Most proofs one COMMIT frame may carry (a request's chunk bound). */
export const MAX_COMMIT_PROOFS = 65_536;
/** Largest proofs section a receiver reads; a sender with more commits over gRPC instead. */
export const MAX_COMMIT_PROOF_BYTES = 4 * 1024 * 1024;
/** Longest key in a proof, in UTF-8 bytes (keys are at most 256 characters). */
const MAX_PROOF_KEY_BYTES = 1024;

export interface CommitFrameHeader {
  requestIdBytes: number;
  seq: number;
  proofCount: number;
  proofBytes: number;
}

/** The proofs section: per proof u16 key_len, the key's UTF-8 bytes, u32 crc32. */
export function encodeProofs(proofs: readonly CommitProof[]): Buffer {
  if (proofs.length > MAX_COMMIT_PROOFS) {
    throw new KvbridgeError("INVALID_ARGUMENT", `${proofs.length} proofs exceed the ${MAX_COMMIT_PROOFS} a COMMIT frame carries`);
  }
  const keys = proofs.map((p) => Buffer.from(p.key, "utf8"));
  let size = 0;
  for (const k of keys) {
    if (k.length === 0 || k.length > MAX_PROOF_KEY_BYTES) throw new KvbridgeError("INVALID_ARGUMENT", `proof key of ${k.length} UTF-8 bytes is outside 1..${MAX_PROOF_KEY_BYTES}`);
    size += 2 + k.length + 4;
  }
  if (size > MAX_COMMIT_PROOF_BYTES) {
    throw new KvbridgeError("INVALID_ARGUMENT", `proofs of ${size} bytes exceed the ${MAX_COMMIT_PROOF_BYTES} a COMMIT frame carries`);
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  proofs.forEach((p, i) => {
    const k = keys[i]!;
    out.writeUInt16LE(k.length, pos);
    k.copy(out, pos + 2);
    out.writeUInt32LE(p.crc32 >>> 0, pos + 2 + k.length);
    pos += 2 + k.length + 4;
  });
  return out;
}

/** True when `proofs` fit one COMMIT frame (else the sender commits over gRPC). */
export function proofsFitFrame(proofs: readonly CommitProof[]): boolean {
  if (proofs.length > MAX_COMMIT_PROOFS) return false;
  let size = 0;
  for (const p of proofs) size += 2 + Buffer.byteLength(p.key, "utf8") + 4;
  return size <= MAX_COMMIT_PROOF_BYTES;
}

/** Header + request id + proofs, one buffer (a COMMIT frame is small). */
export function encodeCommitFrame(requestIdBytes: Buffer, seq: number, proofCount: number, proofs: Buffer): Buffer {
  const buf = Buffer.alloc(COMMIT_HEADER_BYTES + requestIdBytes.length + proofs.length);
  FRAME_MAGIC.copy(buf, 0);
  buf.writeUInt8(TCP_PROTOCOL_VERSION, 4);
  buf.writeUInt8(FrameType.COMMIT, 5);
  buf.writeUInt16LE(requestIdBytes.length, 6);
  buf.writeUInt32LE(seq >>> 0, 8);
  buf.writeUInt32LE(proofCount, 12);
  buf.writeUInt32LE(proofs.length, 16);
  // 20..31 reserved, zero.
  requestIdBytes.copy(buf, COMMIT_HEADER_BYTES);
  proofs.copy(buf, COMMIT_HEADER_BYTES + requestIdBytes.length);
  return buf;
}

/** Decodes a COMMIT header whose prefix (magic, version, type) was checked. Problems are fatal for the connection. */
export function decodeCommitHeader(header: Buffer): { ok: true; header: CommitFrameHeader } | { ok: false; problem: HeaderProblem } {
  const requestIdBytes = header.readUInt16LE(6);
  if (requestIdBytes === 0 || requestIdBytes > MAX_REQUEST_ID_BYTES) {
    return { ok: false, problem: { code: "INVALID_ARGUMENT", message: `request id length ${requestIdBytes} is outside 1..${MAX_REQUEST_ID_BYTES}` } };
  }
  const proofCount = header.readUInt32LE(12);
  const proofBytes = header.readUInt32LE(16);
  if (proofCount > MAX_COMMIT_PROOFS || proofBytes > MAX_COMMIT_PROOF_BYTES) {
    return {
      ok: false,
      problem: {
        code: "INVALID_ARGUMENT",
        message: `COMMIT frame with ${proofCount} proofs in ${proofBytes} bytes exceeds ${MAX_COMMIT_PROOFS} proofs or ${MAX_COMMIT_PROOF_BYTES} bytes; commit over gRPC`,
      },
    };
  }
  return { ok: true, header: { requestIdBytes, seq: header.readUInt32LE(8), proofCount, proofBytes } };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The proofs section as CRC-32 by key, or why it is malformed (the frame's bounds are known, so a
 * malformed section is answered with a NACK, not a closed connection).
 */
export function decodeProofs(body: Buffer, count: number): { ok: true; proofs: Map<string, number> } | { ok: false; message: string } {
  const proofs = new Map<string, number>();
  let pos = 0;
  for (let i = 0; i < count; i++) {
    if (body.length - pos < 2) return { ok: false, message: `proof ${i} of ${count} is cut short at byte ${pos}` };
    const keyBytes = body.readUInt16LE(pos);
    if (keyBytes === 0 || keyBytes > MAX_PROOF_KEY_BYTES || body.length - pos < 2 + keyBytes + 4) {
      return { ok: false, message: `proof ${i} of ${count} has a key of ${keyBytes} bytes that does not fit the section (or is outside 1..${MAX_PROOF_KEY_BYTES})` };
    }
    let key: string;
    try {
      key = utf8.decode(body.subarray(pos + 2, pos + 2 + keyBytes));
    } catch {
      return { ok: false, message: `proof ${i} of ${count} has a key that is not valid UTF-8` };
    }
    const crc = body.readUInt32LE(pos + 2 + keyBytes);
    const seen = proofs.get(key);
    if (seen !== undefined && seen !== crc) return { ok: false, message: `key ${key} has two different proofs in one COMMIT frame` };
    proofs.set(key, crc);
    pos += 2 + keyBytes + 4;
  }
  if (pos !== body.length) return { ok: false, message: `${body.length - pos} bytes follow the ${count} proofs of the section` };
  return { ok: true, proofs };
}
