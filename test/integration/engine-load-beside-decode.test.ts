// KV loads, saves and clears beside running decodes, on the real engine and the project's model:
// while 4 sequences of the shared context decode, a decode request's 2048-token KV prefix is
// loaded (and its sequence cleared at the end), and a prefill cuts its chunks, each within a few
// tokens of the running streams (a bound in decode steps, not in milliseconds). Without the
// context's exclusive turns (src/engine/exclusive-gate.ts) node-llama-cpp's batch dispatcher keeps
// the context lock for as long as anyone decodes, and the load waits for the streams to end.
// Every output stays token-exact against its single-process reference.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GenerateResult, LlamaEngine } from "../../src/engine/llama-engine.js";
import { openTestEngine, promptOf } from "../support/model-fixture.js";

const STREAMS = 4;
const STREAM_TOKENS = 400;
const TARGET_TOKENS = 24;
/** Tokens a running stream may produce between a request's start and its KV being in place. */
const SLACK = 16;

const view = (r: GenerateResult) => ({ tokens: r.tokens, text: r.text, finishReason: r.finishReason });

describe("KV state loads and saves beside running decodes (one context, 5 sequences)", () => {
  let engine: LlamaEngine;
  beforeAll(async () => {
    engine = await openTestEngine({ maxSequences: STREAMS + 1 });
  });
  afterAll(async () => {
    await engine?.close();
  });

  /** Starts the streams; resolves once each has produced `warm` tokens. */
  async function startStreams(warm: number) {
    const counts = new Array<number>(STREAMS).fill(0);
    const reqs = Array.from({ length: STREAMS }, (_, i) => ({ tokens: promptOf(engine, 64, 300 + i), maxTokens: STREAM_TOKENS }));
    let wake: () => void = () => undefined;
    const warmed = new Promise<void>((resolve) => (wake = resolve));
    const runs = reqs.map((r, i) =>
      engine.generateLocal({
        ...r,
        onToken: () => {
          counts[i]!++;
          if (counts.every((c) => c >= warm)) wake();
        },
      }),
    );
    await warmed;
    return { counts, reqs, runs };
  }

  it("a 2048-token KV load for a new sequence waits a few decode steps, not for the streams to end; all outputs token-exact", async () => {
    const target = { tokens: promptOf(engine, 2048, 77), maxTokens: TARGET_TOKENS };
    const reference = await engine.generateLocal(target);
    const { chunks } = await engine.prefill(target.tokens);
    engine.clearPrefixCache();
    const prefix = chunks.map((c) => c.bytes);

    const streams = await startStreams(8);
    const before = [...streams.counts];
    let atFirstToken: number[] | null = null;
    const out = await engine.generate({
      ...target,
      prefix,
      onToken: () => {
        atFirstToken ??= streams.counts.map((c, i) => c - before[i]!);
      },
    });
    // The generate call returns after its sequence is cleared (another lock-taking operation).
    const atDone = streams.counts.map((c, i) => c - before[i]!);
    const streamed = await Promise.all(streams.runs);

    expect(out.recomputedTokens).toBe(0);
    expect(view(out)).toEqual(view(reference));
    // First token: the load after at most the batch in flight, then the prompt's last token.
    for (const n of atFirstToken!) expect(n).toBeLessThanOrEqual(SLACK);
    // All of it: one decode step per output token beside the streams, plus the load and the clear.
    for (const n of atDone) expect(n).toBeLessThanOrEqual(TARGET_TOKENS + SLACK);
    for (const r of streamed) expect(r.tokens.length).toBe(STREAM_TOKENS); // they ran on past it
    for (let i = 0; i < STREAMS; i++) expect(view(streamed[i]!), `stream ${i}`).toEqual(view(await engine.generateLocal(streams.reqs[i]!)));
    expect(engine.sequencesInUse).toBe(0);
  });

  it("a prefill beside running decodes saves its state within a few steps of its last piece; chunks byte-identical", async () => {
    const tokens = promptOf(engine, 2048, 78);
    engine.clearPrefixCache();
    const alone = await engine.prefill(tokens);
    engine.clearPrefixCache();

    const streams = await startStreams(8);
    const before = [...streams.counts];
    const busy = await engine.prefill(tokens);
    const during = streams.counts.map((c, i) => c - before[i]!);
    await Promise.all(streams.runs);

    expect(busy.chunks).toHaveLength(alone.chunks.length);
    // Buffer.equals: vitest's deep equality walks 4 MB byte by byte for tens of seconds.
    for (let i = 0; i < alone.chunks.length; i++) expect(busy.chunks[i]!.bytes.equals(alone.chunks[i]!.bytes), `chunk ${i}`).toBe(true);
    // 4 prompt pieces of 512 alternate with decode steps (batch-order.ts): one step per piece,
    // then the state save and the sequence's clear, each after at most the batch in flight.
    for (const n of during) expect(n).toBeLessThanOrEqual(4 + SLACK);
  });
});
