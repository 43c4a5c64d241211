// Serializes a GGUF v3 file (the llama.cpp model container) from metadata and tensors.
// Scalar/string/array metadata; tensor data as F32, F16 or Q8_0 (ggml's type ids and block
// layouts: ggml/include/ggml.h, ggml/src/ggml-common.h, ggml/src/ggml-quants.c). A file is either
// built in memory (encodeGguf) or streamed tensor by tensor (writeGguf), so a model of hundreds of
// MB never sits in memory whole.
// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md

import type { FileHandle } from "node:fs/promises";
import { KvbridgeError } from "../errors/kvbridge-error.js";

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
const ALIGNMENT = 32; // general.alignment default; tensor data offsets must be multiples of it

/** Tensor encodings kvbridge writes. */
export type GgmlType = "f32" | "f16" | "q8_0";

/** ggml_type ids (enum ggml_type in ggml.h). */
export const GGML_TYPE_ID: Readonly<Record<GgmlType, number>> = Object.freeze({ f32: 0, f16: 1, q8_0: 8 });

/** Q8_0: blocks of 32 values, each one f16 scale d then 32 int8 q (value = q * d): 34 bytes. */
export const Q8_0_BLOCK_VALUES = 32;
export const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK_VALUES;

const enum ValueType {
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
}

/** A metadata value, tagged with its GGUF type so numbers are never guessed. */
export type GgufValue =
  | { type: "u32"; value: number }
  | { type: "i32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: readonly string[] }
  | { type: "f32[]"; value: ArrayLike<number> }
  | { type: "i32[]"; value: ArrayLike<number> };

/** A tensor's place in the file: name, shape and encoding. */
export interface GgufTensorInfo {
  name: string;
  /** ggml order: dims[0] is the fastest-varying (row length). */
  dims: readonly number[];
  /** Encoding in the file. Default f32. */
  type?: GgmlType;
}

export interface GgufTensor extends GgufTensorInfo {
  data: Float32Array;
}

/** Bytes of a tensor's data in the file (before alignment padding). */
export function tensorDataBytes(info: GgufTensorInfo): number {
  const elements = elementCount(info.dims);
  switch (info.type ?? "f32") {
    case "f32":
      return elements * 4;
    case "f16":
      return elements * 2;
    case "q8_0":
      return (elements / Q8_0_BLOCK_VALUES) * Q8_0_BLOCK_BYTES;
  }
}

/** The header (magic, metadata, tensor infos) padded to where tensor data starts, and each tensor's data offset. */
export interface GgufLayout {
  header: Buffer;
  /** Offset of each tensor's data from the start of the data section (aligned). */
  offsets: number[];
  /** Bytes of the whole file. */
  fileBytes: number;
}

export function layoutGguf(metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: readonly GgufTensorInfo[]): GgufLayout {
  const head = new ByteSink();
  head.u32(GGUF_MAGIC);
  head.u32(GGUF_VERSION);
  head.u64(tensors.length);
  head.u64(metadata.length);
  for (const [key, value] of metadata) {
    head.string(key);
    writeValue(head, value);
  }
  let dataOffset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    checkShape(t);
    head.string(t.name);
    head.u32(t.dims.length);
    for (const d of t.dims) head.u64(d);
    head.u32(GGML_TYPE_ID[t.type ?? "f32"]);
    head.u64(dataOffset);
    offsets.push(dataOffset);
    dataOffset = alignUp(dataOffset + tensorDataBytes(t), ALIGNMENT);
  }
  const headBytes = head.toBuffer();
  const header = Buffer.alloc(alignUp(headBytes.length, ALIGNMENT)); // zero padding up to the data
  headBytes.copy(header, 0);
  return { header, offsets, fileBytes: header.length + dataOffset };
}

/** Builds the whole file in memory (fine for the small model, tens of MB) and returns it. */
export function encodeGguf(metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: readonly GgufTensor[]): Buffer {
  const layout = layoutGguf(metadata, tensors);
  const out = Buffer.alloc(layout.fileBytes); // zero padding between tensors
  layout.header.copy(out, 0);
  tensors.forEach((t, i) => {
    checkData(t, t.data);
    out.set(encodeTensorData(t.type ?? "f32", t.data), layout.header.length + layout.offsets[i]!);
  });
  return out;
}

/**
 * Streams a GGUF file to `file`: the header, then each tensor's data as `produce(i)` returns it,
 * called once per tensor in order (so a seeded generator can make them one at a time).
 */
export async function writeGguf(
  file: FileHandle,
  metadata: ReadonlyArray<readonly [string, GgufValue]>,
  tensors: readonly GgufTensorInfo[],
  produce: (index: number) => Float32Array,
): Promise<number> {
  const layout = layoutGguf(metadata, tensors);
  let pos = 0;
  const put = async (bytes: Uint8Array): Promise<void> => {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await file.write(bytes, done, bytes.length - done, pos + done);
      done += bytesWritten;
    }
    pos += bytes.length;
  };
  await put(layout.header);
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i]!;
    const start = layout.header.length + layout.offsets[i]!;
    if (pos < start) await put(new Uint8Array(start - pos));
    const data = produce(i);
    checkData(t, data);
    await put(encodeTensorData(t.type ?? "f32", data));
  }
  if (pos < layout.fileBytes) await put(new Uint8Array(layout.fileBytes - pos));
  return layout.fileBytes;
}

/** A tensor's bytes in the file for `type`. */
export function encodeTensorData(type: GgmlType, data: Float32Array): Uint8Array {
  switch (type) {
    case "f32":
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    case "f16":
      return encodeF16(data);
    case "q8_0":
      return quantizeQ8_0(data);
  }
}

