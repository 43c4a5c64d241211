// What a prefill can take from its engine's prefix cache: the leading run of this prompt's chunks
// that are cached, each checked as a decode node checks a chunk it was handed (format, checksum,
// fingerprint, layout, index, token range, key: prefix-chunks.ts), assembled into a sequence state
// ready to load. The first chunk that fails its check is dropped from the cache with everything
// after it, and the prefix ends before it: a bad cached chunk costs a recompute, never the request.

import { toKvbridgeError } from "../errors/kvbridge-error.js";
import { assembleSequenceState } from "./kv-state-layout.js";
import { checkPrefixChunk, type ChunkEngine } from "./prefix-chunks.js";
import type { PrefixCache } from "./prefix-cache.js";

export interface ReusablePrefix {
  /** Cached bytes of chunks 0..count-1, the buffers the cache holds. */
  bytes: Buffer[];
  /** Tokens they cover (chunk `count`'s tokenStart); 0 when nothing is reused. */
  tokens: number;
  /** The sequence state of tokens [0, tokens), for loadSequenceState; null when nothing is reused. */
  state: Buffer | null;
  /** Why the leading run was cut short by a bad chunk (its KvbridgeError message), if it was. */
  dropped?: string;
}

export const NO_PREFIX: ReusablePrefix = { bytes: [], tokens: 0, state: null };

export function reusablePrefix(cache: PrefixCache, engine: ChunkEngine, streams: number, keys: readonly string[], tokens: readonly number[]): ReusablePrefix {
  if (!cache.enabled) return NO_PREFIX;
  const bytes = cache.take(keys);
  const parts = [];
  let dropped: string | undefined;
  for (let i = 0; i < bytes.length; i++) {
    try {
      parts.push(checkPrefixChunk(engine, bytes[i]!, i, keys, tokens.length).part);
    } catch (err) {
      cache.drop(keys, i);
      dropped = toKvbridgeError(err).message;
      bytes.length = i;
      break;
    }
  }
  if (parts.length === 0) return dropped === undefined ? NO_PREFIX : { ...NO_PREFIX, dropped };
  const covered = Math.min(parts.length * engine.chunkTokens, tokens.length);
  const state = covered < tokens.length ? assembleSequenceState(engine.layout, tokens.slice(0, covered), parts, streams) : null;
  return { bytes, tokens: covered, state, ...(dropped === undefined ? {} : { dropped }) };
}
