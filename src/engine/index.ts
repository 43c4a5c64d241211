// The engine layer's public surface: node-llama-cpp adapter, KV chunking, and the tiny model.

export {
  LlamaEngine,
  DEFAULT_CHUNK_TOKENS,
  DEFAULT_CONTEXT_SIZE,
  DEFAULT_MAX_SEQUENCES,
  DEFAULT_THREADS,
  type EngineBatching,
  type EngineOptions,
  type GenerateLocalOptions,
  type GenerateOptions,
  type GenerateResult,
  type KvChunk,
} from "./llama-engine.js";
export type { FinishReason, TokenLogprob } from "./sequence-evaluation.js";
export {
  isSampled,
  MAX_TOP_LOGPROBS,
  SAMPLING_PARAMS,
  validateResponseFormat,
  validateSampling,
  type EngineSampling,
  type ResponseFormat,
} from "./sampling.js";
export { runGenerate, type RunGenerateOptions } from "./run-generate.js";
export { chunkCount, chunkRange, computeChunkKeys } from "./chunk-keys.js";
export { describeMismatch, type EngineCompatibility } from "./fingerprint.js";
export { CHUNK_FORMAT_VERSION, decodeChunk, type DecodedChunk } from "./kv-chunk-format.js";
export type { KvLayerLayout, KvStateLayout } from "./kv-state-layout.js";
export type { PrefixCheck } from "./prefix-chunks.js";
export {
  DEFAULT_MODEL_OPTIONS,
  defaultModelPath,
  encodeModel,
  ensureDefaultModel,
  writeModel,
  type ModelWriterOptions,
} from "./model-writer.js";
