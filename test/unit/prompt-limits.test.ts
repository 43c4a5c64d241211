// The checks a prompt meets before it is tokenized: the most bytes one token can stand for, read from
// a vocabulary (small vocabularies of each tokenizer family; the project's model's bound is checked
// against its real tokenizer in test/integration/engine-prompt-tokenize.test.ts), the lower bound on a prompt's tokens it gives, and the refusals (reason
// prompt_too_long, param prompt, the limit crossed) decided from the text alone.
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { checkBeforeTokenizing, checkTokenCount, maxBytesPerToken, minTokens } from "../../src/engine/prompt-limits.js";

function refusal(fn: () => unknown): KvbridgeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KvbridgeError);
    return err as KvbridgeError;
  }
  throw new Error("expected a refusal");
}

describe("maxBytesPerToken", () => {
  it("SentencePiece: a piece's text with each ▁ one space; unknown counts as a 4-byte character when there is no byte fallback", () => {
    const types = [2, 3, 3, 1, 1];
    expect(maxBytesPerToken({ model: "llama", tokens: ["<unk>", "<s>", "</s>", "▁the", "ab"], tokenTypes: types })).toBe(4);
    expect(maxBytesPerToken({ model: "llama", tokens: ["<unk>", "<s>", "▁▁", "é"], tokenTypes: [2, 3, 1, 1] })).toBe(4);
    expect(maxBytesPerToken({ model: "llama", tokens: ["<unk>", "<0x41>", "▁▁", "é"], tokenTypes: [2, 6, 1, 1] })).toBe(2);
    expect(maxBytesPerToken({ model: "llama", tokens: ["<unk>", "<0x41>", "▁longerpiece"], tokenTypes: [2, 6, 1] })).toBe(12);
  });

  it("byte-level BPE: one byte per character of a piece, user-defined tokens by their own text; control tokens skipped", () => {
    expect(maxBytesPerToken({ model: "gpt2", tokens: ["Ġthe", "ĠĠĠĠĠĠĠĠ", "<|endoftext|>"], tokenTypes: [1, 1, 3] })).toBe(8);
    expect(maxBytesPerToken({ model: "gpt2", tokens: ["Ġthe", "<|im_start|>"], tokenTypes: [1, 4] })).toBe(12);
  });

  it("no bound for tokenizers that drop or normalize input (WordPiece, Unigram), nor for an empty vocabulary", () => {
    expect(maxBytesPerToken({ model: "bert", tokens: ["[UNK]", "the"], tokenTypes: [2, 1] })).toBe(Infinity);
    expect(maxBytesPerToken({ model: "t5", tokens: ["▁the"], tokenTypes: [1] })).toBe(Infinity);
    expect(maxBytesPerToken({ model: "llama", tokens: [] })).toBe(Infinity);
  });
});

describe("minTokens", () => {
  it("counts UTF-8 bytes, not UTF-16 units, and adds BOS", () => {
    expect(minTokens("abc", 1, true)).toBe(4);
    expect(minTokens("é€😀", 1, false)).toBe(2 + 3 + 4);
    expect(minTokens("abcdefg", 4, false)).toBe(2);
    expect(minTokens("x".repeat(100), Infinity, true)).toBe(1);
  });
});

describe("checkBeforeTokenizing", () => {
  const limits = { maxChars: 4 * 1024 * 1024, maxTokens: 16_383 };

  it("refuses a 1 MiB prompt on a 1-byte-per-token vocabulary with the token limit, without tokenizing", () => {
    const e = refusal(() => checkBeforeTokenizing("a".repeat(1 << 20), limits, 1, true));
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.details).toEqual({ reason: "prompt_too_long", param: "prompt", limit: 16_383 });
    expect(e.message).toMatch(/cannot fit/);
  });

  it("refuses over the character limit with that limit", () => {
    const e = refusal(() => checkBeforeTokenizing("a".repeat(1001), { maxChars: 1000, maxTokens: 1 << 20 }, 1, true));
    expect(e.details).toEqual({ reason: "prompt_too_long", param: "prompt", limit: 1000 });
    expect(e.message).toMatch(/1001 characters/);
  });

  it("refuses an empty or non-string prompt", () => {
    expect(refusal(() => checkBeforeTokenizing("", limits, 1, true)).details.param).toBe("prompt");
    expect(refusal(() => checkBeforeTokenizing(undefined, limits, 1, true)).code).toBe("INVALID_ARGUMENT");
  });

  it("lets through a prompt whose bound fits exactly, and everything when the bound is unknown", () => {
    expect(checkBeforeTokenizing("a".repeat(16_382), limits, 1, true)).toBe(16_383);
    expect(() => checkBeforeTokenizing("a".repeat(16_383), limits, 1, true)).toThrow(KvbridgeError);
    expect(checkBeforeTokenizing("a".repeat(1 << 20), limits, Infinity, true)).toBe(1);
  });

  it("checkTokenCount refuses a tokenized prompt over the limit, with the limit", () => {
    expect(() => checkTokenCount(100, 100)).not.toThrow();
    expect(refusal(() => checkTokenCount(101, 100)).details).toEqual({ reason: "prompt_too_long", param: "prompt", limit: 100 });
  });
});
