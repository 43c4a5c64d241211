// The engine: node-llama-cpp behind the API the nodes use. A prefill node evaluates a prompt and
// cuts its KV state into chunks; a decode node validates and loads chunks 0..k-1, recomputes the
// rest of the prompt, and decodes (greedy, or sampled with a seed, optionally under a JSON
// grammar). The output equals the single-process reference (generateLocal) token for token,
// whatever other requests share the context's batches (batch-order.ts).

import path from "node:path";
import type { LlamaModel, Token } from "node-llama-cpp";
import { PREFIX_CACHE_BYTES } from "../config/defaults.js";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import { BatchedSequencePool } from "./batched-sequence-pool.js";
import { ChatRenderer, chatTemplateSource, type ChatTurn, type RenderedChat } from "./chat-template.js";
import { chunkRange, computeChunkKeys } from "./chunk-keys.js";
import { computeFingerprint, hashModelFile, type EngineCompatibility } from "./fingerprint.js";
import { CHUNK_FORMAT_VERSION, chunkByteLength, encodeChunk } from "./kv-chunk-format.js";
import { bytesPerCell, layoutsEqual, parseSequenceState, type KvStateLayout } from "./kv-state-layout.js";
import { loadLlama } from "./llama-binding.js";
import { ggmlTypeName, probeLayout } from "./layout-probe.js";
import { checkPrefixChunks, validLeadingChunks, type ChunkEngine, type PrefixCheck } from "./prefix-chunks.js";
import { PrefixCache, type PrefixCacheStats } from "./prefix-cache.js";
import { NO_PREFIX, reusablePrefix } from "./prefix-reuse.js";
import { ResponseGrammars } from "./response-grammar.js";
import { resolveSeed } from "./sampler-options.js";
import { validateResponseFormat, validateSampling, type EngineSampling, type ResponseFormat } from "./sampling.js";
import { decodeTokens, evaluatePromptRange, PROMPT_PIECE_TOKENS, type DecodeOptions, type FinishReason, type TokenLogprob } from "./sequence-evaluation.js";
import { SequencePool, throwIfAborted, type SequenceLease, type SequenceSource } from "./sequence-pool.js";
import { loadSequenceState, loadStateFile, saveSequenceState, writePartsStateFile, type StateFile } from "./state-file.js";
import type { PromptLimits } from "./prompt-limits.js";
import { modelPromptTokenizer, promptOptions, type PromptOptions, type PromptTokenizer, type TokenizePromptOptions } from "./prompt-tokenizer.js";
import type { EngineOptions, GenerateLocalOptions, GenerateOptions, GenerateResult, KvChunk, PrefillResult } from "./engine-types.js";

export type { EngineBatching, EngineOptions, GenerateLocalOptions, GenerateOptions, GenerateResult, KvChunk, PrefillResult } from "./engine-types.js";

export const DEFAULT_THREADS = 1;
export const DEFAULT_CHUNK_TOKENS = 128;
export const DEFAULT_MAX_SEQUENCES = 4;
export const DEFAULT_CONTEXT_SIZE = 16384;
const DEFAULT_SEQUENCE_WAIT_MS = 60_000;
// Flash attention stays off: on CPU it made one-token decode steps 3-4x slower at long contexts
// (docs/engine.md), and both nodes must agree on it (it changes the V layout and the arithmetic).
const FLASH_ATTENTION = false;

export class LlamaEngine {
  readonly fingerprint: string;
  readonly chunkTokens: number;
  readonly modelId: string;
  /** The fields the fingerprint hashes, for explaining a mismatch to an operator. */
  readonly compatibility: EngineCompatibility;
  /** Bytes of a full chunk (chunkTokens tokens): the smallest pool slot that holds any chunk. */
  readonly maxChunkBytes: number;
  /** KV bytes per prompt token (all layers, K and V). */
  readonly kvBytesPerToken: number;
  readonly contextSize: number;
  /** Most UTF-8 bytes one token of this vocabulary stands for (Infinity: no bound known); see prompt-limits.ts. */
  readonly maxBytesPerToken: number;

