// Checking a prefix chunk a decode node was handed before anything of it is loaded: format and
// checksum (decodeChunk), then that it is exactly chunk i of this prompt from this engine. Any
// failure is INCOMPATIBLE with a message naming the chunk and the cause, and costs no evaluation.
// checkPrefixChunks checks a whole prefix with a turn of the event loop between chunks: the
// checksum of one chunk (about 1 MiB on the project's model) is the longest synchronous step, where
// a whole 4096-token prefix checked at once held the loop 10-20 ms.

import { setImmediate as nextTurn } from "node:timers/promises";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { chunkRange } from "./chunk-keys.js";
import { decodeChunk, type DecodedChunk } from "./kv-chunk-format.js";
import { layoutsEqual, type KvStateLayout } from "./kv-state-layout.js";

/** What a chunk must match: the engine's fingerprint, KV layout and chunk size. */
export interface ChunkEngine {
  fingerprint: string;
  layout: KvStateLayout;
  chunkTokens: number;
  modelSha256: string;
}

export function checkPrefixChunk(engine: ChunkEngine, bytes: Buffer, i: number, keys: readonly string[], tokenCount: number): DecodedChunk {
  if (!Buffer.isBuffer(bytes)) throw new KvbridgeError("INVALID_ARGUMENT", `prefix chunk ${i} is not a Buffer`);
  const c = decodeChunk(bytes, `prefix chunk ${i}`);
  if (c.fingerprint !== engine.fingerprint) {
    throw new KvbridgeError(
      "INCOMPATIBLE",
      `prefix chunk ${i} was made by an engine with fingerprint ${c.fingerprint.slice(0, 16)}, this one is ${engine.fingerprint.slice(0, 16)} ` +
        `(model sha256 ${engine.modelSha256.slice(0, 16)}, chunkTokens ${engine.chunkTokens}); run the same model file, ` +
        `chunk size and kvbridge release on prefill and decode nodes`,
    );
  }
  if (!layoutsEqual(c.layout, engine.layout)) {
    throw new KvbridgeError("INCOMPATIBLE", `prefix chunk ${i} describes a KV layout that differs from this engine's, under the same fingerprint; the chunk was not written by kvbridge`);
  }
  const want = chunkRange(i, tokenCount, engine.chunkTokens);
  if (c.index !== i || c.tokenStart !== want.tokenStart || c.tokenEnd !== want.tokenEnd) {
    throw new KvbridgeError(
      "INCOMPATIBLE",
      `prefix chunk ${i} is chunk ${c.index} holding tokens [${c.tokenStart}, ${c.tokenEnd}); position ${i} needs [${want.tokenStart}, ${want.tokenEnd}). Pass chunks in order, starting at chunk 0`,
    );
  }
  if (c.key !== keys[i]) {
    throw new KvbridgeError("INCOMPATIBLE", `prefix chunk ${i} (key ${c.key.slice(0, 16)}) was cut from a different prompt; this prompt's chunk ${i} has key ${keys[i]!.slice(0, 16)}`);
  }
  return c;
}

/** checkPrefixChunk on chunks 0..n-1 in order, yielding to the event loop between chunks; throws at the first bad one. */
export async function checkPrefixChunks(engine: ChunkEngine, prefix: readonly Buffer[], keys: readonly string[], tokenCount: number, signal?: AbortSignal): Promise<DecodedChunk[]> {
  const out: DecodedChunk[] = [];
  for (let i = 0; i < prefix.length; i++) {
    if (i > 0) {
      await nextTurn();
      signal?.throwIfAborted();
    }
    out.push(checkPrefixChunk(engine, prefix[i]!, i, keys, tokenCount));
  }
  return out;
}

/** The leading chunks that pass checkPrefixChunk, and the first that does not (its index and why). */
export interface PrefixCheck {
  valid: Buffer[];
  bad?: { index: number; key: string; why: string };
}

/** checkPrefixChunk on chunks 0..n-1, yielding between chunks, stopping at the first bad one instead of throwing. */
export async function validLeadingChunks(engine: ChunkEngine, prefix: readonly Buffer[], keys: readonly string[], tokenCount: number, signal?: AbortSignal): Promise<PrefixCheck> {
  for (let i = 0; i < prefix.length; i++) {
    if (i > 0) {
      await nextTurn();
      signal?.throwIfAborted();
    }
    try {
      checkPrefixChunk(engine, prefix[i]!, i, keys, tokenCount);
    } catch (err) {
      if (!(err instanceof KvbridgeError)) throw err;
      return { valid: prefix.slice(0, i), bad: { index: i, key: keys[i] ?? "", why: err.message } };
    }
  }
  return { valid: [...prefix] };
}
