import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { encodeModel, writeModel } from "../../src/engine/model-writer.js";
import { SeededRandom } from "../../src/engine/seeded-random.js";

// A small shape keeps these unit tests fast; the engine tests use the default model.
const SMALL = { layers: 2, embedding: 64, heads: 4, kvHeads: 2, feedForward: 128 };
const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

describe("model writer", () => {
  let dir: string | null = null;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = null;
  });

  it("writes the same bytes for the same seed and different bytes for another seed", () => {
    const a = encodeModel({ ...SMALL, seed: 7 });
    const b = encodeModel({ ...SMALL, seed: 7 });
    const c = encodeModel({ ...SMALL, seed: 8 });
    expect(sha(a)).toBe(sha(b));
    expect(sha(a)).not.toBe(sha(c));
    expect(a.length).toBe(c.length); // same shape, only the weights differ
  });

  it("emits a GGUF v3 header with llama metadata, the byte vocabulary and every tensor", () => {
    const m = encodeModel(SMALL);
    expect(m.subarray(0, 4).toString("ascii")).toBe("GGUF");
    expect(m.readUInt32LE(4)).toBe(3);
    expect(Number(m.readBigUInt64LE(8))).toBe(2 + 2 * 9 + 1); // token_embd, output_norm, output + 9 per block
    const text = m.toString("latin1");
    for (const key of ["general.architecture", "llama.attention.head_count_kv", "tokenizer.ggml.tokens", "blk.1.ffn_down.weight", "<0xFF>"]) {
      expect(text).toContain(key);
    }
    expect(m.length % 32).toBe(0); // tensor data is padded to the GGUF alignment
  });

  it("writes atomically to the target path and leaves no temp file", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "kvb-model-"));
    const file = path.join(dir, "m.gguf");
    const info = await writeModel(file, SMALL);
    const bytes = await readFile(file);
    expect(bytes.length).toBe(info.bytes);
    expect(sha(bytes)).toBe(sha(encodeModel(SMALL)));
    expect(await readdir(dir)).toEqual(["m.gguf"]);
  });

  it("refuses shapes llama.cpp cannot run, naming the option", () => {
    expect(() => encodeModel({ ...SMALL, heads: 3 })).toThrow(KvbridgeError);
    expect(() => encodeModel({ ...SMALL, kvHeads: 3 })).toThrow(/kvHeads/);
    expect(() => encodeModel({ ...SMALL, layers: 0 })).toThrow(/layers/);
  });

  it("seeded PRNG is a fixed sequence (no per-process state)", () => {
    const r = new SeededRandom(1);
    const first = [r.nextUint32(), r.nextUint32(), r.nextUint32()];
    const again = new SeededRandom(1);
    expect([again.nextUint32(), again.nextUint32(), again.nextUint32()]).toEqual(first);
    expect(new SeededRandom(2).nextUint32()).not.toBe(first[0]);
    const f = new Float32Array(1000);
    r.fillUniform(f, 0.5);
    expect(Math.max(...f)).toBeLessThan(0.5);
    expect(Math.min(...f)).toBeGreaterThanOrEqual(-0.5);
  });
});
