// The engine end to end on the real node-llama-cpp and the project's own model: prefill, chunks,
// generate from chunks, and the single-process reference must agree token for token.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import type { LlamaEngine } from "../../src/engine/llama-engine.js";
import { extraModelPath, foreignModelPath, openTestEngine, promptOf } from "../support/model-fixture.js";

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KvbridgeError) return e.code;
    throw e;
  }
  return "resolved";
}

describe("LlamaEngine on the project's model", () => {
  let engine: LlamaEngine;
  beforeAll(async () => {
    engine = await openTestEngine({ maxSequences: 2 });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it("tokenizes with BOS first and detokenizes back to the text", () => {
    const tokens = engine.tokenize("hello kv world");
    expect(tokens[0]).toBe(1);
    expect(engine.detokenize(tokens)).toBe("hello kv world");
  });

  it("greedy output varies with the prompt and within one output (token equality means something)", async () => {
    const a = await engine.generateLocal({ tokens: promptOf(engine, 40, 1), maxTokens: 48 });
    const b = await engine.generateLocal({ tokens: promptOf(engine, 40, 2), maxTokens: 48 });
    expect(a.tokens).toHaveLength(48);
    expect(a.finishReason).toBe("length");
    expect(new Set(a.tokens).size).toBeGreaterThanOrEqual(12);
    expect(a.tokens).not.toEqual(b.tokens);
  });

  it.each([
    ["short", 20],
    ["not a multiple of chunkTokens", 300],
    ["long (2k tokens)", 2100],
  ])("prefill -> every chunk -> generate equals generateLocal token for token: %s prompt", async (_name, n) => {
    const tokens = promptOf(engine, n, n);
    const reference = await engine.generateLocal({ tokens, maxTokens: 32 });
    const { chunks, evalMs } = await engine.prefill(tokens);
    const T = engine.chunkTokens;
    expect(evalMs).toBeGreaterThan(0);
    expect(chunks.map((c) => c.key)).toEqual(engine.chunkKeys(tokens));
    expect(chunks).toHaveLength(Math.ceil(n / T));
    expect(chunks.at(-1)!.tokenEnd).toBe(n); // the last, partial chunk travels too
    expect(chunks[0]!.bytes.length).toBe(n >= T ? engine.maxChunkBytes : chunks[0]!.bytes.length);
    // Chunks handed over inside larger buffers (whole pool slots), released as soon as consumed.
    const slots = chunks.map((c) => {
      const slot = Buffer.alloc(engine.maxChunkBytes + 64, 0xee);
      c.bytes.copy(slot);
      return slot;
    });
    let consumed = false;
    const out = await engine.generate({
      tokens,
      prefix: slots,
      maxTokens: 32,
      onPrefixConsumed: () => {
        consumed = true;
        for (const s of slots) s.fill(0); // the engine must not read them any more
      },
    });
    expect(consumed).toBe(true);
    expect(out.tokens).toEqual(reference.tokens);
    expect(out.text).toBe(reference.text);
    expect(out.recomputedTokens).toBe(0);
  });

  it("generate with only the first k chunks recomputes the rest and still equals generateLocal", async () => {
    const tokens = promptOf(engine, 700, 7);
    const reference = await engine.generateLocal({ tokens, maxTokens: 32 });
    const { chunks } = await engine.prefill(tokens);
    for (const k of [0, 1, 4, chunks.length - 1]) {
      const out = await engine.generate({ tokens, prefix: chunks.slice(0, k).map((c) => c.bytes), maxTokens: 32 });
      expect(out.tokens, `with ${k} chunks`).toEqual(reference.tokens);
      expect(out.recomputedTokens).toBe(700 - k * engine.chunkTokens);
    }
  });

  it("output depends on the loaded KV: perturbing 32 values of one chunk (checksum redone) changes it", async () => {
    const tokens = promptOf(engine, 300, 13);
    const reference = await engine.generateLocal({ tokens, maxTokens: 16 });
    const { chunks } = await engine.prefill(tokens);
    const prefix = chunks.map((c) => Buffer.from(c.bytes));
    const target = prefix[1]!;
    const at = target.length - 4000; // V of the last layer
    for (let i = 0; i < 64; i++) target[at + i]! ^= 0x40;
    createHash("sha256").update(target.subarray(40)).digest().copy(target, 8); // header checksum field
    const out = await engine.generate({ tokens, prefix, maxTokens: 16 });
    expect(out.tokens).not.toEqual(reference.tokens);
  });

  it("prompts sharing a prefix produce byte-identical chunks for it (what dedup by key relies on)", async () => {
    const long = promptOf(engine, 600, 11);
    const short = long.slice(0, 300);
    const a = await engine.prefill(long);
    engine.clearPrefixCache(); // the short prompt evaluated for itself, not answered from the cache
    const b = await engine.prefill(short);
    const whole = Math.floor(300 / engine.chunkTokens);
    for (let i = 0; i < whole; i++) {
      expect(b.chunks[i]!.key).toBe(a.chunks[i]!.key);
      expect(b.chunks[i]!.bytes.equals(a.chunks[i]!.bytes)).toBe(true);
    }
    expect(b.chunks[whole]!.key).not.toBe(a.chunks[whole]!.key); // partial vs full chunk
  });

  it("a damaged, reordered or other-prompt chunk fails as INCOMPATIBLE before any evaluation, and the engine keeps serving", async () => {
    const tokens = promptOf(engine, 400, 3);
    const other = promptOf(engine, 400, 4);
    const { chunks } = await engine.prefill(tokens);
    const bytes = chunks.map((c) => c.bytes);
    const damaged = Buffer.from(bytes[1]!);
    damaged[damaged.length - 3]! ^= 0xff;
    const otherChunks = (await engine.prefill(other)).chunks.map((c) => c.bytes);
    const cases: Array<[string, Buffer[]]> = [
      ["damaged payload", [bytes[0]!, damaged]],
      ["swapped order", [bytes[1]!, bytes[0]!]],
      ["chunk of another prompt", [otherChunks[0]!]],
      ["truncated", [bytes[0]!.subarray(0, 1000)]],
      ["not a chunk", [Buffer.from("hello")]],
    ];
    for (const [name, prefix] of cases) {
      expect(await codeOf(engine.generate({ tokens, prefix, maxTokens: 4 })), name).toBe("INCOMPATIBLE");
    }
    expect(engine.sequencesInUse).toBe(0);
    const reference = await engine.generateLocal({ tokens, maxTokens: 8 });
    expect((await engine.generate({ tokens, prefix: bytes, maxTokens: 8 })).tokens).toEqual(reference.tokens);
  });

  it("chunks from another model or another chunk size are INCOMPATIBLE (fingerprint differs)", async () => {
    const foreign = await openTestEngine({ modelPath: await foreignModelPath(), maxSequences: 1 });
    const otherChunking = await openTestEngine({ chunkTokens: 64, maxSequences: 1 });
    try {
      expect(foreign.fingerprint).not.toBe(engine.fingerprint);
      expect(otherChunking.fingerprint).not.toBe(engine.fingerprint);
      const tokens = promptOf(engine, 200, 5);
      expect(foreign.tokenize("abc")).toEqual(engine.tokenize("abc")); // same vocabulary, different weights
      for (const source of [foreign, otherChunking]) {
        const { chunks } = await source.prefill(tokens);
        const err = await engine.generate({ tokens, prefix: [chunks[0]!.bytes], maxTokens: 4 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(KvbridgeError);
        expect((err as KvbridgeError).code).toBe("INCOMPATIBLE");
        expect((err as KvbridgeError).message).toMatch(/fingerprint/);
      }
    } finally {
      await foreign.close();
      await otherChunking.close();
    }
  });

  it("stop strings end the output before them; streamed deltas add up to the text", async () => {
    const tokens = promptOf(engine, 50, 9);
    const free = await engine.generateLocal({ tokens, maxTokens: 40 });
    const stop = free.text.slice(10, 12); // occurs in the free-running output, so it must stop there
    const deltas: string[] = [];
    const stopped = await engine.generateLocal({ tokens, maxTokens: 40, stop: [stop], onToken: (t) => deltas.push(t) });
    expect(stopped.finishReason).toBe("stop");
    expect(stopped.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
    expect(deltas.join("")).toBe(stopped.text);
    const { chunks } = await engine.prefill(tokens);
    const fromChunks = await engine.generate({ tokens, prefix: chunks.map((c) => c.bytes), maxTokens: 40, stop: [stop] });
    expect(fromChunks).toEqual(stopped.finishReason === "stop" ? { ...stopped, recomputedTokens: 0 } : stopped);
  });

  it("cancelling one of two concurrent generations leaves the other's output identical", async () => {
    const ta = promptOf(engine, 150, 21);
    const tb = promptOf(engine, 150, 22);
    const refB = await engine.generateLocal({ tokens: tb, maxTokens: 80 });
    const { chunks } = await engine.prefill(tb);
    const cancelA = new AbortController();
    let aTokens = 0;
    let bTokens = 0;
    let bAtCancel = -1;
    // Cancel A once both have produced tokens (A evaluates a 150-token prompt first, B starts from
    // its chunks, so either may get ahead): checked from both streams.
    const maybeCancel = (): void => {
      if (cancelA.signal.aborted || aTokens < 5 || bTokens < 20) return;
      bAtCancel = bTokens;
      cancelA.abort();
    };
    const a = engine.generateLocal({ tokens: ta, maxTokens: 2000, signal: cancelA.signal, onToken: () => void (aTokens++, maybeCancel()) });
    const b = engine.generate({
      tokens: tb,
      prefix: chunks.map((c) => c.bytes),
      maxTokens: 80,
      onToken: () => void (bTokens++, maybeCancel()),
    });
    const [ra, rb] = await Promise.allSettled([a, b]);
    expect(ra.status).toBe("rejected");
    expect(((ra as PromiseRejectedResult).reason as KvbridgeError).code).toBe("CANCELLED");
    expect(aTokens).toBeGreaterThanOrEqual(5);
    expect(aTokens).toBeLessThan(2000);
    // B was still generating when A was cancelled.
    expect(bAtCancel).toBeGreaterThanOrEqual(20);
    expect(bAtCancel).toBeLessThan(80);
    expect(rb.status).toBe("fulfilled");
    expect((rb as PromiseFulfilledResult<{ tokens: number[] }>).value.tokens).toEqual(refB.tokens);
    expect(engine.sequencesInUse).toBe(0);
  });
});

describe("LlamaEngine on other model shapes", () => {
  it("probes the KV layout of a differently shaped model and round-trips its chunks", async () => {
    const modelPath = await extraModelPath("shape-l6-e128-h4-kv1", { layers: 6, embedding: 128, heads: 4, kvHeads: 1, feedForward: 256, seed: 5 });
    const engine = await openTestEngine({ modelPath, chunkTokens: 32, maxSequences: 1 });
    try {
      expect(engine.compatibility.kvLayout.layers).toHaveLength(6);
      expect(engine.kvBytesPerToken).toBe(6 * 2 * 32 * 2); // 6 layers x (K + V) x 32 wide x f16
      const tokens = promptOf(engine, 150, 6);
      const reference = await engine.generateLocal({ tokens, maxTokens: 24 });
      const { chunks } = await engine.prefill(tokens);
      expect(chunks).toHaveLength(5);
      const out = await engine.generate({ tokens, prefix: chunks.slice(0, 3).map((c) => c.bytes), maxTokens: 24 });
      expect(out.tokens).toEqual(reference.tokens);
      expect(out.recomputedTokens).toBe(150 - 96);
    } finally {
      await engine.close();
    }
  });
});

describe("LlamaEngine sequence pool", () => {
  it("a request waiting for a busy sequence honours its signal; the running one is untouched", async () => {
    const engine = await openTestEngine({ maxSequences: 1 });
    try {
      const tokens = promptOf(engine, 60, 31);
      const reference = await engine.generateLocal({ tokens, maxTokens: 300 });
      const running = engine.generateLocal({ tokens, maxTokens: 300 });
      const started = Date.now();
      const cancel = new AbortController();
      const waiting = engine.generateLocal({ tokens, maxTokens: 4, signal: cancel.signal });
      const timed = engine.generateLocal({ tokens, maxTokens: 4, signal: AbortSignal.timeout(30) });
      setTimeout(() => cancel.abort(), 30);
      expect(await codeOf(waiting)).toBe("CANCELLED");
      expect(await codeOf(timed)).toBe("DEADLINE_EXCEEDED");
      expect(Date.now() - started).toBeLessThan(2000);
      expect((await running).tokens).toEqual(reference.tokens);
      expect(engine.sequencesInUse).toBe(0);
    } finally {
      await engine.close();
    }
  });

  it("close() is idempotent, stops in-flight work, and later calls fail with UNAVAILABLE", async () => {
    const engine = await openTestEngine({ maxSequences: 1 });
    const tokens = promptOf(engine, 30, 41);
    const inflight = engine.generateLocal({ tokens, maxTokens: 5000 });
    const queued = engine.generateLocal({ tokens, maxTokens: 5 });
    await new Promise((r) => setTimeout(r, 50));
    await Promise.all([engine.close(), engine.close()]);
    await engine.close();
    expect(await codeOf(inflight)).toBe("UNAVAILABLE");
    expect(await codeOf(queued)).toBe("UNAVAILABLE");
    expect(await codeOf(engine.generateLocal({ tokens, maxTokens: 1 }))).toBe("UNAVAILABLE");
    expect(await codeOf(engine.prefill(tokens))).toBe("UNAVAILABLE");
  });

  it("rejects bad arguments with INVALID_ARGUMENT", async () => {
    const engine = await openTestEngine({ maxSequences: 1, contextSize: 256 });
    try {
      expect(await codeOf(engine.generateLocal({ tokens: [], maxTokens: 1 }))).toBe("INVALID_ARGUMENT");
      expect(await codeOf(engine.generateLocal({ tokens: [1, 99999], maxTokens: 1 }))).toBe("INVALID_ARGUMENT");
      expect(await codeOf(engine.generateLocal({ tokens: [1, 5], maxTokens: -1 }))).toBe("INVALID_ARGUMENT");
      expect(await codeOf(engine.prefill(new Array(300).fill(5)))).toBe("INVALID_ARGUMENT");
      expect(await codeOf(engine.generate({ tokens: [1, 5], prefix: [Buffer.alloc(1), Buffer.alloc(1)], maxTokens: 1 }))).toBe("INVALID_ARGUMENT");
      // Output stops where the context ends instead of shifting it.
      const full = await engine.generateLocal({ tokens: promptOf(engine, 250, 1), maxTokens: 100 });
      expect(full.tokens.length).toBe(256 - 250 + 1);
      expect(full.finishReason).toBe("length");
    } finally {
      await engine.close();
    }
  });
});
