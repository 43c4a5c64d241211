import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { StopSequenceFilter } from "../../src/engine/stop-sequences.js";

function run(pieces: string[], stops: string[]): { out: string; stopped: boolean; deltas: string[] } {
  const f = new StopSequenceFilter(stops);
  const deltas: string[] = [];
  for (const p of pieces) {
    deltas.push(f.push(p));
    if (f.stopped) break;
  }
  deltas.push(f.flush());
  return { out: deltas.join(""), stopped: f.stopped, deltas };
}

describe("stop sequences", () => {
  it("cuts the output before a stop string split across pieces and never streams its start", () => {
    const r = run(["hello wo", "rld\n", "\nmore"], ["\n\n"]);
    expect(r.out).toBe("hello world");
    expect(r.stopped).toBe(true);
    expect(r.deltas[1]).toBe("rld"); // the first "\n" was held back
  });

  it("releases held text that never became a stop string", () => {
    const r = run(["abc\n", "x"], ["\n\n"]);
    expect(r.out).toBe("abc\nx");
    expect(r.stopped).toBe(false);
    expect(run(["abc\n"], ["\n\n"]).out).toBe("abc\n"); // held to the end, then flushed
  });

  it("passes everything through without stop strings", () => {
    expect(run(["a", "b"], []).out).toBe("ab");
    expect(run(["a", "b"], [""]).out).toBe("ab");
  });

  it("output is a prefix of the text, holds no stop string, and ends where a stop string starts when stopped", () => {
    const alphabet = fc.constantFrom("a", "b", "c", "\n");
    const str = fc.array(alphabet, { maxLength: 30 }).map((a) => a.join(""));
    const stop = fc.array(alphabet, { minLength: 1, maxLength: 3 }).map((a) => a.join(""));
    fc.assert(
      fc.property(fc.array(str, { maxLength: 8 }), fc.array(stop, { maxLength: 3 }), (pieces, stops) => {
        const text = pieces.join("");
        const r = run(pieces, stops);
        expect(text.startsWith(r.out)).toBe(true);
        for (const s of stops) expect(r.out.includes(s)).toBe(false);
        if (r.stopped) expect(stops.some((s) => text.slice(r.out.length).startsWith(s))).toBe(true);
        else expect(r.out).toBe(text);
      }),
      { numRuns: 500 },
    );
  });
});
