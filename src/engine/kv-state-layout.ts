// llama.cpp's per-sequence state file ("ggsq", written by llama_state_seq_save_file): parse it into
// per-layer K and V views, and write one back from token-range parts. kvbridge cuts the parsed
// state into token-range chunks (kv-chunk-format.ts) the way LMCache re-cuts vLLM's paged KV.
//
// Layout (llama.cpp, state version 3, one KV-cache memory, little-endian):
//   u32 magic 'ggsq' | u32 version | u32 n_tokens | i32 tokens[n_tokens]
//   u32 n_stream (the context's sequence count: one KV stream per sequence)
//   per stream: u32 cell_count, and only when it is not 0 (the sequence's own stream):
//   per cell: i32 pos | u32 n_seq_id (1) | i32 seq_id
//   u32 v_trans | u32 n_layer
//   per layer: i32 k_type | u64 k_row_bytes | k_row_bytes * cell_count          (one K row per cell)
//   per layer, v_trans = 0: i32 v_type | u64 v_row_bytes | v_row_bytes * cell_count
//   per layer, v_trans = 1: i32 v_type | u32 v_el_bytes | u32 n_embd_v | n_embd_v * cell_count * v_el_bytes
//                           (transposed: for each V dimension, that dimension of every cell)

import { KvbridgeError } from "../errors/kvbridge-error.js";

export const STATE_SEQ_MAGIC = 0x67677371; // 'ggsq'
/** The only ggsq version this parser knows; another version fails as INCOMPATIBLE, never as garbage. */
export const SUPPORTED_STATE_VERSION = 3;
/** More KV streams than any context kvbridge makes (one per sequence): a sanity bound for parsing. */
const MAX_STREAMS = 4096;

export interface KvLayerLayout {
  /** ggml type id of K (1 = f16). */
  kType: number;
  /** Bytes of one cell's K row. */
  kRowBytes: number;
  /** ggml type id of V. */
  vType: number;
  /** Bytes of one V element when V is transposed, else 0. */
  vElementBytes: number;
  /** V width (n_embd_v_gqa) when V is transposed, else 0. */
  vWidth: number;
  /** Bytes of one cell's V (a row, or vWidth elements when transposed). */
  vCellBytes: number;
}

/** Everything that must match for one engine's KV bytes to be loadable by another. */
export interface KvStateLayout {
  stateVersion: number;
  vTransposed: boolean;
  layers: readonly KvLayerLayout[];
}

export interface SequenceState {
  layout: KvStateLayout;
  /** KV streams of the context that wrote it (its sequence count); not part of the layout. */
  streams: number;
  tokens: Int32Array;
  cellCount: number;
  /** Per layer: cellCount K rows, back to back (zero-copy view into the parsed buffer). */
  k: readonly Buffer[];
  /** Per layer: cellCount V rows, or vWidth columns of cellCount elements when transposed (view). */
  v: readonly Buffer[];
}

/** A token range of K/V in the same per-layer shape as SequenceState, for assembly. */
export interface StatePart {
  cells: number;
  k: readonly Buffer[];
  v: readonly Buffer[];
}

export function bytesPerCell(layout: KvStateLayout): number {
  let n = 0;
  for (const l of layout.layers) n += l.kRowBytes + l.vCellBytes;
  return n;
}

export function layoutsEqual(a: KvStateLayout, b: KvStateLayout): boolean {
  if (a.stateVersion !== b.stateVersion || a.vTransposed !== b.vTransposed || a.layers.length !== b.layers.length) return false;
  return a.layers.every((l, i) => {
    const m = b.layers[i]!;
    return (
      l.kType === m.kType &&
      l.kRowBytes === m.kRowBytes &&
      l.vType === m.vType &&
      l.vElementBytes === m.vElementBytes &&
      l.vWidth === m.vWidth &&
      l.vCellBytes === m.vCellBytes
    );
  });
}

/**
 * Parses one sequence's state as written by this engine. Anything outside the known layout
 * (another version, several streams, a cell shared by several sequences, positions that are not
 * 0..n-1, trailing bytes) is refused: kvbridge re-cuts these bytes, so guessing would corrupt them.
 */