  private readonly prompts: PromptTokenizer;
  private readonly chunkEngine: ChunkEngine;
  private readonly prefixCache: PrefixCache;
  private readonly closer = new AbortController();
  private readonly active = new Set<Promise<unknown>>();
  private closing: Promise<void> | null = null;
  private chat: ChatRenderer | undefined;

  private constructor(
    private readonly model: LlamaModel,
    private readonly pool: SequenceSource,
    private readonly grammars: ResponseGrammars,
    private readonly layout: KvStateLayout,
    /** KV streams of this engine's contexts (llama.cpp loads a sequence state only with the same count). */
    private readonly streams: number,
    private readonly vocabSize: number,
    init: { modelId: string; modelPath: string; chunkTokens: number; contextSize: number; compatibility: EngineCompatibility; prompt: Required<PromptOptions>; prefixCacheBytes: number },
  ) {
    this.modelId = init.modelId;
    this.chunkTokens = init.chunkTokens;
    this.contextSize = init.contextSize;
    this.compatibility = init.compatibility;
    this.fingerprint = computeFingerprint(init.compatibility);
    this.maxChunkBytes = chunkByteLength(layout, init.chunkTokens);
    this.kvBytesPerToken = bytesPerCell(layout);
    this.prompts = modelPromptTokenizer(model, init.modelPath, init.contextSize, init.prompt);
    this.maxBytesPerToken = this.prompts.bytesPerToken;
    this.prefixCache = new PrefixCache(init.prefixCacheBytes);
    this.chunkEngine = { fingerprint: this.fingerprint, layout, chunkTokens: init.chunkTokens, modelSha256: init.compatibility.modelSha256 };
  }

  static async open(opts: EngineOptions): Promise<LlamaEngine> {
    const threads = positiveInt(opts.threads ?? DEFAULT_THREADS, "threads");
    const chunkTokens = positiveInt(opts.chunkTokens ?? DEFAULT_CHUNK_TOKENS, "chunkTokens");
    const maxSequences = positiveInt(opts.maxSequences ?? DEFAULT_MAX_SEQUENCES, "maxSequences");
    const sequenceWaitMs = positiveInt(opts.sequenceWaitMs ?? DEFAULT_SEQUENCE_WAIT_MS, "sequenceWaitMs");
    if (opts.contextSize !== undefined) positiveInt(opts.contextSize, "contextSize");
    const prefixCacheBytes = opts.prefixCacheBytes ?? PREFIX_CACHE_BYTES;
    new PrefixCache(prefixCacheBytes); // refuses a bad budget before the model is loaded
    const prompt = promptOptions(opts);
    const modelSha256 = await hashModelFile(opts.modelPath);
    const llama = await loadLlama();
    const model = await llama.loadModel({ modelPath: opts.modelPath }).catch((err: unknown) => {
      throw new KvbridgeError("INVALID_ARGUMENT", `llama.cpp could not load ${opts.modelPath} as a GGUF model: ${(err as Error).message}`, { cause: err });
    });
    const batching = opts.batching ?? "invariant";
    if (!["invariant", "shared", "context-per-request"].includes(batching)) {
      throw new KvbridgeError("INVALID_ARGUMENT", `batching must be "invariant", "shared" or "context-per-request", got ${JSON.stringify(batching)}`);
    }
    let pool: SequenceSource | null = null;
    try {
      const contextSize = opts.contextSize ?? Math.min(DEFAULT_CONTEXT_SIZE, model.trainContextSize || DEFAULT_CONTEXT_SIZE);
      const poolOpts = {
        size: maxSequences,
        contextSize,
        batchSize: Math.min(PROMPT_PIECE_TOKENS, contextSize),
        threads,
        flashAttention: FLASH_ATTENTION,
        waitMs: sequenceWaitMs,
      };
      pool = batching === "context-per-request" ? new SequencePool(model, poolOpts) : await BatchedSequencePool.create(model, { ...poolOpts, mode: batching });
      const { layout, streams } = await probeLayout(model, pool);
      const arch = model.fileInfo.architectureMetadata as unknown as {
        block_count?: number;
        embedding_length?: number;
        attention?: { head_count?: number | number[]; head_count_kv?: number | number[] };
      };
      const compatibility: EngineCompatibility = {
        modelSha256,
        architecture: String(model.fileInfo.metadata.general.architecture),
        layers: arch.block_count ?? layout.layers.length,
        embedding: arch.embedding_length ?? 0,
        heads: arch.attention?.head_count ?? 0,
        kvHeads: arch.attention?.head_count_kv ?? arch.attention?.head_count ?? 0,
        kvKeyType: ggmlTypeName(layout.layers[0]?.kType),
        kvValueType: ggmlTypeName(layout.layers[0]?.vType),
        kvLayout: layout,
        chunkTokens,
        chunkFormat: CHUNK_FORMAT_VERSION,
      };
      const tokenList = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
      const vocabSize = Array.isArray(tokenList) ? tokenList.length : Number.MAX_SAFE_INTEGER;
      const modelId = path.basename(opts.modelPath).replace(/\.gguf$/i, "");
      return new LlamaEngine(model, pool, new ResponseGrammars(llama, model), layout, streams, vocabSize, { modelId, modelPath: opts.modelPath, chunkTokens, contextSize, compatibility, prompt, prefixCacheBytes });
    } catch (err) {
      await pool?.close().catch(() => undefined);
      await model.dispose().catch(() => undefined);
      throw toKvbridgeError(err);
    }
  }

