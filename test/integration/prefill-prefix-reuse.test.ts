// Prefix reuse on a prefill engine, on the real node-llama-cpp and the project's model: a prompt
// whose leading chunks the engine cut before is evaluated only from the first chunk not cached,
// its chunks are byte for byte a cold prefill's (batch invariance: the resumed evaluation meets
// the same prompt pieces), and a decode engine generating from them (engine.generate({ prefix }),
// as a decode node does) equals the single-process reference token for token. Also: multi-turn
// chat hits the previous turn's chunks; a prefix evicted while the request waits, a budget too
// small for it, and a corrupted cached chunk all fall back to evaluating, never to an error.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KvChunk, LlamaEngine } from "../../src/engine/llama-engine.js";
import { silentLogger } from "../../src/observability/logger.js";
import { startDecodeRole } from "../../src/roles/decode-role.js";
import { startPrefillNode } from "../../src/roles/prefill-role.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { DecodeClient } from "../../src/wire/decode-client.js";
import { PrefillClient } from "../../src/wire/prefill-client.js";
import type { GenerateEvent__Output } from "../../src/wire/generated/kvbridge/v1/GenerateEvent.js";
import { openTestEngine, promptOf, sampleText } from "../support/model-fixture.js";

describe("prefill prefix cache", () => {
  let warm: LlamaEngine; // the prefill engine under test (cache on)
  let cold: LlamaEngine; // the same engine settings with the cache off: the bytes to match
  let decode: LlamaEngine; // decode node's engine and the single-process reference
  beforeAll(async () => {
    [warm, cold, decode] = await Promise.all([
      openTestEngine({ maxSequences: 1 }),
      openTestEngine({ maxSequences: 1, prefixCacheBytes: 0 }),
      openTestEngine({ maxSequences: 2, prefixCacheBytes: 0 }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([warm?.close(), cold?.close(), decode?.close()]);
  });

  const sameBytes = (a: KvChunk[], b: KvChunk[]): string => a.map((c, i) => (b[i] && c.key === b[i]!.key && c.bytes.equals(b[i]!.bytes) ? "=" : "X")).join("");

  /** Generates from `chunks` on the decode engine and checks it against generateLocal. */
  async function expectReferenceOutput(tokens: number[], chunks: KvChunk[], maxTokens = 24): Promise<number[]> {
    const reference = await decode.generateLocal({ tokens, maxTokens });
    const out = await decode.generate({ tokens, prefix: chunks.map((c) => c.bytes), maxTokens });
    expect(out.tokens).toEqual(reference.tokens);
    expect(out.recomputedTokens).toBe(0);
    return out.tokens;
  }

  it.each([
    ["a 300-token prefix of a 700-token prompt (resumes mid prompt piece)", 300, 700],
    ["90% of a 2k prompt seen before", 1843, 2048],
  ])("%s: only the tail is evaluated, chunks equal a cold prefill's, decode output equals the reference", async (_name, shared, n) => {
    warm.clearPrefixCache();
    const tokens = promptOf(warm, n, n);
    const earlier = [...tokens.slice(0, shared), ...promptOf(warm, n - shared, 99)];
    const first = await warm.prefill(earlier);
    expect(first.cachedChunks).toBe(0);
    const hit = await warm.prefill(tokens);
    const whole = Math.floor(shared / warm.chunkTokens);
    expect(hit.cachedChunks).toBe(whole);
    expect(warm.cachedPrefix(warm.chunkKeys(tokens))).toBe(hit.chunks.length); // now all of it
    for (let i = 0; i < whole; i++) expect(hit.chunks[i]!.bytes).toBe(first.chunks[i]!.bytes); // the cached buffers themselves
    const reference = await cold.prefill(tokens);
    expect(sameBytes(hit.chunks, reference.chunks)).toBe("=".repeat(reference.chunks.length));
    await expectReferenceOutput(tokens, hit.chunks);
    // The same prompt again: every chunk cached, nothing evaluated, same bytes.
    const again = await warm.prefill(tokens);
    expect(again).toMatchObject({ cachedChunks: hit.chunks.length, evalMs: 0 });
    expect(sameBytes(again.chunks, reference.chunks)).toBe("=".repeat(reference.chunks.length));
  });

  it("multi-turn chat: turn k's prompt is turn k-1's plus its answer, and each turn reuses the previous turn's whole chunks", async () => {
    warm.clearPrefixCache();
    let tokens = promptOf(warm, 150, 21);
    for (let turn = 0; turn < 5; turn++) {
      const before = warm.cachedPrefix(warm.chunkKeys(tokens));
      const { chunks, cachedChunks } = await warm.prefill(tokens);
      expect(cachedChunks).toBe(before);
      if (turn > 0) expect(cachedChunks).toBeGreaterThan(0);
      const answer = await expectReferenceOutput(tokens, chunks, 40);
      const previousWhole = Math.floor(tokens.length / warm.chunkTokens);
      // Next turn: this prompt, the answer, and a user message.
      tokens = [...tokens, ...answer, ...promptOf(warm, 30 + turn * 7, 100 + turn).slice(1)];
      expect(warm.cachedPrefix(warm.chunkKeys(tokens))).toBe(previousWhole);
    }
    const s = warm.prefixCacheStats;
    expect(s.hitChunks).toBeGreaterThan(0);
    expect(s.bytes).toBeLessThanOrEqual(s.budgetBytes);
  });

  it("a cached prefix evicted while its request waits is still used (the request took it before waiting); a budget too small recomputes; output stays exact", async () => {
    const a = promptOf(warm, 900, 31);
    const b = promptOf(warm, 900, 32);
    const perPrompt = (await cold.prefill(a)).chunks.reduce((s, c) => s + c.bytes.length, 0);
    const tight = await openTestEngine({ maxSequences: 1, prefixCacheBytes: perPrompt + 1000 });
    try {
      await tight.prefill(a);
      expect(tight.cachedPrefix(tight.chunkKeys(a))).toBe(8);
      // b takes the only sequence; a2 (a's 7 whole chunks and more) takes its cached prefix and
      // waits; b's chunks then evict a's from the cache before a2 loads what it took.
      const a2 = [...a.slice(0, 896), ...promptOf(warm, 200, 33).slice(1)];
      const pb = tight.prefill(b);
      const pa = tight.prefill(a2);
      const rb = await pb;
      expect(tight.cachedPrefix(tight.chunkKeys(a))).toBe(0); // evicted while a2 waits
      const ra = await pa;
      expect(ra.cachedChunks).toBe(7);
      expect(rb.cachedChunks).toBe(0);
      expect(tight.prefixCacheStats.evictedChunks).toBeGreaterThan(0);
      expect(sameBytes(ra.chunks, (await cold.prefill(a2)).chunks)).toBe("=".repeat(ra.chunks.length));
      await expectReferenceOutput(a2, ra.chunks);
      await expectReferenceOutput(b, rb.chunks);
      // Evicted for good: b again pushes a out; a then recomputes from the chunks still held.
      await tight.prefill(b);
      const kept = tight.cachedPrefix(tight.chunkKeys(a));
      expect(kept).toBeLessThan(8);
      const ra2 = await tight.prefill(a);
      expect(ra2.cachedChunks).toBe(kept);
      await expectReferenceOutput(a, ra2.chunks);
    } finally {
      await tight.close();
    }
    const tiny = await openTestEngine({ maxSequences: 1, prefixCacheBytes: 4096 }); // less than one chunk
    try {
      await tiny.prefill(a);
      const r = await tiny.prefill(a);
      expect(r.cachedChunks).toBe(0);
      expect(tiny.prefixCacheStats.chunks).toBe(0);
      await expectReferenceOutput(a, r.chunks);
    } finally {
      await tiny.close();
    }
  });

  it("a corrupted cached chunk is dropped with the rest of its chain and the prompt recomputed from there, output exact", async () => {
    warm.clearPrefixCache();
    const tokens = promptOf(warm, 700, 41);
    const first = await warm.prefill(tokens);
    const reference = await cold.prefill(tokens);
    // The returned buffers are the cache's: damage chunk 2's payload in place (its checksum now fails).
    const damaged = first.chunks[2]!.bytes;
    damaged[damaged.length - 5]! ^= 0xff;
    const droppedBefore = warm.prefixCacheStats.droppedChunks;
    const r = await warm.prefill(tokens);
    expect(r.cachedChunks).toBe(2);
    expect(r.evalMs).toBeGreaterThan(0);
    expect(warm.prefixCacheStats.droppedChunks - droppedBefore).toBe(first.chunks.length - 2);
    expect(sameBytes(r.chunks, reference.chunks)).toBe("=".repeat(reference.chunks.length));
    await expectReferenceOutput(tokens, r.chunks);
    // Damaged chunk 0: nothing reusable, a full recompute.
    r.chunks[0]!.bytes[200]! ^= 0x01;
    const r2 = await warm.prefill(tokens);
    expect(r2.cachedChunks).toBe(0);
    expect(sameBytes(r2.chunks, reference.chunks)).toBe("=".repeat(reference.chunks.length));
    await expectReferenceOutput(tokens, r2.chunks);
  });

  it("a budget of 0 turns the cache off; a bad budget is refused at open", async () => {
    const tokens = promptOf(cold, 300, 51);
    await cold.prefill(tokens);
    expect((await cold.prefill(tokens)).cachedChunks).toBe(0);
    expect(cold.cachedPrefix(cold.chunkKeys(tokens))).toBe(0);
    expect(cold.prefixCacheStats).toMatchObject({ budgetBytes: 0, chunks: 0 });
    await expect(openTestEngine({ prefixCacheBytes: -1 })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});

describe("prefill prefix cache on real nodes (gRPC Prefill, TCP data plane, decode node Generate)", () => {
  it("a prompt sharing 90% with an earlier one is prefilled from the cache, and the decode node's output equals the single-process reference", async () => {
    const [prefillEngine, decodeEngine, reference] = await Promise.all([
      openTestEngine({ maxSequences: 1 }),
      openTestEngine({ maxSequences: 1, prefixCacheBytes: 0 }),
      openTestEngine({ maxSequences: 1, prefixCacheBytes: 0 }),
    ]);
    const decode = await startDecodeRole({
      listen: { host: "127.0.0.1", port: 0 },
      dataListen: { host: "127.0.0.1", port: 0 },
      poolSlots: 64,
      slotBytes: Math.ceil(decodeEngine.maxChunkBytes / 4096) * 4096,
      leaseMs: 60_000,
      quarantineMs: 1_000,
      transport: "tcp",
      lockMemory: "auto",
      logger: silentLogger(),
      engine: Promise.resolve(decodeEngine),
      recomputePolicy: "recompute",
      kvWaitMs: 60_000,
    });
    const tcp = new TcpSenderTransport({ connections: 1 });
    const prefill = await startPrefillNode({ listen: { host: "127.0.0.1", port: 0 }, engine: prefillEngine, transports: { tcp }, transport: "tcp", logger: silentLogger() });
    const pc = new PrefillClient(prefill.grpcAddress);
    const dc = new DecodeClient(decode.grpcAddress);
    try {
      await decode.engineReady;
      const text = sampleText(400, 61).slice(0, 1000);
      const shared = text.slice(0, 900);
      const run = async (requestId: string, prompt: string): Promise<{ text: string; chunksLoaded: number; recomputed: number }> => {
        const pre = await pc.prefill({ requestId, prompt, decodeTarget: decode.grpcAddress }, { timeoutMs: 120_000 });
        let text = "";
        let chunksLoaded = -1;
        let recomputed = -1;
        await new Promise<void>((resolve, reject) => {
          const call = dc.generate({ requestId, prompt, maxTokens: 24 }, 120_000);
          call.on("data", (ev: GenerateEvent__Output) => {
            text += ev.text;
            if (ev.done) [chunksLoaded, recomputed] = [ev.chunksLoaded, ev.recomputedTokens];
          });
          call.on("error", reject);
          call.on("end", () => resolve());
        });
        expect(pre.promptTokens).toBeGreaterThan(0);
        return { text, chunksLoaded, recomputed };
      };
      await run("first", shared + sampleText(40, 62).slice(0, 100));
      const prompt = shared + sampleText(40, 63).slice(0, 100);
      const warm = await run("second", prompt);
      const tokens = prefillEngine.tokenize(prompt);
      expect(prefillEngine.prefixCacheStats.hitChunks).toBe(Math.floor(prefillEngine.tokenize(shared).length / prefillEngine.chunkTokens));
      const local = await reference.generateLocal({ tokens, maxTokens: 24 });
      expect(warm.text).toBe(local.text);
      expect(local.tokens.length).toBe(24);
      expect(warm).toMatchObject({ chunksLoaded: prefillEngine.chunkKeys(tokens).length, recomputed: 0 }); // the decode node ran on the pushed KV
    } finally {
      pc.close();
      dc.close();
      await prefill.close();
      await tcp.close();
      await decode.close();
      await Promise.all([prefillEngine.close(), decodeEngine.close(), reference.close()]);
    }
  });
});
