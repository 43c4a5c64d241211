// Tokenizing a caller's prompt with bounded cost to everyone else: the limits first, on the text
// alone (prompt-limits.ts); then a short prompt on the event loop (it costs well under a millisecond)
// and a longer one on the tokenizer thread (tokenizer-worker.ts), so that no prompt, however long,
// holds up another request's Plan, Prefill or tokens; then the token limit on the result.
import type { LlamaModel } from "node-llama-cpp";
import { MAX_PROMPT_CHARS, TOKENIZE_INLINE_CHARS } from "../config/defaults.js";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { checkBeforeTokenizing, checkTokenCount, maxBytesPerToken, type PromptLimits } from "./prompt-limits.js";
import { TokenizerWorker } from "./tokenizer-worker.js";

/** The engine options about prompts (EngineOptions extends these). */
export interface PromptOptions {
  /** tokenizePrompt refuses longer prompts, in characters, before tokenizing. Default MAX_PROMPT_CHARS. */
  maxPromptChars?: number;
  /** tokenizePrompt refuses prompts of more tokens (BOS included). Default and most: the context less one. */
  maxPromptTokens?: number;
  /** Prompts up to this many characters are tokenized on the event loop, longer ones on a worker thread. Default TOKENIZE_INLINE_CHARS. */
  tokenizeInlineChars?: number;
}

export interface PromptTokenizerOptions {
  limits: PromptLimits;
  /** Most UTF-8 bytes one token stands for (maxBytesPerToken), Infinity when unknown. */
  bytesPerToken: number;
  /** The token prepended to every prompt, or null. */
  bos: number | null;
  /** Prompts up to this many characters are tokenized on the calling thread. */
  inlineChars: number;
  /** The model's tokenize(text, false), on the calling thread. */
  tokenizeHere(text: string): number[];
  worker: TokenizerWorker;
}

export interface TokenizePromptOptions {
  signal?: AbortSignal;
  /** A lower token limit for this call (e.g. the context less the completion asked for). */
  maxTokens?: number;
}

/** The options checked, with their defaults. */
export function promptOptions(o: PromptOptions): Required<PromptOptions> {
  const int = (v: number, name: string, min: number): number => {
    if (!Number.isInteger(v) || v < min) throw new KvbridgeError("INVALID_ARGUMENT", `${name} must be an integer of at least ${min}, got ${v}`);
    return v;
  };
  return {
    maxPromptChars: int(o.maxPromptChars ?? MAX_PROMPT_CHARS, "maxPromptChars", 1),
    maxPromptTokens: int(o.maxPromptTokens ?? Number.MAX_SAFE_INTEGER, "maxPromptTokens", 1),
    tokenizeInlineChars: int(o.tokenizeInlineChars ?? TOKENIZE_INLINE_CHARS, "tokenizeInlineChars", 0),
  };
}

/** The prompt tokenizer of a loaded model, with the same tokens as LlamaEngine.tokenize. */
export function modelPromptTokenizer(model: LlamaModel, modelPath: string, contextSize: number, o: Required<PromptOptions>): PromptTokenizer {
  const vocab = model.fileInfo.metadata.tokenizer?.ggml as { model?: string; tokens?: string[]; token_type?: number[] } | undefined;
  return new PromptTokenizer({
    limits: { maxChars: o.maxPromptChars, maxTokens: Math.min(o.maxPromptTokens, contextSize - 1) },
    bytesPerToken: maxBytesPerToken({ model: vocab?.model, tokens: vocab?.tokens, tokenTypes: vocab?.token_type }),
    bos: model.tokens.bos !== null && model.tokens.shouldPrependBosToken ? model.tokens.bos : null,
    inlineChars: o.tokenizeInlineChars,
    tokenizeHere: (text) => [...model.tokenize(text, false)],
    worker: new TokenizerWorker(modelPath),
  });
}

export class PromptTokenizer {
  constructor(private readonly o: PromptTokenizerOptions) {}

  get limits(): PromptLimits {
    return this.o.limits;
  }

  get bytesPerToken(): number {
    return this.o.bytesPerToken;
  }

  /**
   * The prompt's tokens (BOS first when the model prepends one), or INVALID_ARGUMENT with
   * details { reason: "prompt_too_long", param: "prompt", limit } when it is over a limit: the
   * character limit (limit in characters), or the token limit (limit in tokens), the latter decided
   * without tokenizing whenever the text alone shows the prompt cannot fit.
   */
  async tokenize(prompt: string, opts: TokenizePromptOptions = {}): Promise<number[]> {
    const maxTokens = Math.min(this.o.limits.maxTokens, opts.maxTokens ?? Infinity);
    checkBeforeTokenizing(prompt, { maxChars: this.o.limits.maxChars, maxTokens }, this.o.bytesPerToken, this.o.bos !== null);
    const tokens = prompt.length <= this.o.inlineChars ? this.o.tokenizeHere(prompt) : await this.o.worker.tokenize(prompt, opts.signal);
    if (this.o.bos !== null) tokens.unshift(this.o.bos);
    checkTokenCount(tokens.length, maxTokens);
    return tokens;
  }

  /** Stops the tokenizer thread. Idempotent. */
  close(): Promise<void> {
    return this.o.worker.close();
  }
}
