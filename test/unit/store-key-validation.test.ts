// Keys and request ids with control characters are refused at Alloc, and the retry digest of a
// batch tells apart key lists that differ only in where one key ends and the next begins.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { checkInvariants } from "../../src/store/invariants.js";
import { makeStore } from "../support/store-fixture.js";

const one = (requestId: string, keys: string[], size = 100) => ({ requestId, keys, sizes: keys.map(() => size), batchSeq: 0, totalChunks: 0, isLastBatch: true });

function thrown(fn: () => unknown): KvbridgeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof KvbridgeError) return e;
    throw e;
  }
  throw new Error("expected a KvbridgeError");
}

const CONTROLS = [0x00, 0x07, 0x0a, 0x1b, 0x1f, 0x7f, 0x80, 0x9b, 0x9f];

describe("key and request id validation", () => {
  for (const c of CONTROLS) {
    const ch = String.fromCharCode(c);
    const hex = c.toString(16).toUpperCase().padStart(4, "0");
    it(`refuses U+${hex} in a key or a request id with INVALID_ARGUMENT key_invalid, allocating nothing`, () => {
      const s = makeStore();
      const before = s.stats();
      const k = thrown(() => s.alloc(one("r", ["ok", `bad${ch}key`]), 0));
      expect(k.code).toBe("INVALID_ARGUMENT");
      expect(k.details).toMatchObject({ reason: "key_invalid", param: "keys" });
      expect(k.message).toContain(`U+${hex} at index 3`);
      // The refusal never echoes the character itself.
      expect(k.message).not.toContain(ch);
      const r = thrown(() => s.alloc(one(`req${ch}`, ["ok"]), 0));
      expect(r.details).toMatchObject({ reason: "key_invalid", param: "request_id" });
      expect(s.stats()).toEqual(before);
      checkInvariants(s);
    });
  }

  it("accepts printable non-ASCII keys (U+00A0 and above, emoji)", () => {
    const s = makeStore();
    expect(s.alloc(one("r-é", ["\u00a0nbsp", "κλειδί", "🔑"]), 0).remoteIndexes).toHaveLength(3);
    checkInvariants(s);
  });

  it("any string with a character in U+0000-U+001F, U+007F-U+009F is refused; any without one passes validation", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", minLength: 1, maxLength: 20 }), (key) => {
        const s = makeStore();
        const bad = /[\u0000-\u001f\u007f-\u009f]/.test(key);
        try {
          s.alloc(one("r", [key]), 0);
          expect(bad).toBe(false);
        } catch (e) {
          expect(bad).toBe(true);
          expect((e as KvbridgeError).details.reason).toBe("key_invalid");
        }
      }),
      { numRuns: 500 },
    );
  });

  it("a retry whose keys differ only in where one key ends is a conflicting reuse, not the same retry", () => {
    const s = makeStore();
    const first = s.alloc(one("r", ["a1:b", "c"]), 0);
    expect(s.alloc(one("r", ["a1:b", "c"]), 1)).toEqual(first);
    for (const keys of [["a", "1:bc"], ["a1:", "bc"], ["a1:bc", ":"]]) {
      const e = thrown(() => s.alloc(one("r", keys), 2));
      expect(e.code).toBe("ALREADY_EXISTS");
    }
    checkInvariants(s);
  });
});
