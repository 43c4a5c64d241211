// The engine's public types: options, chunks, and what prefill and generate return
// (llama-engine.ts re-exports them).

import type { PromptOptions } from "./prompt-tokenizer.js";
import type { ResponseFormat, EngineSampling } from "./sampling.js";
import type { FinishReason, TokenLogprob } from "./sequence-evaluation.js";

export interface EngineOptions extends PromptOptions {
  modelPath: string;
  /** CPU threads per evaluation. Default 1: measured fastest per request on small models (docs/engine.md). */
  threads?: number;
  /** Tokens per sequence (prompt + output). Default min(16384, the model's trained context). */
  contextSize?: number;
  /** Tokens per KV chunk. Default 128 (docs/engine.md). Part of the fingerprint. */
  chunkTokens?: number;
  /** Concurrent requests (one sequence each). Default 4. */
  maxSequences?: number;
  /**
   * How concurrent requests share llama.cpp (docs/engine.md, "Batched decode"):
   * "invariant" (default): one context whose sequences are evaluated in one llama_decode call per
   *   step, each row computed exactly as in a lone run: output never depends on what runs beside it;
   * "shared": the same context, rows of several sequences in one matrix product (weights read once
   *   per step); logits may differ from a lone run's in the last bits;
   * "context-per-request": a context per request (the baseline).
   */
  batching?: EngineBatching;
  /** Longest wait for a free sequence before RESOURCE_EXHAUSTED. Default 60 s. */
  sequenceWaitMs?: number;
  /**
   * Bytes of KV chunks prefill keeps by chunk key, least recently used out first, so that a
   * prompt whose leading chunks were cut before is evaluated only from the first chunk not kept.
   * Default PREFIX_CACHE_BYTES (256 MiB); 0 turns the cache off. Not part of the fingerprint.
   */
  prefixCacheBytes?: number;
}

export type EngineBatching = "invariant" | "shared" | "context-per-request";

export interface KvChunk {
  index: number;
  key: string;
  tokenStart: number;
  tokenEnd: number;
  bytes: Buffer;
}

export interface GenerateResult {
  text: string;
  tokens: number[];
  /** Prompt tokens whose KV this call computed instead of loading (see generate). */
  recomputedTokens: number;
  finishReason: FinishReason;
  /** Per generated token, when sampling.logprobs was set. */
  logprobs?: TokenLogprob[];
  /** The seed a sampled request ran with (its own modulo 2^32, or the random one drawn); absent when greedy. */
  seed?: number;
}

export interface GenerateLocalOptions {
  tokens: readonly number[];
  maxTokens: number;
  signal?: AbortSignal;
  /**
   * Called once per generated token, in order, with the text that token made final ("" while a
   * character or a possible stop string is incomplete). When generation ends on EOS with text
   * still held back, one last call delivers it with the EOS token. The result's `text` is the
   * concatenation of every `text` passed here.
   */
  onToken?: (text: string, token: number) => void;
  /** Stop strings: output ends before the first occurrence of any of them. */
  stop?: string[];
  /** Sampling parameters (validateSampling checks them; invalid ones reject with INVALID_ARGUMENT naming the param). Absent: greedy. */
  sampling?: EngineSampling;
  /** Constrained output: JSON, or JSON matching a schema. */
  responseFormat?: ResponseFormat;
}

export interface GenerateOptions extends GenerateLocalOptions {
  /**
   * Bytes of chunks 0..k-1 of `tokens` (k from 0 to every chunk), as prefill cut them. A buffer
   * may run past its chunk (a whole pool slot); the chunk header says where the chunk ends.
   */
  prefix: readonly Buffer[];
  /**
   * Called once the prefix buffers have been validated and copied, before waiting for a sequence
   * and before any evaluation: from then on the caller may reuse them (release its pins). Not
   * called when validation fails; generate then rejects and the buffers are the caller's again.
   */
  onPrefixConsumed?: () => void;
}

/** What prefill returns: every chunk of the prompt, and how much of it was evaluated. */
export interface PrefillResult {
  chunks: KvChunk[];
  /** Milliseconds spent evaluating tokens (0 when every chunk came from the prefix cache). */
  evalMs: number;
  /** Leading chunks taken from the prefix cache instead of evaluated (0: a cold prefill). */
  cachedChunks: number;
}

