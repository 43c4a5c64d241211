// The GGUF writer's tensor encodings (F16, Q8_0) against reference decodings written here from
// ggml's definitions, and the file layout read back by node-llama-cpp's own GGUF parser.
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { readGgufFileInfo } from "node-llama-cpp";
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import {
  Q8_0_BLOCK_BYTES,
  encodeGguf,
  encodeTensorData,
  f32ToF16Bits,
  layoutGguf,
  quantizeQ8_0,
  tensorDataBytes,
  writeGguf,
  type GgufTensor,
  type GgufValue,
} from "../../src/engine/gguf-writer.js";
import { SeededRandom } from "../../src/engine/seeded-random.js";

/** IEEE binary16 bits to a number, from the format's definition (not from the encoder). */
function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** ggml's dequantize_row_q8_0: per 34-byte block, y[j] = qs[j] * d with d the block's leading f16. */
function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  const blocks = bytes.length / 34;
  const out = new Float32Array(blocks * 32);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) {
    const d = f16ToNumber(view.getUint16(b * 34, true));
    for (let j = 0; j < 32; j++) out[b * 32 + j] = view.getInt8(b * 34 + 2 + j) * d;
  }
  return out;
}

describe("F16 encoding", () => {
  it("rounds to the nearest half, ties to even, with ggml's special values", () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.1, 0x2e66],
      [65504, 0x7bff], // largest half
      [65519, 0x7bff], // just below the midpoint to infinity
      [65520, 0x7c00], // the midpoint rounds (to even) to infinity
      [1e6, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // half of it: tie to even (zero)
      [3 * 2 ** -25, 0x0002], // 1.5 subnormal steps: tie to even (2)
      [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: even is 1
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 1+2^-10 and 1+2^-9: even is 0x3c02
      [2 ** -14 - 2 ** -25, 0x0400], // rounds up from the largest subnormal into the smallest normal
    ];
    for (const [x, bits] of cases) expect(f32ToF16Bits(x), `f16(${x})`).toBe(bits);
    expect(f32ToF16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect(f32ToF16Bits(NaN) & 0x3ff).not.toBe(0);
  });

  it("gives the nearest half for every magnitude (checked against its neighbours)", () => {
    const rng = new SeededRandom(3);
    for (let i = 0; i < 20000; i++) {
      // log-uniform magnitudes across the whole half range, both signs
      const x = Math.fround((rng.nextFloat() < 0.5 ? -1 : 1) * 2 ** (rng.nextFloat() * 42 - 26));
      const h = f32ToF16Bits(x);
      const err = Math.abs(f16ToNumber(h) - x);
      for (const n of [h - 1, h + 1]) {
        if ((n & 0x7fff) > 0x7bff || (n & 0x7fff) === 0x7fff || n < 0 || (n & 0x8000) !== (h & 0x8000)) continue;
        expect(err, `f16(${x}) = ${h.toString(16)}`).toBeLessThanOrEqual(Math.abs(f16ToNumber(n) - x));
      }
    }
  });

  it("encodes a tensor as little-endian halves", () => {
    const bytes = encodeTensorData("f16", Float32Array.from([1, -2, 0.5]));
    expect([...bytes]).toEqual([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38]);
  });
});

describe("Q8_0 encoding", () => {
  it("round-trips through ggml's dequantization within half a step per block", () => {
    const data = new Float32Array(32 * 500);
    new SeededRandom(9).fillUniform(data, 0.07);
    for (let i = 0; i < 32 * 20; i++) data[i]! *= 1e-4; // small blocks too: their scale is subnormal in f16
    const bytes = quantizeQ8_0(data);
    expect(bytes.length).toBe(500 * Q8_0_BLOCK_BYTES);
    const back = dequantizeQ8_0(bytes);
    for (let b = 0; b < 500; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(data[b * 32 + j]!));
      const step = amax / 127;
      // half a step from rounding, plus the f16 rounding of the scale (relative 2^-11, or 2^-25
      // absolute where the scale is subnormal in f16) times |q| <= 127
      const bound = step / 2 + 127 * Math.max(step * 2 ** -11, 2 ** -25);
      for (let j = 0; j < 32; j++) expect(Math.abs(back[b * 32 + j]! - data[b * 32 + j]!)).toBeLessThanOrEqual(bound);
      // the block's largest magnitude is +-127 steps
      const q = new Int8Array(bytes.buffer, bytes.byteOffset + b * 34 + 2, 32);
      expect(Math.max(...[...q].map(Math.abs))).toBe(127);
    }
  });

  it("lays out each block as an f16 scale then 32 int8, rounding halves away from zero", () => {
    // Scale 1 (max 127): integers are exact, and x.5 rounds away from zero like roundf.
    const block = new Float32Array(32);
    block[0] = 127;
    block[1] = -127;
    block[2] = 2.5;
    block[3] = -2.5;
    block[4] = 0.49;
    block[5] = -64;
    const zero = new Float32Array(32); // an all-zero block: scale 0, all q 0
    const bytes = quantizeQ8_0(Float32Array.from([...block, ...zero]));
    expect(bytes.length).toBe(2 * 34);
    expect(bytes[0]! | (bytes[1]! << 8)).toBe(0x3c00); // d = 1.0
    const q = new Int8Array(bytes.buffer, bytes.byteOffset + 2, 32);
    expect([...q.subarray(0, 7)]).toEqual([127, -127, 3, -3, 0, -64, 0]);
    expect([...bytes.subarray(34)].every((v) => v === 0)).toBe(true);
  });

  it("refuses data that does not fill whole blocks", () => {
    expect(() => quantizeQ8_0(new Float32Array(33))).toThrow(KvbridgeError);
    expect(() => layoutGguf([], [{ name: "w", dims: [48, 2], type: "q8_0" }])).toThrow(/multiple of 32/);
  });
});

