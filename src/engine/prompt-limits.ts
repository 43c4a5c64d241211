// What a prompt may be, decided before it is tokenized. Tokenizing is the one per-request cost that
// grows with the caller's input before any limit in tokens can be checked, so the checks here need
// only the text: its length in characters, and a lower bound on its token count from the most input
// bytes any token of the vocabulary can stand for. A prompt whose bound already exceeds the token
// limit cannot fit and is refused without tokenizing it.
import { KvbridgeError } from "../errors/kvbridge-error.js";

export interface PromptLimits {
  /** Longest prompt in characters (UTF-16 code units, JavaScript's string length). */
  maxChars: number;
  /** Most prompt tokens (BOS included) the node evaluates: at most the context less one. */
  maxTokens: number;
}

/** The vocabulary as a GGUF file describes it (tokenizer.ggml.*). */
export interface VocabularyInfo {
  /** tokenizer.ggml.model: "llama" (SentencePiece), "gpt2" (byte-level BPE), "bert", "t5", ... */
  model?: string;
  tokens?: readonly string[];
  /** tokenizer.ggml.token_type, parallel to tokens (llama.cpp's LLAMA_TOKEN_TYPE_*). */
  tokenTypes?: readonly number[];
}

const TYPE_UNKNOWN = 2;
const TYPE_CONTROL = 3;
const TYPE_USER_DEFINED = 4;
const TYPE_UNUSED = 5;
const TYPE_BYTE = 6;
/** SentencePiece's word boundary: one input space. */
const SPM_SPACE = /\u2581/g;

/**
 * The most bytes of a prompt's UTF-8 text one token can stand for, or Infinity when no such bound is
 * known for this tokenizer. A prompt of B bytes then has at least ceil(B / bound) tokens.
 *
 * - SentencePiece ("llama"): a piece stands for its own text, each "▁" for one space; a byte token
 *   for one byte. Input is only ever grown by its normalization (spaces become "▁", a leading space).
 * - Byte-level BPE ("gpt2"): each character of a piece stands for one byte.
 * Control and unused tokens are never produced from plain text (tokenized without special tokens),
 * and both fall back to byte tokens before unknown, so none of these counts. Other tokenizers
 * (WordPiece drops whitespace, Unigram normalizes Unicode) have no such bound here: their prompts are
 * limited by characters and by the token count after tokenizing.
 */
export function maxBytesPerToken(vocab: VocabularyInfo): number {
  const tokens = vocab.tokens;
  if (!tokens || tokens.length === 0) return Infinity;
  const types = vocab.tokenTypes;
  const hasByteTokens = types?.includes(TYPE_BYTE) ?? false;
  let most = 0;
  for (let i = 0; i < tokens.length; i++) {
    const piece = tokens[i]!;
    const type = types?.[i] ?? 1;
    if (type === TYPE_CONTROL || type === TYPE_UNUSED) continue;
    let bytes: number;
    if (vocab.model === "llama") {
      if (type === TYPE_BYTE) bytes = 1;
      else if (type === TYPE_UNKNOWN) bytes = hasByteTokens ? 0 : 4; // one character, at most 4 bytes
      else bytes = Buffer.byteLength(piece.replace(SPM_SPACE, " "));
    } else if (vocab.model === "gpt2") {
      // User-defined tokens are raw text; the others are one character per byte.
      if (type === TYPE_UNKNOWN) continue; // every byte has a token: never produced
      bytes = type === TYPE_USER_DEFINED ? Buffer.byteLength(piece) : [...piece].length;
    } else {
      return Infinity;
    }
    if (bytes > most) most = bytes;
  }
  return most > 0 ? most : Infinity;
}

/** A lower bound on the tokens of `text` (BOS included when the model prepends one). Costs one pass over its bytes. */
export function minTokens(text: string, bytesPerToken: number, bos: boolean): number {
  const body = Number.isFinite(bytesPerToken) ? Math.ceil(Buffer.byteLength(text, "utf8") / bytesPerToken) : 0;
  return body + (bos ? 1 : 0);
}

/** INVALID_ARGUMENT with reason prompt_too_long, param "prompt" and the limit crossed. */
export function promptTooLong(message: string, limit: number): KvbridgeError {
  return new KvbridgeError("INVALID_ARGUMENT", message, { details: { reason: "prompt_too_long", param: "prompt", limit } });
}

/**
 * Refuses, without tokenizing, a prompt that is not a non-empty string, is over the character limit,
 * or cannot fit the token limit whatever its tokens. Returns the lower bound it computed.
 */
export function checkBeforeTokenizing(prompt: unknown, limits: PromptLimits, bytesPerToken: number, bos: boolean): number {
  if (typeof prompt !== "string" || prompt.length === 0) {
    throw new KvbridgeError("INVALID_ARGUMENT", "prompt is empty", { details: { param: "prompt" } });
  }
  if (prompt.length > limits.maxChars) {
    throw promptTooLong(`prompt is ${prompt.length} characters; this node accepts at most ${limits.maxChars} (--max-prompt-chars)`, limits.maxChars);
  }
  const least = minTokens(prompt, bytesPerToken, bos);
  if (least > limits.maxTokens) {
    throw promptTooLong(
      `prompt cannot fit: its ${prompt.length} characters make at least ${least} tokens (no token of this model stands for more than ${bytesPerToken} bytes); ` +
        `this node evaluates at most ${limits.maxTokens} prompt tokens`,
      limits.maxTokens,
    );
  }
  return least;
}

/** Refuses a tokenized prompt over the token limit. */
export function checkTokenCount(count: number, maxTokens: number): void {
  if (count > maxTokens) throw promptTooLong(`prompt is ${count} tokens; this node evaluates at most ${maxTokens} prompt tokens`, maxTokens);
}
