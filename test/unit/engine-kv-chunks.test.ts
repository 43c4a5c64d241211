// The ggsq state parser and the chunk format, on synthetic states built here byte by byte in
// llama.cpp's layout (the engine integration tests cover states written by llama.cpp itself).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { chunkRange, computeChunkKeys } from "../../src/engine/chunk-keys.js";
import { decodeChunk, encodeChunk } from "../../src/engine/kv-chunk-format.js";
import { assembleSequenceState, parseSequenceState } from "../../src/engine/kv-state-layout.js";

interface Shape {
  cells: number;
  layers: number;
  kRow: number; // bytes
  vWidth: number; // elements of 2 bytes
  vTrans: boolean;
  version?: number;
  streams?: number;
  /** Empty streams written before the one holding the cells (a multi-sequence context's state). */
  emptyBefore?: number;
  /** Count written for each stream after the one holding the cells (0: empty, as llama.cpp writes). */
  after?: number[];
  posShift?: number;
  trailing?: number;
}

/** A sequence state file as llama.cpp writes it, with K/V bytes that encode (layer, cell, offset). */
function synthState(s: Shape): Buffer {
  const parts: Buffer[] = [];
  const u32 = (v: number): void => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    parts.push(b);
  };
  const i32 = (v: number): void => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    parts.push(b);
  };
  const u64 = (v: number): void => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    parts.push(b);
  };
  const fill = (n: number, seed: number): void => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 7) & 0xff;
    parts.push(b);
  };
  u32(0x67677371);
  u32(s.version ?? 3);
  u32(s.cells);
  for (let i = 0; i < s.cells; i++) i32(1000 + i);
  u32(s.streams ?? 1 + (s.emptyBefore ?? 0) + (s.after?.length ?? 0));
  for (let i = 0; i < (s.emptyBefore ?? 0); i++) u32(0);
  u32(s.cells);
  for (let i = 0; i < s.cells; i++) {
    i32(i + (s.posShift ?? 0));
    u32(1);
    i32(0);
  }
  u32(s.vTrans ? 1 : 0);
  u32(s.layers);
  for (let l = 0; l < s.layers; l++) {
    i32(1);
    u64(s.kRow);
    fill(s.kRow * s.cells, 100 + l);
  }
  for (let l = 0; l < s.layers; l++) {
    i32(1);
    if (s.vTrans) {
      u32(2);
      u32(s.vWidth);
    } else {
      u64(s.vWidth * 2);
    }
    fill(s.vWidth * 2 * s.cells, 200 + l);
  }
  for (const n of s.after ?? []) u32(n);
  if (s.trailing) fill(s.trailing, 9);
  return Buffer.concat(parts);
}

const FP = "f".repeat(64);
const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    if (e instanceof KvbridgeError) return e.code;
    throw e;
  }
  return "no error";
};

/** Cuts a parsed state into chunks of `t` cells, exactly as the engine's prefill does. */
function cut(buf: Buffer, t: number): Buffer[] {
  const state = parseSequenceState(buf);
  const tokens = Array.from(state.tokens);
  return computeChunkKeys(FP, t, tokens).map((key, index) => {
    const { tokenStart, tokenEnd } = chunkRange(index, tokens.length, t);
    return encodeChunk({ fingerprint: FP, key, index, tokenStart, tokenEnd, state });
  });
}