describe("GGUF layout", () => {
  let dir: string | null = null;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = null;
  });

  const metadata: Array<[string, GgufValue]> = [
    ["general.architecture", { type: "string", value: "llama" }],
    ["general.name", { type: "string", value: "layout-test" }],
    ["test.count", { type: "u32", value: 7 }],
  ];
  const tensors = (): GgufTensor[] => {
    const rng = new SeededRandom(5);
    const make = (n: number): Float32Array => {
      const a = new Float32Array(n);
      rng.fillUniform(a, 1);
      return a;
    };
    return [
      { name: "a.f32", dims: [3], type: "f32", data: make(3) }, // 12 bytes: the next offset pads to 32
      { name: "b.q8_0", dims: [64, 3], type: "q8_0", data: make(192) },
      { name: "c.f16", dims: [5, 3], type: "f16", data: make(15) },
      { name: "d.default", dims: [2, 2], data: make(4) },
    ];
  };

  it("sizes and aligns mixed tensor types, and node-llama-cpp's parser reads them back", async () => {
    const ts = tensors();
    expect(ts.map(tensorDataBytes)).toEqual([12, 6 * 34, 30, 16]);
    const layout = layoutGguf(metadata, ts);
    expect(layout.offsets).toEqual([0, 32, 32 + 224, 32 + 224 + 32]);
    expect(layout.header.length % 32).toBe(0);
    dir = await mkdtemp(path.join(os.tmpdir(), "kvb-gguf-"));
    const file = path.join(dir, "t.gguf");
    const bytes = encodeGguf(metadata, ts);
    expect(bytes.length).toBe(layout.fileBytes);
    const fh = await open(file, "w");
    await writeGguf(fh, metadata, ts, (i) => ts[i]!.data);
    await fh.close();
    expect((await readFile(file)).equals(bytes)).toBe(true); // streamed = built in memory

    const info = await readGgufFileInfo(file, { logWarnings: false });
    expect(info.version).toBe(3);
    expect((info.metadata as { general: { name: string } }).general.name).toBe("layout-test");
    const read = (info.fullTensorInfo ?? info.tensorInfo ?? []).map((t) => ({
      name: t.name,
      dims: t.dimensions.map(Number),
      type: t.ggmlType,
      offset: Number(t.offset),
    }));
    // ggml_type ids: F32 0, F16 1, Q8_0 8
    expect(read).toEqual([
      { name: "a.f32", dims: [3], type: 0, offset: 0 },
      { name: "b.q8_0", dims: [64, 3], type: 8, offset: 32 },
      { name: "c.f16", dims: [5, 3], type: 1, offset: 256 },
      { name: "d.default", dims: [2, 2], type: 0, offset: 288 },
    ]);
    // The Q8_0 tensor's bytes sit at its offset and dequantize back to its values.
    const start = layout.header.length + 32;
    const back = dequantizeQ8_0(bytes.subarray(start, start + 6 * 34));
    for (let i = 0; i < 192; i++) expect(back[i]).toBeCloseTo(ts[1]!.data[i]!, 1);
  });

  it("refuses data of another shape than declared", () => {
    const ts = tensors();
    ts[2] = { ...ts[2]!, data: new Float32Array(14) };
    expect(() => encodeGguf(metadata, ts)).toThrow(/c\.f16.*15 values.*14/);
  });
});
