// Chunk keys: a sha256 hash chain over the token prefix, seeded with the engine fingerprint.
// Equal prefixes give equal keys on every node and in every process (no per-process hash seed);
// a key commits to every token before its chunk's end, so two prompts share exactly the keys of
// the whole chunks they have in common, and nothing after the first chunk where they differ.

import { createHash } from "node:crypto";
import { KvbridgeError } from "../errors/kvbridge-error.js";

const DOMAIN = "kvbridge.chunk-key.v1";

/** Number of chunks for `tokenCount` tokens (the last one may be partial). */
export function chunkCount(tokenCount: number, chunkTokens: number): number {
  return Math.ceil(tokenCount / chunkTokens);
}

/** The token range of chunk `index`. */
export function chunkRange(index: number, tokenCount: number, chunkTokens: number): { tokenStart: number; tokenEnd: number } {
  const tokenStart = index * chunkTokens;
  return { tokenStart, tokenEnd: Math.min(tokenStart + chunkTokens, tokenCount) };
}

/**
 * key[i] = sha256(key[i-1] | u32 count | tokens of chunk i as u32), with key[-1] derived from the
 * fingerprint. The count makes a partial last chunk's key differ from the full chunk that
 * starts with the same tokens.
 */
export function computeChunkKeys(fingerprint: string, chunkTokens: number, tokens: readonly number[]): string[] {
  if (!Number.isInteger(chunkTokens) || chunkTokens <= 0) {
    throw new KvbridgeError("INVALID_ARGUMENT", `chunkTokens must be a positive integer, got ${chunkTokens}`);
  }
  let prev = createHash("sha256").update(DOMAIN).update(fingerprint).digest();
  const keys: string[] = [];
  const n = chunkCount(tokens.length, chunkTokens);
  for (let i = 0; i < n; i++) {
    const { tokenStart, tokenEnd } = chunkRange(i, tokens.length, chunkTokens);
    const body = Buffer.allocUnsafe(4 + 4 * (tokenEnd - tokenStart));
    body.writeUInt32LE(tokenEnd - tokenStart, 0);
    for (let t = tokenStart; t < tokenEnd; t++) {
      const tok = tokens[t]!;
      if (!Number.isInteger(tok) || tok < 0 || tok > 0xffffffff) {
        throw new KvbridgeError("INVALID_ARGUMENT", `token ${t} is ${tok}; tokens are non-negative integers`);
      }
      body.writeUInt32LE(tok, 4 + 4 * (t - tokenStart));
    }
    prev = createHash("sha256").update(prev).update(body).digest();
    keys.push(prev.toString("hex"));
  }
  return keys;
}