describe("KV state layout and chunks", () => {
  it("cut into chunks and assembled again gives back llama.cpp's state byte for byte", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 20 }),
        (cells, layers, vTrans, t) => {
          const shape = { cells, layers, kRow: 8, vWidth: 6, vTrans };
          const original = synthState(shape);
          const state = parseSequenceState(original);
          const chunks = cut(original, t).map((c) => decodeChunk(c));
          const rebuilt = assembleSequenceState(state.layout, state.tokens, chunks.map((c) => c.part));
          expect(rebuilt.equals(original)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("a sequence of a multi-sequence context (one stream with cells, the others empty) parses, and assembles for any stream count", () => {
    for (const vTrans of [false, true]) {
      const single = synthState({ cells: 9, layers: 2, kRow: 8, vWidth: 6, vTrans });
      const multi = synthState({ cells: 9, layers: 2, kRow: 8, vWidth: 6, vTrans, emptyBefore: 2, after: [0] });
      const a = parseSequenceState(single);
      const b = parseSequenceState(multi);
      expect(b.streams).toBe(4);
      expect(a.streams).toBe(1);
      expect(b.layout).toEqual(a.layout);
      expect(b.k.map((x) => x.toString("hex"))).toEqual(a.k.map((x) => x.toString("hex")));
      const chunks = cut(single, 4).map((c) => decodeChunk(c).part);
      const for4 = assembleSequenceState(a.layout, a.tokens, chunks, 4);
      expect(for4.equals(synthState({ cells: 9, layers: 2, kRow: 8, vWidth: 6, vTrans, after: [0, 0, 0] }))).toBe(true);
      expect(parseSequenceState(for4).streams).toBe(4);
      // Cells in two streams are not one sequence's state.
      expect(codeOf(() => parseSequenceState(synthState({ cells: 9, layers: 2, kRow: 8, vWidth: 6, vTrans, after: [3] })))).toBe("INCOMPATIBLE");
    }
  });

  it("assembling fewer cells than the chunks hold keeps exactly the first cells of every layer", () => {
    for (const vTrans of [false, true]) {
      const original = synthState({ cells: 23, layers: 2, kRow: 8, vWidth: 6, vTrans });
      const state = parseSequenceState(original);
      const parts = cut(original, 5).map((c) => decodeChunk(c).part);
      const smaller = parseSequenceState(assembleSequenceState(state.layout, state.tokens.slice(0, 17), parts));
      const reference = parseSequenceState(synthState({ cells: 17, layers: 2, kRow: 8, vWidth: 6, vTrans }));
      expect(smaller.cellCount).toBe(17);
      for (let l = 0; l < 2; l++) {
        // K rows are cell-major, so the first 17 rows are a prefix of the original.
        expect(smaller.k[l]!.equals(state.k[l]!.subarray(0, 17 * 8))).toBe(true);
        if (!vTrans) expect(smaller.v[l]!.equals(state.v[l]!.subarray(0, 17 * 12))).toBe(true);
        else {
          for (let j = 0; j < 6; j++) {
            const col = smaller.v[l]!.subarray(j * 17 * 2, (j + 1) * 17 * 2);
            expect(col.equals(state.v[l]!.subarray(j * 23 * 2, j * 23 * 2 + 17 * 2))).toBe(true);
          }
        }
      }
      expect(reference.layout).toEqual(smaller.layout);
    }
  });

  it("refuses state layouts it cannot cut, as INCOMPATIBLE", () => {
    const base = { cells: 4, layers: 1, kRow: 8, vWidth: 2, vTrans: true };
    expect(codeOf(() => parseSequenceState(synthState({ ...base, version: 2 })))).toBe("INCOMPATIBLE");
    expect(codeOf(() => parseSequenceState(synthState({ ...base, streams: 2 })))).toBe("INCOMPATIBLE");
    expect(codeOf(() => parseSequenceState(synthState({ ...base, posShift: 3 })))).toBe("INCOMPATIBLE");
    expect(codeOf(() => parseSequenceState(synthState({ ...base, trailing: 5 })))).toBe("INCOMPATIBLE");
    const whole = synthState(base);
    expect(codeOf(() => parseSequenceState(whole.subarray(0, whole.length - 1)))).toBe("INCOMPATIBLE");
    expect(codeOf(() => parseSequenceState(Buffer.from("not a state at all")))).toBe("INCOMPATIBLE");
  });

  it("a chunk carries its identity: fingerprint, key, index and token range", () => {
    const chunks = cut(synthState({ cells: 10, layers: 2, kRow: 8, vWidth: 4, vTrans: false }), 4);
    const keys = computeChunkKeys(FP, 4, Array.from({ length: 10 }, (_, i) => 1000 + i));
    const last = decodeChunk(chunks[2]!);
    expect(last).toMatchObject({ fingerprint: FP, key: keys[2], index: 2, tokenStart: 8, tokenEnd: 10 });
    expect(last.part.cells).toBe(2);
  });

  it("a damaged, truncated or foreign chunk is INCOMPATIBLE, never loaded", () => {
    const chunk = cut(synthState({ cells: 6, layers: 1, kRow: 8, vWidth: 4, vTrans: true }), 4)[0]!;
    expect(() => decodeChunk(chunk)).not.toThrow();
    for (const at of [8, 50, 110, chunk.length - 1]) {
      const bad = Buffer.from(chunk);
      bad[at]! ^= 0x01;
      expect(codeOf(() => decodeChunk(bad))).toBe("INCOMPATIBLE");
    }
    expect(codeOf(() => decodeChunk(chunk.subarray(0, chunk.length - 2)))).toBe("INCOMPATIBLE");
    // Slack after the chunk (the rest of a pool slot) is not part of it.
    const inSlot = Buffer.concat([chunk, Buffer.alloc(100, 0xab)]);
    expect(decodeChunk(inSlot).part.k[0]!.equals(decodeChunk(chunk).part.k[0]!)).toBe(true);
    expect(codeOf(() => decodeChunk(Buffer.alloc(chunk.length)))).toBe("INCOMPATIBLE");
    const otherVersion = Buffer.from(chunk);
    otherVersion.writeUInt16LE(2, 4);
    expect(() => decodeChunk(otherVersion)).toThrow(/format version 2/);
  });
});
