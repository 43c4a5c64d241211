// Commit proofs for chunks written by one-sided puts (UCX): the receiver never sees those bytes
// arrive, so the sender names, per chunk, the CRC-32 of exactly the bytes it put, and the receiver
// accepts a chunk only when its slot holds bytes with that checksum. A Commit with a missing or
// wrong proof cannot make a key READY over bytes its caller did not write.

import { crc32 } from "node:zlib";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { PoolMemory } from "../memory/pool-memory.js";
import type { ChunkToVerify, CommitVerifier } from "../store/kv-store.js";

/** CRC-32 (ISO-HDLC, zlib's) of a chunk's bytes, as an unsigned 32-bit integer. */
export function chunkCrc32(bytes: Uint8Array): number {
  return crc32(bytes) >>> 0;
}

export interface WireChunkProof {
  key: string;
  crc32: number;
}

/** Proofs by key; a key named twice with different checksums is refused (the caller is confused or hostile). */
export function proofsByKey(proofs: readonly WireChunkProof[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of proofs) {
    if (!Number.isInteger(p.crc32) || p.crc32 < 0 || p.crc32 > 0xffff_ffff) {
      throw new KvbridgeError("INVALID_ARGUMENT", `proof for key ${p.key} carries crc32 ${p.crc32}; it must be an unsigned 32-bit integer`, {
        details: { reason: "proof_invalid", param: "proofs" },
      });
    }
    const seen = out.get(p.key);
    if (seen !== undefined && seen !== p.crc32) {
      throw new KvbridgeError("INVALID_ARGUMENT", `key ${p.key} has two different proofs in one Commit`, { details: { reason: "proof_invalid", param: "proofs" } });
    }
    out.set(p.key, p.crc32);
  }
  return out;
}

/**
 * The store's verifier for one Commit: a chunk the data plane did not count in full is proven only
 * when a proof names its key and the slot's first `size` bytes have that CRC-32. No proof, no READY.
 */
export function proofVerifier(memory: PoolMemory, proofs: ReadonlyMap<string, number>): CommitVerifier {
  return (chunk: ChunkToVerify) => {
    const claimed = proofs.get(chunk.key);
    if (claimed === undefined) return false;
    return chunkCrc32(memory.slotView(chunk.slot, chunk.size)) === claimed;
  };
}