/** IEEE half-precision bits of `f`, rounded to nearest even (as ggml's GGML_FP32_TO_FP16). */
export function f32ToF16Bits(f: number): number {
  F32_SCRATCH[0] = f;
  return f32BitsToF16(U32_SCRATCH[0]!);
}

const F32_SCRATCH = new Float32Array(1);
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer);

function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // inf, NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // too large: inf
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: zero
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && (h & 1) === 1)) h++;
    return sign | h; // a carry into the exponent field gives the smallest normal, as it should
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++; // a carry may round up to inf: correct
  return sign | h;
}

function encodeF16(data: Float32Array): Uint8Array {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint16Array(data.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16(bits[i]!);
  return littleEndianBytes(out);
}

/**
 * Q8_0 as ggml's quantize_row_q8_0_ref: per block of 32, d = max|x| / 127, q = round(x / d)
 * (half away from zero), d stored as f16. The data's row length must be a multiple of 32.
 */
export function quantizeQ8_0(data: Float32Array): Uint8Array {
  if (data.length % Q8_0_BLOCK_VALUES !== 0) {
    throw new KvbridgeError("INVALID_ARGUMENT", `Q8_0 needs a multiple of ${Q8_0_BLOCK_VALUES} values, got ${data.length}`);
  }
  const blocks = data.length / Q8_0_BLOCK_VALUES;
  const out = new Uint8Array(blocks * Q8_0_BLOCK_BYTES);
  const q = new Int8Array(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const base = b * Q8_0_BLOCK_VALUES;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK_VALUES; j++) {
      const x = data[base + j]!;
      const a = x < 0 ? -x : x;
      if (a > amax) amax = a;
    }
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const h = f32ToF16Bits(d);
    const at = b * Q8_0_BLOCK_BYTES;
    out[at] = h & 0xff;
    out[at + 1] = h >>> 8;
    for (let j = 0; j < Q8_0_BLOCK_VALUES; j++) {
      const v = Math.fround(data[base + j]! * id);
      q[at + 2 + j] = Math.trunc(v < 0 ? v - 0.5 : v + 0.5); // roundf: halves away from zero (exact in doubles)
    }
  }
  return out;
}

function littleEndianBytes(a: Uint16Array): Uint8Array {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (IS_LITTLE_ENDIAN) return bytes;
  const out = new Uint8Array(a.length * 2);
  for (let i = 0; i < a.length; i++) {
    out[2 * i] = a[i]! & 0xff;
    out[2 * i + 1] = a[i]! >>> 8;
  }
  return out;
}

const IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function checkShape(t: GgufTensorInfo): void {
  if (t.dims.length === 0 || t.dims.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new KvbridgeError("INVALID_ARGUMENT", `GGUF tensor ${t.name}: dims ${t.dims.join("x")} must be positive integers`);
  }
  if (t.type === "q8_0" && t.dims[0]! % Q8_0_BLOCK_VALUES !== 0) {
    throw new KvbridgeError(
      "INVALID_ARGUMENT",
      `GGUF tensor ${t.name}: Q8_0 needs rows of a multiple of ${Q8_0_BLOCK_VALUES} values, its row has ${t.dims[0]}`,
    );
  }
}

function checkData(t: GgufTensorInfo, data: Float32Array): void {
  const elements = elementCount(t.dims);
  if (elements !== data.length) {
    throw new KvbridgeError(
      "INVALID_ARGUMENT",
      `GGUF tensor ${t.name}: dims ${t.dims.join("x")} hold ${elements} values but its data has ${data.length}; pass data of the declared shape`,
    );
  }
}

function writeValue(sink: ByteSink, v: GgufValue): void {
  switch (v.type) {
    case "u32":
      sink.u32(ValueType.UINT32);
      sink.u32(v.value);
      return;
    case "i32":
      sink.u32(ValueType.INT32);
      sink.i32(v.value);
      return;
    case "f32":
      sink.u32(ValueType.FLOAT32);
      sink.f32(v.value);
      return;
    case "bool":
      sink.u32(ValueType.BOOL);
      sink.u8(v.value ? 1 : 0);
      return;
    case "string":
      sink.u32(ValueType.STRING);
      sink.string(v.value);
      return;
    case "string[]":
      sink.u32(ValueType.ARRAY);
      sink.u32(ValueType.STRING);
      sink.u64(v.value.length);
      for (const s of v.value) sink.string(s);
      return;
    case "f32[]":
      sink.u32(ValueType.ARRAY);
      sink.u32(ValueType.FLOAT32);
      sink.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) sink.f32(v.value[i]!);
      return;
    case "i32[]":
      sink.u32(ValueType.ARRAY);
      sink.u32(ValueType.INT32);
      sink.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) sink.i32(v.value[i]!);
      return;
    default: {
      const never: never = v;
      throw new KvbridgeError("INTERNAL", `unknown GGUF value type in ${JSON.stringify(never)}`);
    }
  }
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** Growable little-endian byte sink for the (small) header section. */
class ByteSink {
  private buf = Buffer.alloc(64 * 1024);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  u8(v: number): void {
    this.reserve(1);
    this.buf.writeUInt8(v, this.len);
    this.len += 1;
  }
  u32(v: number): void {
    this.reserve(4);
    this.buf.writeUInt32LE(v, this.len);
    this.len += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.buf.writeInt32LE(v, this.len);
    this.len += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.buf.writeFloatLE(v, this.len);
    this.len += 4;
  }
  u64(v: number): void {
    this.reserve(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.len);
    this.len += 8;
  }
  string(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.u64(bytes.length);
    this.reserve(bytes.length);
    bytes.copy(this.buf, this.len);
    this.len += bytes.length;
  }
  toBuffer(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}
