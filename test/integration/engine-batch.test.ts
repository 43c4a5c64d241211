// Batched decode on the real engine: requests share one context and its llama_decode calls, yet
// each request's tokens (and, as a sharper check, its log-probabilities bit for bit) are what it
// gives alone, greedy and seeded; KV chunks cut from and loaded into sequences of multi-sequence
// contexts still round-trip; a cancelled request disturbs no other.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import type { GenerateLocalOptions, GenerateResult, LlamaEngine } from "../../src/engine/llama-engine.js";
import { openTestEngine, promptOf } from "../support/model-fixture.js";

const LENGTHS = [5, 40, 130, 260, 520, 700, 90, 1100];
const MAX_TOKENS = [48, 20, 36, 28, 40, 12, 44, 24];

function requests(engine: LlamaEngine, seeded: boolean): GenerateLocalOptions[] {
  return LENGTHS.map((n, i) => ({
    tokens: promptOf(engine, n, 100 + i),
    maxTokens: MAX_TOKENS[i]!,
    sampling: seeded ? { temperature: 0.8 + 0.1 * (i % 3), topP: 0.95, seed: 1000 + i, logprobs: true } : { logprobs: true },
  }));
}

const view = (r: GenerateResult) => ({ tokens: r.tokens, text: r.text, logprobs: r.logprobs!.map((l) => l.logprob) });

describe("batched decode (one context, 8 sequences)", () => {
  let engine: LlamaEngine;
  beforeAll(async () => {
    engine = await openTestEngine({ maxSequences: 8 });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it.each([
    ["greedy", false],
    ["seeded", true],
  ])("8 concurrent requests of different lengths equal their solo runs, logprobs bit for bit (%s)", async (_name, seeded) => {
    const reqs = requests(engine, seeded);
    const solo: GenerateResult[] = [];
    for (const r of reqs) solo.push(await engine.generateLocal(r));
    const together = await Promise.all(reqs.map((r) => engine.generateLocal(r)));
    for (let i = 0; i < reqs.length; i++) expect(view(together[i]!), `request ${i}`).toEqual(view(solo[i]!));
    // Staggered starts: prompts of some requests are evaluated while others decode.
    const staggered = await Promise.all(reqs.map((r, i) => new Promise((res) => setTimeout(res, 15 * i)).then(() => engine.generateLocal(r))));
    for (let i = 0; i < reqs.length; i++) expect(view(staggered[i]!), `staggered request ${i}`).toEqual(view(solo[i]!));
    expect(engine.sequencesInUse).toBe(0);
  });

  it("prefill and decode from chunks, each beside other traffic, equal the lone reference; chunks load into engines of other sequence counts", async () => {
    const reqs = requests(engine, true);
    const target = reqs[4]!; // 520 tokens: 5 chunks, prompt pieces on both sides of 512
    const reference = await engine.generateLocal(target);
    const busy = (): Promise<unknown> => Promise.all(reqs.slice(0, 3).map((r) => engine.generateLocal(r)));
    const [, { chunks }] = await Promise.all([busy(), engine.prefill(target.tokens)]);
    engine.clearPrefixCache(); // evaluated again, not answered from the prefill's own cache
    const alone = await engine.prefill(target.tokens);
    expect(chunks.map((c) => c.bytes)).toEqual(alone.chunks.map((c) => c.bytes)); // byte-identical KV
    const [, out] = await Promise.all([busy(), engine.generate({ ...target, prefix: chunks.map((c) => c.bytes) })]);
    expect(view(out)).toEqual(view(reference));
    for (const opts of [{ maxSequences: 3 }, { maxSequences: 1, batching: "context-per-request" as const }]) {
      const other = await openTestEngine(opts);
      try {
        expect(other.fingerprint).toBe(engine.fingerprint);
        const partial = await other.generate({ ...target, prefix: chunks.slice(0, 2).map((c) => c.bytes) });
        const full = await other.generate({ ...target, prefix: chunks.map((c) => c.bytes) });
        expect(view(partial)).toEqual(view(reference));
        expect(view(full)).toEqual(view(reference));
        const back = await other.prefill(target.tokens);
        expect(back.chunks.map((c) => c.bytes)).toEqual(alone.chunks.map((c) => c.bytes));
      } finally {
        await other.close();
      }
    }
  });

  it("cancelling some requests mid-decode leaves the others' output identical", async () => {
    const reqs = requests(engine, true);
    const solo: GenerateResult[] = [];
    for (const r of reqs) solo.push(await engine.generateLocal(r));
    const controllers = reqs.map(() => new AbortController());
    const runs = reqs.map((r, i) =>
      engine.generateLocal({
        ...r,
        signal: controllers[i]!.signal,
        onToken: (_t, _tok) => {
          if (i % 2 === 1) controllers[i]!.abort();
        },
      }),
    );
    const settled = await Promise.allSettled(runs);
    settled.forEach((s, i) => {
      if (i % 2 === 1) {
        expect(s.status).toBe("rejected");
        expect((s as PromiseRejectedResult).reason).toBeInstanceOf(KvbridgeError);
        expect(((s as PromiseRejectedResult).reason as KvbridgeError).code).toBe("CANCELLED");
      } else {
        expect(s.status).toBe("fulfilled");
        expect(view((s as PromiseFulfilledResult<GenerateResult>).value)).toEqual(view(solo[i]!));
      }
    });
    expect(engine.sequencesInUse).toBe(0);
    // The sequences the cancelled requests held serve again, identically.
    expect(view(await engine.generateLocal(reqs[1]!))).toEqual(view(solo[1]!));
  });
});

describe("batching modes", () => {
  it("shared: rows of several sequences in one product still give valid output, and invariant equals the context-per-request baseline", async () => {
    const base = await openTestEngine({ maxSequences: 4, batching: "context-per-request" });
    const shared = await openTestEngine({ maxSequences: 4, batching: "shared" });
    try {
      const reqs = requests(base, false).slice(0, 4);
      const ref = await Promise.all(reqs.map((r) => base.generateLocal(r)));
      const out = await Promise.all(reqs.map((r) => shared.generateLocal(r)));
      for (let i = 0; i < reqs.length; i++) {
        expect(out[i]!.tokens).toHaveLength(ref[i]!.tokens.length);
        // Same distribution up to rounding: log-probabilities agree closely, not necessarily bit for bit.
        for (let k = 0; k < Math.min(4, out[i]!.tokens.length); k++) {
          if (out[i]!.tokens[k] !== ref[i]!.tokens[k]) break;
          expect(out[i]!.logprobs![k]!.logprob).toBeCloseTo(ref[i]!.logprobs![k]!.logprob, 3);
        }
      }
    } finally {
      await Promise.all([base.close(), shared.close()]);
    }
  });
});
