// The bytes of one KV chunk: a token range [tokenStart, tokenEnd) of one sequence's K and V for
// every layer, behind a self-describing header. A decode node validates every chunk against its
// own engine before loading it, so a chunk from another model, another chunk size, another
// llama.cpp state layout, another prompt, or with damaged bytes fails as INCOMPATIBLE instead of
// being loaded as garbage. Byte layout (little-endian):
//
//   off  size  field
//     0     4  magic "KVBC"
//     4     2  format version (1)
//     6     2  header bytes (128 + 24 * layers); the payload starts here
//     8    32  sha256 of bytes [40, end): header fields after it and the whole payload
//    40    32  engine fingerprint (raw sha256; see fingerprint.ts)
//    72    32  chunk key (raw sha256 hash chain; see chunk-keys.ts)
//   104     4  chunk index
//   108     4  tokenStart
//   112     4  tokenEnd (exclusive)
//   116     4  llama.cpp sequence state version
//   120     1  V transposed (0 or 1), then 3 zero bytes
//   124     4  layer count L
//   128  24*L  per layer: i32 kType, u32 kRowBytes, i32 vType, u32 vElementBytes, u32 vWidth, u32 vCellBytes
//   hdr        payload: per layer K rows of the chunk's cells; then per layer V rows, or when V is
//              transposed, vWidth runs of the chunk's cells' elements (one run per V dimension)

import { createHash } from "node:crypto";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { KvLayerLayout, KvStateLayout, SequenceState, StatePart } from "./kv-state-layout.js";

const MAGIC = Buffer.from("KVBC", "ascii");
export const CHUNK_FORMAT_VERSION = 1;
const FIXED_HEADER_BYTES = 128;
const LAYER_HEADER_BYTES = 24;
const CHECKSUM_OFFSET = 8;
const CHECKSUMMED_FROM = 40;

export interface DecodedChunk {
  fingerprint: string;
  key: string;
  index: number;
  tokenStart: number;
  tokenEnd: number;
  layout: KvStateLayout;
  /** Zero-copy views into the chunk's payload, ready for assembleSequenceState. */
  part: StatePart;
}

export function chunkHeaderBytes(layers: number): number {
  return FIXED_HEADER_BYTES + LAYER_HEADER_BYTES * layers;
}

/** Bytes of a chunk holding `cells` tokens. */
export function chunkByteLength(layout: KvStateLayout, cells: number): number {
  let perCell = 0;
  for (const l of layout.layers) perCell += l.kRowBytes + l.vCellBytes;
  return chunkHeaderBytes(layout.layers.length) + perCell * cells;
}

export interface EncodeChunkInput {
  fingerprint: string; // hex
  key: string; // hex
  index: number;
  tokenStart: number;
  tokenEnd: number;
  state: SequenceState;
}

/** Copies cells [tokenStart, tokenEnd) of `state` into a new chunk. */
export function encodeChunk(input: EncodeChunkInput): Buffer {
  const { state, tokenStart, tokenEnd } = input;
  const { layout } = state;
  const cells = tokenEnd - tokenStart;
  if (cells <= 0 || tokenEnd > state.cellCount) {
    throw new KvbridgeError("INTERNAL", `chunk range [${tokenStart}, ${tokenEnd}) is empty or outside the ${state.cellCount} cells of the state`);
  }
  const out = Buffer.allocUnsafe(chunkByteLength(layout, cells));
  MAGIC.copy(out, 0);
  out.writeUInt16LE(CHUNK_FORMAT_VERSION, 4);
  const headerBytes = chunkHeaderBytes(layout.layers.length);
  out.writeUInt16LE(headerBytes, 6);
  writeHex32(out, 40, input.fingerprint, "fingerprint");
  writeHex32(out, 72, input.key, "key");
  out.writeUInt32LE(input.index, 104);
  out.writeUInt32LE(tokenStart, 108);
  out.writeUInt32LE(tokenEnd, 112);
  out.writeUInt32LE(layout.stateVersion, 116);
  out.writeUInt32LE(layout.vTransposed ? 1 : 0, 120);
  out.writeUInt32LE(layout.layers.length, 124);
  let o = FIXED_HEADER_BYTES;
  for (const l of layout.layers) {
    o = out.writeInt32LE(l.kType, o);
    o = out.writeUInt32LE(l.kRowBytes, o);
    o = out.writeInt32LE(l.vType, o);
    o = out.writeUInt32LE(l.vElementBytes, o);
    o = out.writeUInt32LE(l.vWidth, o);
    o = out.writeUInt32LE(l.vCellBytes, o);
  }
  layout.layers.forEach((l, i) => {
    o += state.k[i]!.copy(out, o, tokenStart * l.kRowBytes, tokenEnd * l.kRowBytes);
  });
  layout.layers.forEach((l, i) => {
    const src = state.v[i]!;
    if (!layout.vTransposed) {
      o += src.copy(out, o, tokenStart * l.vCellBytes, tokenEnd * l.vCellBytes);
      return;
    }
    const el = l.vElementBytes;
    for (let j = 0; j < l.vWidth; j++) {
      const col = j * state.cellCount * el;
      o += src.copy(out, o, col + tokenStart * el, col + tokenEnd * el);
    }
  });
  createHash("sha256").update(out.subarray(CHECKSUMMED_FROM)).digest().copy(out, CHECKSUM_OFFSET);
  return out;
}