  /** Concurrent requests this engine serves (one sequence each). */
  get maxSequences(): number {
    return this.pool.size;
  }

  /** Sequences held by requests right now (a gauge for metrics; 0 when idle). */
  get sequencesInUse(): number {
    return this.pool.inUse;
  }

  tokenize(text: string): number[] {
    this.ensureOpen();
    const tokens: number[] = [...this.model.tokenize(text, false)];
    const bos = this.model.tokens.bos;
    if (bos !== null && this.model.tokens.shouldPrependBosToken) tokens.unshift(bos);
    return tokens;
  }

  /** What tokenizePrompt accepts: characters, and prompt tokens (at most the context less one). */
  get promptLimits(): PromptLimits {
    return this.prompts.limits;
  }

  /**
   * tokenize() for a caller's prompt, with bounded cost to other requests: the limits are checked
   * before tokenizing where the text alone decides them, and a long prompt is tokenized on a worker
   * thread. Refusals are INVALID_ARGUMENT with details { reason: "prompt_too_long", param: "prompt",
   * limit } (limit in characters for the character limit, in tokens otherwise). Same tokens as tokenize().
   */
  async tokenizePrompt(prompt: string, opts?: TokenizePromptOptions): Promise<number[]> {
    this.ensureOpen();
    return this.prompts.tokenize(prompt, opts);
  }

  /** The inverse of tokenize: a leading BOS is skipped so the text's own leading-space rule applies. */
  detokenize(tokens: readonly number[]): string {
    this.ensureOpen();
    const bos = this.model.tokens.bos;
    const body = bos !== null && tokens[0] === bos ? tokens.slice(1) : tokens;
    return this.model.detokenize(body as Token[], false);
  }

  /** Chat messages as this model's prompt text, by its GGUF's chat template (chat-template.ts). */
  renderChat(messages: readonly ChatTurn[]): RenderedChat {
    this.ensureOpen();
    this.chat ??= new ChatRenderer(chatTemplateSource(this.model), this.modelId);
    return this.chat.render(messages);
  }

  chunkKeys(tokens: readonly number[]): string[] {
    return computeChunkKeys(this.fingerprint, this.chunkTokens, tokens);
  }

