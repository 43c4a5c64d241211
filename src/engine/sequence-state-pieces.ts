// A sequence state file image (llama.cpp "ggsq", layout in kv-state-layout.ts) as a series of
// pieces in file order: small header buffers, zero-copy views of the chunks' K rows (and V rows),
// and with transposed V (the engine's, flash attention off) small gathered blocks. Written one after
// the other they are byte for byte assembleSequenceState's buffer, without building it: a decode
// node writes them to the state file with writev (vectored-write.ts), the kernel copies the views
// in the thread pool, and no step copies the prompt's KV at once. Pieces are made lazily (a
// generator), so a consumer that awaits between batches bounds every synchronous step.

import { KvbridgeError } from "../errors/kvbridge-error.js";
import { STATE_SEQ_MAGIC, type KvStateLayout, type StatePart } from "./kv-state-layout.js";

const MAX_STREAMS = 4096;
/** Bytes of one gathered block of transposed V (one synchronous step of a few tens of microseconds). */
export const GATHER_BLOCK_BYTES = 64 << 10;

/** Bytes of the state file the pieces make (assembleSequenceState's length). */
export function sequenceStateBytes(layout: KvStateLayout, cells: number, streams = 1): number {
  let size = 4 * 3 + 4 * cells + 4 * 2 + 12 * cells + 4 * 2 + 4 * (streams - 1);
  for (const l of layout.layers) size += 4 + 8 + l.kRowBytes * cells + (layout.vTransposed ? 4 + 4 + 4 : 4 + 8) + l.vCellBytes * cells;
  return size;
}

/**
 * The pieces of the state holding `tokens` and the first tokens.length cells of `parts` (in token
 * order), loadable into a context with `streams` KV streams. Views alias the parts' buffers: the
 * parts must stay unchanged until the pieces are written.
 */
export function* sequenceStatePieces(layout: KvStateLayout, tokens: ArrayLike<number>, parts: readonly StatePart[], streams = 1, blocks: GatherBlocks = new GatherBlocks()): Generator<Buffer, void, undefined> {
  if (!Number.isInteger(streams) || streams < 1 || streams > MAX_STREAMS) throw new KvbridgeError("INTERNAL", `writing a state for ${streams} KV streams`);
  const cells = tokens.length;
  const available = parts.reduce((a, p) => a + p.cells, 0);
  if (available < cells) throw new KvbridgeError("INTERNAL", `writing ${cells} KV cells from parts holding only ${available}`);
  // magic, version, n_tokens, tokens, n_stream, cell_count, cells (pos, 1, seq 0), v_trans, n_layer
  const head = Buffer.alloc(4 * 3 + 4 * cells + 4 * 2 + 12 * cells + 4 * 2);
  const le = new DataView(head.buffer, head.byteOffset, head.length);
  le.setUint32(0, STATE_SEQ_MAGIC, true);
  le.setUint32(4, layout.stateVersion, true);
  le.setUint32(8, cells, true);
  for (let i = 0; i < cells; i++) le.setInt32(12 + 4 * i, tokens[i]!, true);
  let w = 3 + cells;
  le.setUint32(4 * w++, streams, true);
  le.setUint32(4 * w++, cells, true); // the first stream holds the cells, the others none (written last)
  for (let i = 0; i < cells; i++, w += 3) {
    le.setInt32(4 * w, i, true); // position
    le.setUint32(4 * w + 4, 1, true); // one sequence id, which llama.cpp replaces with the destination's
    // seq id 0: already zero
  }
  le.setUint32(4 * w++, layout.vTransposed ? 1 : 0, true);
  le.setUint32(4 * w++, layout.layers.length, true);
  if (4 * w !== head.length) throw new KvbridgeError("INTERNAL", `state header is ${4 * w} bytes, computed ${head.length}`);
  yield head;
  for (const [l, layer] of layout.layers.entries()) {
    const h = Buffer.alloc(12);
    h.writeInt32LE(layer.kType, 0);
    h.writeBigUInt64LE(BigInt(layer.kRowBytes), 4);
    yield h;
    yield* rows(parts, cells, layer.kRowBytes, (p) => p.k[l]!);
  }
  for (const [l, layer] of layout.layers.entries()) {
    const h = Buffer.alloc(12);
    h.writeInt32LE(layer.vType, 0);
    if (!layout.vTransposed) {
      h.writeBigUInt64LE(BigInt(layer.vCellBytes), 4);
      yield h;
      yield* rows(parts, cells, layer.vCellBytes, (p) => p.v[l]!);
      continue;
    }
    h.writeUInt32LE(layer.vElementBytes, 4);
    h.writeUInt32LE(layer.vWidth, 8);
    yield h;
    yield* transposedColumns(parts, cells, layer.vElementBytes, layer.vWidth, l, blocks);
  }
  if (streams > 1) yield Buffer.alloc(4 * (streams - 1)); // the other streams' cell counts: 0
}