export function parseSequenceState(buf: Buffer): SequenceState {
  const r = new Reader(buf);
  const magic = r.u32("magic");
  if (magic !== STATE_SEQ_MAGIC) {
    throw incompatible(`not a llama.cpp sequence state (magic 0x${magic.toString(16)}, expected 0x${STATE_SEQ_MAGIC.toString(16)} 'ggsq')`);
  }
  const stateVersion = r.u32("version");
  if (stateVersion !== SUPPORTED_STATE_VERSION) {
    throw incompatible(`llama.cpp sequence state version ${stateVersion}; kvbridge knows version ${SUPPORTED_STATE_VERSION}. Use the node-llama-cpp release kvbridge pins, or extend kv-state-layout.ts`);
  }
  const nTokens = r.u32("token count");
  const tokens = new Int32Array(nTokens);
  for (let i = 0; i < nTokens; i++) tokens[i] = r.i32("token");
  const nStream = r.u32("stream count");
  if (nStream === 0 || nStream > MAX_STREAMS) throw incompatible(`sequence state has ${nStream} KV streams; expected 1 to ${MAX_STREAMS}`);
  // A context of several sequences writes every stream's cell count; only the sequence's own
  // stream has cells (and data), the others are empty.
  let emptyBefore = 0;
  let cellCount = 0;
  while (emptyBefore < nStream && (cellCount = r.u32("cell count")) === 0) emptyBefore++;
  if (cellCount === 0) throw incompatible("sequence state holds no KV cells");
  if (cellCount !== nTokens) {
    throw incompatible(`sequence state has ${cellCount} KV cells for ${nTokens} tokens; kvbridge needs one cell per token (no SWA or recurrent state)`);
  }
  for (let i = 0; i < cellCount; i++) {
    const pos = r.i32("cell position");
    const nSeq = r.u32("cell sequence count");
    if (nSeq !== 1) throw incompatible(`KV cell ${i} belongs to ${nSeq} sequences; expected 1`);
    r.i32("cell sequence id");
    // Chunks carry no positions: cell i must be token i, which holds for a sequence evaluated from
    // position 0 without context shifts (the only way the engine fills a sequence).
    if (pos !== i) throw incompatible(`KV cell ${i} holds position ${pos}; expected ${i} (shifted or sparse sequence)`);
  }
  const vTransposed = r.u32("v_trans");
  if (vTransposed > 1) throw incompatible(`v_trans flag ${vTransposed} is not 0 or 1`);
  const nLayer = r.u32("layer count");
  const layers: KvLayerLayout[] = [];
  const k: Buffer[] = [];
  const v: Buffer[] = [];
  for (let l = 0; l < nLayer; l++) {
    const kType = r.i32("k type");
    const kRowBytes = r.u64("k row bytes");
    k.push(r.bytes(kRowBytes * cellCount, `layer ${l} K`));
    layers.push({ kType, kRowBytes, vType: -1, vElementBytes: 0, vWidth: 0, vCellBytes: 0 });
  }
  for (let l = 0; l < nLayer; l++) {
    const layer = layers[l]!;
    layer.vType = r.i32("v type");
    if (vTransposed) {
      layer.vElementBytes = r.u32("v element bytes");
      layer.vWidth = r.u32("v width");
      layer.vCellBytes = layer.vElementBytes * layer.vWidth;
    } else {
      layer.vCellBytes = r.u64("v row bytes");
    }
    v.push(r.bytes(layer.vCellBytes * cellCount, `layer ${l} V`));
  }
  for (let s = emptyBefore + 1; s < nStream; s++) {
    if (r.u32("cell count") !== 0) throw incompatible(`sequence state has cells in more than one KV stream; one sequence has one stream`);
  }
  if (r.remaining() !== 0) {
    throw incompatible(`sequence state has ${r.remaining()} bytes after the KV cache; this llama.cpp build stores more than kvbridge knows how to cut`);
  }
  return { layout: { stateVersion, vTransposed: vTransposed === 1, layers }, streams: nStream, tokens, cellCount, k, v };
}

/**
 * Writes a sequence state file holding `tokens` and the concatenation of `parts` (in token
 * order), cut to tokens.length cells. The result loads with llama_state_seq_load_file into any
 * sequence of a context with `streams` KV streams (llama.cpp requires the count to match; the
 * cells land in the destination sequence's stream whichever stream they are written in).
 */