/**
 * Reads a chunk's header and checks the chunk is whole and undamaged. Whether it fits this
 * engine (fingerprint, position, key) is the caller's check: this only needs the bytes.
 * `input` may run past the chunk (a whole pool slot): the header says where the chunk ends.
 */
export function decodeChunk(input: Buffer, what = "KV chunk"): DecodedChunk {
  let bytes = input;
  if (bytes.length < FIXED_HEADER_BYTES || !bytes.subarray(0, 4).equals(MAGIC)) {
    throw bad(`${what} is not a kvbridge KV chunk (no "KVBC" header in its ${bytes.length} bytes)`);
  }
  const version = bytes.readUInt16LE(4);
  if (version !== CHUNK_FORMAT_VERSION) {
    throw bad(`${what} has chunk format version ${version}; this kvbridge reads version ${CHUNK_FORMAT_VERSION}. Run the same kvbridge release on prefill and decode nodes`);
  }
  const nLayer = bytes.readUInt32LE(124);
  const headerBytes = bytes.readUInt16LE(6);
  if (nLayer > 4096 || headerBytes !== chunkHeaderBytes(nLayer) || bytes.length < headerBytes) {
    throw bad(`${what} header is malformed (${nLayer} layers, header ${headerBytes} bytes, chunk ${bytes.length} bytes)`);
  }
  const index = bytes.readUInt32LE(104);
  const tokenStart = bytes.readUInt32LE(108);
  const tokenEnd = bytes.readUInt32LE(112);
  const stateVersion = bytes.readUInt32LE(116);
  const vFlag = bytes.readUInt32LE(120);
  if (tokenEnd <= tokenStart || vFlag > 1) throw bad(`${what} header is malformed (tokens [${tokenStart}, ${tokenEnd}), V flag ${vFlag})`);
  const layers: KvLayerLayout[] = [];
  let o = FIXED_HEADER_BYTES;
  for (let l = 0; l < nLayer; l++) {
    layers.push({
      kType: bytes.readInt32LE(o),
      kRowBytes: bytes.readUInt32LE(o + 4),
      vType: bytes.readInt32LE(o + 8),
      vElementBytes: bytes.readUInt32LE(o + 12),
      vWidth: bytes.readUInt32LE(o + 16),
      vCellBytes: bytes.readUInt32LE(o + 20),
    });
    o += LAYER_HEADER_BYTES;
  }
  const layout: KvStateLayout = { stateVersion, vTransposed: vFlag === 1, layers };
  const cells = tokenEnd - tokenStart;
  if (layout.vTransposed && layers.some((l) => l.vCellBytes !== l.vElementBytes * l.vWidth)) {
    throw bad(`${what} header is malformed (transposed V sizes disagree)`);
  }
  const expected = chunkByteLength(layout, cells);
  if (bytes.length < expected) {
    throw bad(`${what} is ${bytes.length} bytes; its header describes ${expected} (${cells} tokens): it is truncated`);
  }
  bytes = bytes.subarray(0, expected);
  // Checked before the payload is handed out: a damaged chunk never reaches llama.cpp.
  const sum = createHash("sha256").update(bytes.subarray(CHECKSUMMED_FROM)).digest();
  if (!sum.equals(bytes.subarray(CHECKSUM_OFFSET, CHECKSUMMED_FROM))) {
    throw bad(`${what} is damaged: its checksum does not match its bytes (a partial, stale or corrupted write)`);
  }
  const k: Buffer[] = [];
  const v: Buffer[] = [];
  for (const l of layers) {
    k.push(bytes.subarray(o, o + l.kRowBytes * cells));
    o += l.kRowBytes * cells;
  }
  for (const l of layers) {
    v.push(bytes.subarray(o, o + l.vCellBytes * cells));
    o += l.vCellBytes * cells;
  }
  return {
    fingerprint: bytes.subarray(40, 72).toString("hex"),
    key: bytes.subarray(72, 104).toString("hex"),
    index,
    tokenStart,
    tokenEnd,
    layout,
    part: { cells, k, v },
  };
}

function writeHex32(out: Buffer, offset: number, hex: string, what: string): void {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new KvbridgeError("INTERNAL", `chunk ${what} must be 64 lowercase hex digits, got "${hex}"`);
  out.write(hex, offset, 32, "hex");
}

function bad(message: string): KvbridgeError {
  return new KvbridgeError("INCOMPATIBLE", message);
}