function* rows(parts: readonly StatePart[], cells: number, rowBytes: number, pick: (p: StatePart) => Buffer): Generator<Buffer, void, undefined> {
  let left = cells;
  for (const p of parts) {
    if (left === 0) return;
    const take = Math.min(left, p.cells);
    if (take > 0) yield pick(p).subarray(0, take * rowBytes);
    left -= take;
  }
}

/**
 * Transposed V: for each dimension j, that dimension of cells 0..cells-1, part by part. A run is
 * one chunk's cells of one dimension (chunkTokens x 2 bytes: 256 bytes at the default), too short
 * to be worth an iovec each, so runs are gathered into blocks of about GATHER_BLOCK_BYTES.
 */
function* transposedColumns(parts: readonly StatePart[], cells: number, el: number, width: number, l: number, blocks: GatherBlocks): Generator<Buffer, void, undefined> {
  const columnBytes = cells * el;
  if (columnBytes === 0 || width === 0) return;
  const perBlock = Math.max(1, Math.floor(GATHER_BLOCK_BYTES / columnBytes));
  for (let j0 = 0; j0 < width; j0 += perBlock) {
    const j1 = Math.min(width, j0 + perBlock);
    const block = blocks.take((j1 - j0) * columnBytes);
    let o = 0;
    for (let j = j0; j < j1; j++) {
      let left = cells;
      for (const p of parts) {
        if (left === 0) break;
        const take = Math.min(left, p.cells);
        const start = j * p.cells * el;
        block.set(p.v[l]!.subarray(start, start + take * el), o); // set: a fraction of copy()'s cost on short runs
        o += take * el;
        left -= take;
      }
    }
    yield block;
  }
}

/**
 * Where gathered blocks come from. Blocks handed back with written() (their pieces are in the file)
 * serve the next gathers, so a writer that hands back each batch keeps at most about one batch of
 * blocks alive whatever the prompt's size, and allocates (and leaves to the GC) no more.
 */
export class GatherBlocks {
  private readonly free: ArrayBuffer[] = [];
  private readonly mine = new WeakSet<ArrayBufferLike>();

  /** A block of `bytes` (one of the reusable size when it fits, else a fresh buffer). */
  take(bytes: number): Buffer {
    if (bytes > GATHER_BLOCK_BYTES) return Buffer.allocUnsafe(bytes);
    let ab = this.free.pop();
    if (!ab) {
      ab = new ArrayBuffer(GATHER_BLOCK_BYTES);
      this.mine.add(ab);
    }
    return Buffer.from(ab, 0, bytes);
  }

  /** Pieces that are written: the blocks among them are free again. Each block is yielded once. */
  written(pieces: readonly Buffer[]): void {
    for (const p of pieces) if (this.mine.has(p.buffer)) this.free.push(p.buffer as ArrayBuffer);
  }
}