  /**
   * Evaluates the prompt and returns its KV state cut into chunks (the last one partial). Leading
   * chunks found in the engine's prefix cache (by key) are loaded instead of evaluated, and returned
   * as the cached bytes; only the rest of the prompt is evaluated (`cachedChunks` says how many).
   * The chunks are the same bytes a cold prefill cuts (docs/engine.md, "Prefix cache").
   */
  prefill(tokens: readonly number[], signal?: AbortSignal): Promise<PrefillResult> {
    return this.run(signal, async (sig) => {
      this.checkPrompt(tokens, 0);
      const keys = this.chunkKeys(tokens);
      // Checked and assembled (copied) before a sequence is taken, as generate does with its prefix.
      let reuse = reusablePrefix(this.prefixCache, this.chunkEngine, this.streams, keys, tokens);
      if (reuse.bytes.length === keys.length) {
        return { chunks: keys.map((key, index) => this.chunkOf(key, index, tokens.length, reuse.bytes[index]!)), evalMs: 0, cachedChunks: keys.length };
      }
      const lease = await this.pool.acquire(sig);
      try {
        if (reuse.state) {
          throwIfAborted(sig, "loading the cached prefix");
          try {
            await loadSequenceState(lease.sequence, reuse.state, lease.exclusive);
            if (lease.sequence.nextTokenIndex !== reuse.tokens) throw new KvbridgeError("INTERNAL", `the cached prefix loaded ${lease.sequence.nextTokenIndex} tokens; expected ${reuse.tokens}`);
          } catch {
            throwIfAborted(sig, "loading the cached prefix");
            // llama.cpp refused the state: forget the prefix and evaluate the whole prompt.
            this.prefixCache.drop(keys, 0);
            await lease.exclusive(() => lease.sequence.clearHistory());
            reuse = NO_PREFIX;
          }
        }
        const t0 = performance.now();
        await evaluatePromptRange(lease, tokens, reuse.tokens, tokens.length, sig);
        const evalMs = performance.now() - t0;
        throwIfAborted(sig, "prefilling");
        const state = parseSequenceState(await saveSequenceState(lease.sequence, lease.exclusive));
        if (!layoutsEqual(state.layout, this.layout) || state.cellCount !== tokens.length) {
          throw new KvbridgeError("INTERNAL", `the sequence state after prefill (${state.cellCount} cells) does not match the layout probed at open`);
        }
        const chunks = keys.map((key, index): KvChunk => {
          const cached = reuse.bytes[index];
          if (cached) return this.chunkOf(key, index, tokens.length, cached);
          const { tokenStart, tokenEnd } = chunkRange(index, tokens.length, this.chunkTokens);
          return { index, key, tokenStart, tokenEnd, bytes: encodeChunk({ fingerprint: this.fingerprint, key, index, tokenStart, tokenEnd, state }) };
        });
        this.prefixCache.put(chunks);
        return { chunks, evalMs, cachedChunks: reuse.bytes.length };
      } finally {
        await lease.release();
      }
    });
  }

  /**
   * How many leading chunks of a prompt (its chunkKeys, in order) this engine's prefix cache holds
   * now: a prefill of that prompt evaluates only from chunk `n` on. Cheap (one map lookup per key
   * until the first miss), no effect on the cache's recency. For routers placing a prompt on the
   * prefill node that holds the longest part of it.
   */
  cachedPrefix(keys: readonly string[]): number {
    return this.prefixCache.leadingCount(keys);
  }

  /** The prefix cache's budget, contents and counters (prefixCacheBytes 0: budgetBytes 0, always empty). */
  get prefixCacheStats(): PrefixCacheStats {
    return this.prefixCache.stats();
  }

  /** Empties the prefix cache (a bench's cold runs, an operator's reset); counters are kept. */
  clearPrefixCache(): void {
    this.prefixCache.clear();
  }

  /**
   * The leading chunks of `prefix` that generate would accept for this prompt (format, checksum,
   * fingerprint, layout, index, range, key), and the first it would refuse, with why. Yields to the
   * event loop between chunks, so a caller finding out which READY chunk to evict stalls nobody.
   */
  checkPrefix(tokens: readonly number[], prefix: readonly Buffer[], signal?: AbortSignal): Promise<PrefixCheck> {
    this.ensureOpen();
    return validLeadingChunks(this.chunkEngine, prefix, this.chunkKeys(tokens), tokens.length, signal);
  }