export function assembleSequenceState(layout: KvStateLayout, tokens: ArrayLike<number>, parts: readonly StatePart[], streams = 1): Buffer {
  if (!Number.isInteger(streams) || streams < 1 || streams > MAX_STREAMS) throw new KvbridgeError("INTERNAL", `assembling a state for ${streams} KV streams`);
  const cells = tokens.length;
  const available = parts.reduce((a, p) => a + p.cells, 0);
  if (available < cells) {
    throw new KvbridgeError("INTERNAL", `assembling ${cells} KV cells from parts holding only ${available}`);
  }
  const nLayer = layout.layers.length;
  let size = 4 * 3 + 4 * cells + 4 * 2 + 12 * cells + 4 * 2 + 4 * (streams - 1);
  for (const l of layout.layers) size += 4 + 8 + l.kRowBytes * cells + (layout.vTransposed ? 4 + 4 + 4 : 4 + 8) + l.vCellBytes * cells;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  o = out.writeUInt32LE(STATE_SEQ_MAGIC, o);
  o = out.writeUInt32LE(layout.stateVersion, o);
  o = out.writeUInt32LE(cells, o);
  for (let i = 0; i < cells; i++) o = out.writeInt32LE(tokens[i]!, o);
  o = out.writeUInt32LE(streams, o);
  o = out.writeUInt32LE(cells, o); // the first stream holds the cells, the others none (written last)
  for (let i = 0; i < cells; i++) {
    o = out.writeInt32LE(i, o); // position
    o = out.writeUInt32LE(1, o); // one sequence id, which llama.cpp replaces with the destination's
    o = out.writeInt32LE(0, o);
  }
  o = out.writeUInt32LE(layout.vTransposed ? 1 : 0, o);
  o = out.writeUInt32LE(nLayer, o);
  for (let l = 0; l < nLayer; l++) {
    const layer = layout.layers[l]!;
    o = out.writeInt32LE(layer.kType, o);
    o = writeU64(out, layer.kRowBytes, o);
    o = copyRows(out, o, parts, cells, layer.kRowBytes, (p) => p.k[l]!);
  }
  for (let l = 0; l < nLayer; l++) {
    const layer = layout.layers[l]!;
    o = out.writeInt32LE(layer.vType, o);
    if (!layout.vTransposed) {
      o = writeU64(out, layer.vCellBytes, o);
      o = copyRows(out, o, parts, cells, layer.vCellBytes, (p) => p.v[l]!);
      continue;
    }
    o = out.writeUInt32LE(layer.vElementBytes, o);
    o = out.writeUInt32LE(layer.vWidth, o);
    const el = layer.vElementBytes;
    // Transposed V: for each dimension j, that dimension of cell 0..cells-1, gathered part by part.
    for (let j = 0; j < layer.vWidth; j++) {
      let left = cells;
      for (const p of parts) {
        if (left === 0) break;
        const take = Math.min(left, p.cells);
        const col = p.v[l]!;
        const start = j * p.cells * el;
        o += col.copy(out, o, start, start + take * el);
        left -= take;
      }
    }
  }
  for (let s = 1; s < streams; s++) o = out.writeUInt32LE(0, o);
  if (o !== size) throw new KvbridgeError("INTERNAL", `assembled sequence state is ${o} bytes, computed ${size}`);
  return out;
}

function copyRows(out: Buffer, o: number, parts: readonly StatePart[], cells: number, rowBytes: number, pick: (p: StatePart) => Buffer): number {
  let left = cells;
  for (const p of parts) {
    if (left === 0) break;
    const take = Math.min(left, p.cells);
    o += pick(p).copy(out, o, 0, take * rowBytes);
    left -= take;
  }
  return o;
}

function writeU64(buf: Buffer, v: number, o: number): number {
  return buf.writeBigUInt64LE(BigInt(v), o);
}

function incompatible(what: string): KvbridgeError {
  return new KvbridgeError("INCOMPATIBLE", what);
}

/** Bounds-checked little-endian reader: a truncated state is INCOMPATIBLE, never an out-of-range read. */
class Reader {
  private o = 0;
  constructor(private readonly buf: Buffer) {}
  private need(n: number, what: string): void {
    if (this.o + n > this.buf.length) {
      throw incompatible(`sequence state truncated reading ${what} at byte ${this.o} (${this.buf.length} bytes in all)`);
    }
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.o);
    this.o += 4;
    return v;
  }
  i32(what: string): number {
    this.need(4, what);
    const v = this.buf.readInt32LE(this.o);
    this.o += 4;
    return v;
  }
  u64(what: string): number {
    this.need(8, what);
    const v = this.buf.readBigUInt64LE(this.o);
    this.o += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw incompatible(`${what} ${v} is out of range`);
    return Number(v);
  }
  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.o, this.o + n);
    this.o += n;
    return b;
  }
  remaining(): number {
    return this.buf.length - this.o;
  }
}
