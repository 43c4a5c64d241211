// generate() writes the prefix's sequence state file from views of the chunks (writev of header
// pieces, K rows and gathered V blocks) instead of assembling one buffer first. On the real engine
// and model: the file is byte for byte the buffer assembleSequenceState builds from the same chunks,
// llama.cpp loads it, and the output equals the single-process reference token for token, with the
// last chunk partial or full, beside another request; the scratch file is gone afterwards, also when
// the request is aborted while its prefix is written.
import { readdir, readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { decodeChunk } from "../../src/engine/kv-chunk-format.js";
import { assembleSequenceState, parseSequenceState } from "../../src/engine/kv-state-layout.js";
import type { LlamaEngine } from "../../src/engine/llama-engine.js";
import { sequenceStatePieces } from "../../src/engine/sequence-state-pieces.js";
import { writeStateFile } from "../../src/engine/state-file.js";
import { openTestEngine, promptOf } from "../support/model-fixture.js";

async function scratchFiles(): Promise<string[]> {
  const dir = await readdir("/dev/shm").catch(() => [] as string[]);
  return dir.filter((f) => f.startsWith(`kvbridge-state-${process.pid}-`));
}

describe("the prefix state written from views (real engine)", () => {
  let engine: LlamaEngine;
  beforeAll(async () => {
    engine = await openTestEngine({ maxSequences: 2 });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it.each([
    ["a partial last chunk", 1000],
    ["whole chunks only", 1536],
  ])("the file equals the assembled buffer, and generate from it equals generateLocal: %s", async (_name, n) => {
    const tokens = promptOf(engine, n, n + 3);
    const reference = await engine.generateLocal({ tokens, maxTokens: 24 });
    const { chunks } = await engine.prefill(tokens);
    engine.clearPrefixCache();
    const parts = chunks.map((c) => decodeChunk(c.bytes).part);
    const layout = engine.compatibility.kvLayout;
    const loaded = tokens.slice(0, n - 1);
    const file = await writeStateFile(sequenceStatePieces(layout, loaded, parts, 2));
    try {
      const bytes = await readFile(file.path);
      const parsed = parseSequenceState(bytes);
      expect(parsed.cellCount).toBe(n - 1);
      expect(bytes.equals(assembleSequenceState(layout, loaded, parts, parsed.streams))).toBe(true);
      expect(file.bytes).toBe(bytes.length);
    } finally {
      await file.remove();
    }
    // Beside another request decoding, as on a decode node.
    const other = promptOf(engine, 200, n + 4);
    const [fromChunks, otherOut] = await Promise.all([
      engine.generate({ tokens, prefix: chunks.map((c) => c.bytes), maxTokens: 24 }),
      engine.generateLocal({ tokens: other, maxTokens: 24 }),
    ]);
    expect(fromChunks.recomputedTokens).toBe(0);
    expect(fromChunks.tokens).toEqual(reference.tokens);
    expect(otherOut.tokens).toEqual((await engine.generateLocal({ tokens: other, maxTokens: 24 })).tokens);
    expect(await scratchFiles()).toEqual([]);
  });

  it("a request aborted while its prefix is checked or written fails CANCELLED and leaves no scratch file", async () => {
    const tokens = promptOf(engine, 2048, 99);
    const { chunks } = await engine.prefill(tokens);
    engine.clearPrefixCache();
    const prefix = chunks.map((c) => c.bytes);
    const outcomes: string[] = [];
    for (const afterTurns of [1, 3, 8, 20]) {
      const ac = new AbortController();
      const p = engine.generate({ tokens, prefix, maxTokens: 4, signal: ac.signal });
      for (let i = 0; i < afterTurns; i++) await new Promise((r) => setImmediate(r));
      ac.abort(new KvbridgeError("CANCELLED", "the client went away"));
      const outcome = await p.then(
        () => "resolved",
        (e: unknown) => (e instanceof KvbridgeError ? e.code : String(e)),
      );
      expect(["CANCELLED", "resolved"]).toContain(outcome);
      outcomes.push(outcome);
      expect(await scratchFiles()).toEqual([]);
    }
    expect(outcomes).toContain("CANCELLED");
    // The engine still answers exactly afterwards.
    const reference = await engine.generateLocal({ tokens, maxTokens: 8 });
    expect((await engine.generate({ tokens, prefix, maxTokens: 8 })).tokens).toEqual(reference.tokens);
  });

  it("checkPrefix returns the leading chunks generate accepts and the first it refuses, with why", async () => {
    const tokens = promptOf(engine, 700, 5);
    const { chunks } = await engine.prefill(tokens);
    engine.clearPrefixCache();
    const prefix = chunks.map((c) => Buffer.from(c.bytes));
    expect(await engine.checkPrefix(tokens, prefix)).toEqual({ valid: prefix });
    const damaged = prefix.map((b, i) => {
      if (i !== 2) return b;
      const d = Buffer.from(b);
      d[d.length - 5]! ^= 0x40;
      return d;
    });
    const r = await engine.checkPrefix(tokens, damaged);
    expect(r.valid).toEqual(prefix.slice(0, 2));
    expect(r.bad).toMatchObject({ index: 2, key: engine.chunkKeys(tokens)[2] });
    expect(r.bad!.why).toMatch(/checksum/);
    // generate refuses the same chunk: INCOMPATIBLE, naming it.
    await expect(engine.generate({ tokens, prefix: damaged, maxTokens: 2 })).rejects.toMatchObject({ code: "INCOMPATIBLE" });
    // Another prompt's chunks are refused at chunk 0.
    const other = promptOf(engine, 700, 6);
    expect((await engine.checkPrefix(other, prefix)).bad).toMatchObject({ index: 0 });
    expect(await scratchFiles()).toEqual([]);
  });
});
