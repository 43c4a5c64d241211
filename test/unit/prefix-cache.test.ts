// The prefill prefix cache as pure state: leading runs of keys, recency deepest-first so a chain
// shortens from its end under pressure, the byte budget under any sequence of operations, drop()
// of a bad chunk and everything after it, and a budget of 0 holding nothing.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { PrefixCache } from "../../src/engine/prefix-cache.js";

const chunk = (key: string, size = 10): { key: string; bytes: Buffer } => ({ key, bytes: Buffer.alloc(size, key.charCodeAt(0)) });
const chain = (prefix: string, n: number, size = 10): { key: string; bytes: Buffer }[] => Array.from({ length: n }, (_, i) => chunk(`${prefix}${i}`, size));

describe("PrefixCache", () => {
  it("finds the leading run of a prompt's keys, and nothing past the first miss", () => {
    const c = new PrefixCache(1000);
    c.put(chain("a", 4));
    expect(c.leadingCount(["a0", "a1", "a2", "a3", "a4"])).toBe(4);
    expect(c.leadingCount(["a0", "a1", "x2", "a3"])).toBe(2);
    expect(c.leadingCount(["x0", "a1"])).toBe(0);
    const taken = c.take(["a0", "a1", "b2"]);
    expect(taken.map((b) => b[0])).toEqual([97, 97]);
    expect(c.stats()).toMatchObject({ lookups: 1, hitChunks: 2, chunks: 4, bytes: 40 });
  });

  it("evicts the deepest chunks of a chain first, so a prefix shortens from its end", () => {
    const c = new PrefixCache(55); // 5 chunks of 10 bytes
    c.put(chain("a", 8));
    expect(c.stats()).toMatchObject({ chunks: 5, bytes: 50, evictedChunks: 3 });
    expect(c.leadingCount(chain("a", 8).map((x) => x.key))).toBe(5);
    // A second prompt: its chunks are newer, the first prompt's tail goes first.
    c.put(chain("b", 3));
    expect(c.leadingCount(chain("b", 3).map((x) => x.key))).toBe(3);
    expect(c.leadingCount(chain("a", 8).map((x) => x.key))).toBe(2);
    // Touching a's prefix makes it newer than b's.
    c.take(chain("a", 2).map((x) => x.key));
    c.put(chain("c", 2));
    expect(c.leadingCount(["a0", "a1"])).toBe(2);
    expect(c.leadingCount(["b0", "b1", "b2"])).toBe(1);
  });

  it("drop removes a chunk and the rest of its chain", () => {
    const c = new PrefixCache(1000);
    c.put(chain("a", 5));
    c.drop(chain("a", 5).map((x) => x.key), 2);
    expect(c.leadingCount(chain("a", 5).map((x) => x.key))).toBe(2);
    expect(c.stats()).toMatchObject({ chunks: 2, bytes: 20, droppedChunks: 3 });
  });

  it("a budget of 0 keeps nothing; a chunk larger than the budget is not kept; a bad budget is refused", () => {
    const off = new PrefixCache(0);
    off.put(chain("a", 3));
    expect(off.enabled).toBe(false);
    expect(off.stats()).toMatchObject({ chunks: 0, bytes: 0 });
    const small = new PrefixCache(15);
    small.put([chunk("big", 20), chunk("ok", 10)]);
    expect(small.leadingCount(["big"])).toBe(0);
    expect(small.leadingCount(["ok"])).toBe(1);
    for (const bad of [-1, 1.5, Number.NaN]) {
      expect(() => new PrefixCache(bad)).toThrow(KvbridgeError);
    }
  });

  it("never holds more than its budget, and every leading run it reports is there, under any operations", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("put" as const), prefix: fc.constantFrom("a", "b", "c"), n: fc.integer({ min: 1, max: 8 }), size: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ kind: fc.constant("take" as const), prefix: fc.constantFrom("a", "b", "c"), n: fc.integer({ min: 1, max: 8 }) }),
      fc.record({ kind: fc.constant("drop" as const), prefix: fc.constantFrom("a", "b", "c"), from: fc.integer({ min: 0, max: 8 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 120 }), fc.array(op, { maxLength: 40 }), (budget, ops) => {
        const c = new PrefixCache(budget);
        for (const o of ops) {
          const keys = Array.from({ length: 8 }, (_, i) => `${o.prefix}${i}`);
          if (o.kind === "put") c.put(chain(o.prefix, o.n, o.size));
          else if (o.kind === "take") c.take(keys.slice(0, o.n));
          else c.drop(keys, o.from);
          const s = c.stats();
          expect(s.bytes).toBeLessThanOrEqual(budget);
          // every leading run found is really there, chunk by chunk
          for (const p of ["a", "b", "c"]) {
            const ks = Array.from({ length: 8 }, (_, i) => `${p}${i}`);
            const n = c.leadingCount(ks);
            const bufs = c.take(ks.slice(0, n));
            expect(bufs).toHaveLength(n);
            for (const b of bufs) expect(b.length).toBeGreaterThan(0);
          }
        }
        expect(c.stats().bytes).toBeLessThanOrEqual(budget);
      }),
      { numRuns: 100 },
    );
  });
});