  private chunkOf(key: string, index: number, tokenCount: number, bytes: Buffer): KvChunk {
    return { index, key, ...chunkRange(index, tokenCount, this.chunkTokens), bytes };
  }

  /**
   * Loads the prefix chunks, evaluates the prompt tokens they do not cover, and decodes (greedy,
   * or sampled: with the same seed and sampling the tokens equal generateLocal's).
   * `recomputedTokens` is the number of prompt tokens no chunk covered (0 with every chunk). The
   * prompt's last token is re-evaluated on every path to get its logits (its KV cell from the
   * last chunk is dropped and rewritten), which recomputedTokens does not count.
   */
  generate(opts: GenerateOptions): Promise<GenerateResult> {
    return this.run(opts.signal, async (sig) => {
      const { tokens, prefix } = opts;
      this.checkPrompt(tokens, opts.maxTokens);
      const decoding = await this.decoding(opts);
      const keys = this.chunkKeys(tokens);
      if (prefix.length > keys.length) {
        throw new KvbridgeError("INVALID_ARGUMENT", `${prefix.length} prefix chunks given for a prompt of ${tokens.length} tokens, which has ${keys.length}`);
      }
      // Every chunk is checked, and the state file written (the chunks copied), before a sequence
      // is taken: a bad chunk costs no evaluation, and the caller's buffers are free while this
      // request waits. Both yield to the event loop (between chunks; writev in the thread pool), so
      // other requests' streams on this node never wait for a whole prefix (docs/engine.md).
      const chunks = await checkPrefixChunks(this.chunkEngine, prefix, keys, tokens.length, sig);
      const covered = chunks.length > 0 ? chunks[chunks.length - 1]!.tokenEnd : 0;
      const loaded = Math.min(covered, tokens.length - 1);
      const state = loaded > 0 ? await writePartsStateFile(this.layout, tokens.slice(0, loaded), chunks.map((c) => c.part), this.streams, sig) : null;
      try {
        opts.onPrefixConsumed?.();
        return await this.decodeFromState(opts, decoding, sig, state, loaded, covered);
      } finally {
        await state?.remove();
      }
    });
  }

  /** generate() once its prefix is in a state file: take a sequence, load, evaluate the rest, decode. */
  private async decodeFromState(opts: GenerateOptions, decoding: Pick<DecodeOptions, "sampling" | "seed" | "grammar">, sig: AbortSignal, state: StateFile | null, loaded: number, covered: number): Promise<GenerateResult> {
    const { tokens } = opts;
    const lease = await this.pool.acquire(sig);
    try {
      if (state) {
        throwIfAborted(sig, "loading the KV state");
        await loadStateFile(lease.sequence, state, lease.exclusive);
        if (lease.sequence.nextTokenIndex !== loaded) {
          throw new KvbridgeError("INTERNAL", `loaded KV state holds ${lease.sequence.nextTokenIndex} tokens; expected ${loaded}`);
        }
      }
      await evaluatePromptRange(lease, tokens, loaded, tokens.length - 1, sig);
      const result = await decodeTokens(this.decodeOptions(lease, opts, decoding, sig));
      return { ...result, recomputedTokens: tokens.length - covered, ...seedField(decoding.seed) };
    } finally {
      await lease.release();
    }
  }

  /** The single-process reference: evaluate and decode in one sequence. */
  generateLocal(opts: GenerateLocalOptions): Promise<GenerateResult> {
    return this.run(opts.signal, async (sig) => {
      this.checkPrompt(opts.tokens, opts.maxTokens);
      const decoding = await this.decoding(opts);
      const lease = await this.pool.acquire(sig);
      try {
        await evaluatePromptRange(lease, opts.tokens, 0, opts.tokens.length - 1, sig);
        const result = await decodeTokens(this.decodeOptions(lease, opts, decoding, sig));
        return { ...result, recomputedTokens: opts.tokens.length, ...seedField(decoding.seed) };
      } finally {
        await lease.release();
      }
    });
  }

