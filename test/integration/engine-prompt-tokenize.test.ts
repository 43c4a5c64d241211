// LlamaEngine.tokenizePrompt on the project's model: the same tokens as tokenize() whether a prompt is
// tokenized on the event loop or on the tokenizer thread; the lower bound it refuses by never exceeds
// a real prompt's token count (any Unicode); a prompt that cannot fit is refused from its length
// alone, one that fits the bound but not the limit after tokenizing; a cancelled call ends at once;
// a closed engine refuses, and closing it while its thread tokenizes neither hangs nor crashes.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import type { LlamaEngine } from "../../src/engine/llama-engine.js";
import { minTokens } from "../../src/engine/prompt-limits.js";
import { openTestEngine, sampleText } from "../support/model-fixture.js";

let engine: LlamaEngine;
let threaded: LlamaEngine;

beforeAll(async () => {
  engine = await openTestEngine({ maxSequences: 1 });
  // Every prompt on the tokenizer thread.
  threaded = await openTestEngine({ maxSequences: 1, tokenizeInlineChars: 0, maxPromptTokens: 4000 });
}, 120_000);
afterAll(async () => {
  await engine?.close();
  await threaded?.close();
});

async function refusal(p: Promise<unknown>): Promise<KvbridgeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KvbridgeError);
  return err as KvbridgeError;
}

describe("tokenizePrompt", () => {
  it("gives tokenize()'s tokens on the event loop and on the tokenizer thread", async () => {
    for (const text of [sampleText(10), sampleText(500, 3), "héllo wörld 😀 ▁ <s> \u0000 tabs\tand\nlines", " leading space"]) {
      const want = engine.tokenize(text);
      expect(await engine.tokenizePrompt(text)).toEqual(want);
      expect(await threaded.tokenizePrompt(text)).toEqual(want);
    }
  }, 60_000);

  it("the bound never exceeds the real token count, for any text", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "grapheme", maxLength: 300 }), async (text) => {
        fc.pre(text.length > 0);
        expect(minTokens(text, engine.maxBytesPerToken, true)).toBeLessThanOrEqual(engine.tokenize(text).length);
        expect(await threaded.tokenizePrompt(text)).toEqual(engine.tokenize(text));
      }),
      { numRuns: 150, seed: 12 },
    );
  }, 60_000);

  it("refuses a 1 MiB prompt from its length alone: prompt_too_long with the token limit", async () => {
    expect(Number.isFinite(engine.maxBytesPerToken)).toBe(true);
    const e = await refusal(engine.tokenizePrompt("word ".repeat(1 << 18).slice(0, 1 << 20)));
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.details).toEqual({ reason: "prompt_too_long", param: "prompt", limit: engine.contextSize - 1 });
    expect(engine.promptLimits.maxTokens).toBe(engine.contextSize - 1);
    expect(e.message).toMatch(/cannot fit/);
  });

  it("refuses after tokenizing a prompt the bound let through but whose tokens exceed the limit", async () => {
    // 3999 characters: the bound says at least 4000 tokens (fits 4000); the real count is higher.
    const text = sampleText(2000, 5).slice(0, 3999);
    expect(minTokens(text, threaded.maxBytesPerToken, true)).toBeLessThanOrEqual(4000);
    expect(threaded.tokenize(text).length).toBeGreaterThan(4000);
    const e = await refusal(threaded.tokenizePrompt(text));
    expect(e.details).toEqual({ reason: "prompt_too_long", param: "prompt", limit: 4000 });
    expect(e.message).toMatch(/tokens/);
  });

  it("a per-call limit lowers the engine's, never raises it", async () => {
    const text = sampleText(100, 2);
    const n = engine.tokenize(text).length;
    expect((await refusal(engine.tokenizePrompt(text, { maxTokens: n - 1 }))).details.limit).toBe(n - 1);
    expect(await engine.tokenizePrompt(text, { maxTokens: n })).toHaveLength(n);
    expect((await refusal(threaded.tokenizePrompt(sampleText(3000, 2), { maxTokens: 1 << 20 }))).details.limit).toBe(4000);
  });

  it("an aborted call is refused CANCELLED at once; the thread goes on serving others", async () => {
    const ac = new AbortController();
    const first = threaded.tokenizePrompt(sampleText(500, 7), { signal: ac.signal });
    ac.abort();
    expect((await refusal(first)).code).toBe("CANCELLED");
    const text = sampleText(50, 8);
    expect(await threaded.tokenizePrompt(text)).toEqual(engine.tokenize(text));
  });

  it("a closed engine refuses UNAVAILABLE; its close waits for the tokenizer thread to end, mid-job included", async () => {
    const e2 = await openTestEngine({ maxSequences: 1, tokenizeInlineChars: 0 });
    expect(await e2.tokenizePrompt("abc")).toEqual(e2.tokenize("abc"));
    const pending = e2.tokenizePrompt(sampleText(1000, 9)).then(
      (t) => t.length,
      (e: unknown) => (e as KvbridgeError).code,
    );
    await e2.close();
    const outcome = await pending;
    // Either it was answered before the close, or the close refused it.
    expect([typeof outcome === "number" ? "answered" : outcome]).toEqual([expect.stringMatching(/answered|UNAVAILABLE/)]);
    expect((await refusal(e2.tokenizePrompt("abc"))).code).toBe("UNAVAILABLE");
  }, 60_000);
});
