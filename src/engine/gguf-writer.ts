// Serializes a GGUF v3 file (the llama.cpp model container) from metadata and F32 tensors.
// Only what the tiny model needs: scalar/string/array metadata and F32 tensor data.
// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md

import { KvbridgeError } from "../errors/kvbridge-error.js";

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
const ALIGNMENT = 32; // general.alignment default; tensor data offsets must be multiples of it
const GGML_TYPE_F32 = 0;

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

export interface GgufTensor {
  name: string;
  /** ggml order: dims[0] is the fastest-varying (row length). */
  dims: readonly number[];
  data: Float32Array;
}

/** Builds the whole file in memory (the tiny model is tens of MB) and returns it. */
export function encodeGguf(metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: readonly GgufTensor[]): Buffer {
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
    const elements = t.dims.reduce((a, b) => a * b, 1);
    if (elements !== t.data.length) {
      throw new KvbridgeError(
        "INVALID_ARGUMENT",
        `GGUF tensor ${t.name}: dims ${t.dims.join("x")} hold ${elements} values but its data has ${t.data.length}; pass data of the declared shape`,
      );
    }
    head.string(t.name);
    head.u32(t.dims.length);
    for (const d of t.dims) head.u64(d);
    head.u32(GGML_TYPE_F32);
    head.u64(dataOffset);
    offsets.push(dataOffset);
    dataOffset = alignUp(dataOffset + t.data.byteLength, ALIGNMENT);
  }
  const headBytes = head.toBuffer();
  const dataStart = alignUp(headBytes.length, ALIGNMENT);
  const out = Buffer.alloc(dataStart + dataOffset); // zero padding between sections
  headBytes.copy(out, 0);
  tensors.forEach((t, i) => {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, dataStart + offsets[i]!);
  });
  return out;
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