  /** Stops in-flight requests (they reject with UNAVAILABLE), then frees every context and the model. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closer.abort(new KvbridgeError("UNAVAILABLE", "the engine is closing; retry on another node"));
      await Promise.allSettled([...this.active]);
      this.prefixCache.clear();
      await this.prompts.close();
      await this.pool.close();
      await this.model.dispose();
    })();
    return this.closing;
  }

  /** Validated sampling, the seed, and a grammar state: all decided before a sequence is taken. */
  private async decoding(opts: GenerateLocalOptions): Promise<Pick<DecodeOptions, "sampling" | "seed" | "grammar">> {
    const sampling = validateSampling(opts.sampling, this.vocabSize);
    const grammar = await this.grammars.stateFor(validateResponseFormat(opts.responseFormat));
    return { sampling, seed: resolveSeed(sampling), grammar };
  }

  private decodeOptions(lease: SequenceLease, opts: GenerateLocalOptions, decoding: Pick<DecodeOptions, "sampling" | "seed" | "grammar">, signal: AbortSignal): DecodeOptions {
    // Never let node-llama-cpp shift the context: output stops with "length" where the context ends.
    const room = this.contextSize - opts.tokens.length + 1;
    return {
      model: this.model,
      sequence: lease.sequence,
      prompt: opts.tokens,
      maxTokens: Math.min(opts.maxTokens, room),
      signal,
      onToken: opts.onToken,
      stop: opts.stop,
      evaluationPriority: lease.priority,
      turn: () => lease.turn(),
      ...decoding,
    };
  }

  private checkPrompt(tokens: readonly number[], maxTokens: number): void {
    if (!Array.isArray(tokens) || tokens.length === 0) {
      throw new KvbridgeError("INVALID_ARGUMENT", "the prompt has no tokens; tokenize a non-empty prompt (tokenize() adds BOS)");
    }
    if (tokens.length > this.contextSize) {
      throw new KvbridgeError("INVALID_ARGUMENT", `the prompt has ${tokens.length} tokens but a sequence holds ${this.contextSize}; shorten it or raise contextSize`);
    }
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (!Number.isInteger(t) || t < 0 || t >= this.vocabSize) {
        throw new KvbridgeError("INVALID_ARGUMENT", `prompt token ${i} is ${t}; tokens are integers in [0, ${this.vocabSize})`);
      }
    }
    if (!Number.isInteger(maxTokens) || maxTokens < 0) {
      throw new KvbridgeError("INVALID_ARGUMENT", `maxTokens must be a non-negative integer, got ${maxTokens}`);
    }
  }

  /** Runs one request with its own signal combined with the engine's close signal, tracked for close(). */
  private run<T>(signal: AbortSignal | undefined, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const p = (async () => {
      this.ensureOpen();
      const sig = signal ? AbortSignal.any([signal, this.closer.signal]) : this.closer.signal;
      throwIfAborted(sig, "starting");
      try {
        return await body(sig);
      } catch (err) {
        if (sig.aborted && !(err instanceof KvbridgeError)) throwIfAborted(sig, "running");
        throw toKvbridgeError(err);
      }
    })();
    this.active.add(p);
    void p.then(
      () => this.active.delete(p),
      () => this.active.delete(p),
    );
    return p;
  }

  private ensureOpen(): void {
    if (this.closing) throw new KvbridgeError("UNAVAILABLE", "the engine is closed; open a new one");
  }
}

function seedField(seed: number | undefined): { seed?: number } {
  return seed === undefined ? {} : { seed };
}


function positiveInt(v: number, name: string): number {
  if (!Number.isInteger(v) || v <= 0) throw new KvbridgeError("INVALID_ARGUMENT", `${name} must be a positive integer, got ${v}`);
  return v;
}
