import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { chunkCount, chunkRange, computeChunkKeys } from "../../src/engine/chunk-keys.js";

const FP_A = "a".repeat(64);
const FP_B = "b".repeat(64);
const T = 4;

describe("chunk keys", () => {
  it("is a fixed function of fingerprint and tokens (known answer: same on every node and process)", () => {
    // Computed independently as sha256 chains; a per-process seed or changed encoding breaks this.
    expect(computeChunkKeys("0".repeat(64), 4, [1, 2, 3, 4, 5])).toEqual([
      "b0418f40ef96f3be819e9515c40ddfeff47da5497df51c241e21a56ca97d2f3d",
      "18d72951626a4c36e4724d82912860fbae8300bf23e7e59aab5ecf4be9427fc4",
    ]);
  });

  it("gives one key per chunk including the last partial one", () => {
    expect(computeChunkKeys(FP_A, T, [1, 2, 3, 4])).toHaveLength(1);
    expect(computeChunkKeys(FP_A, T, [1, 2, 3, 4, 5])).toHaveLength(2);
    expect(chunkCount(9, 4)).toBe(3);
    expect(chunkRange(2, 9, 4)).toEqual({ tokenStart: 8, tokenEnd: 9 });
  });

  it("equal prefixes give equal keys for every whole chunk they share, and differ from the first differing chunk on", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 40 }),
        fc.nat(),
        (a, bTail, cut) => {
          const shared = cut % (a.length + 1);
          const b = [...a.slice(0, shared), ...bTail];
          const ka = computeChunkKeys(FP_A, T, a);
          const kb = computeChunkKeys(FP_A, T, b);
          for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
            const ra = chunkRange(i, a.length, T);
            const rb = chunkRange(i, b.length, T);
            const samePrefix =
              ra.tokenEnd === rb.tokenEnd && a.slice(0, ra.tokenEnd).every((t, j) => t === b[j]);
            expect(ka[i] === kb[i]).toBe(samePrefix);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a partial last chunk never shares the key of the full chunk that starts with the same tokens", () => {
    const full = computeChunkKeys(FP_A, T, [1, 2, 3, 4, 5, 6, 7, 8]);
    const partial = computeChunkKeys(FP_A, T, [1, 2, 3, 4, 5, 6]);
    expect(partial[0]).toBe(full[0]);
    expect(partial[1]).not.toBe(full[1]);
  });

  it("another fingerprint changes every key", () => {
    const a = computeChunkKeys(FP_A, T, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const b = computeChunkKeys(FP_B, T, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    a.forEach((k, i) => expect(k).not.toBe(b[i]));
  });

  it("rejects tokens that are not integers and a zero chunk size", () => {
    expect(() => computeChunkKeys(FP_A, T, [1, 2.5])).toThrow(KvbridgeError);
    expect(() => computeChunkKeys(FP_A, 0, [1])).toThrow(/chunkTokens/);
  });
});
