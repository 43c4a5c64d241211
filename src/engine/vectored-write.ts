// Writing a series of buffers to a file with writev, in batches, without concatenating them. Each
// batch goes to the thread pool (FileHandle.writev), and the event loop is free between batches:
// the synchronous work per batch is producing its pieces and building the iovec list, bounded by
// bytes, buffer count and time (sliceMs). A short write (the kernel took fewer bytes than asked) is continued
// from where it stopped; a write that makes no progress fails instead of looping.

import { KvbridgeError } from "../errors/kvbridge-error.js";

/** What the writer needs of a file: node:fs/promises FileHandle has it. */
export interface VectoredSink {
  writev(buffers: NodeJS.ArrayBufferView[], position?: number | null): Promise<{ bytesWritten: number }>;
}

export interface VectoredWriteOptions {
  /** A batch is written once it holds this many bytes (default 4 MiB). */
  batchBytes?: number;
  /** ...or this many buffers (default 1024, Linux's IOV_MAX: one writev call per batch). */
  batchBuffers?: number;
  /**
   * A batch is also written once producing its pieces took this long (default 2 ms): however the
   * pieces are made, they never hold the event loop for much more than this.
   */
  sliceMs?: number;
  /** Called with each batch's pieces once they are written in full (their buffers may be reused). */
  onWritten?: (pieces: readonly Buffer[]) => void;
  /** Checked between batches: an aborted write stops with the signal's reason. */
  signal?: AbortSignal;
}

const DEFAULT_BATCH_BYTES = 4 << 20;
const DEFAULT_BATCH_BUFFERS = 1024;
const DEFAULT_SLICE_MS = 2;

/** Writes `pieces` in order from position 0; returns the bytes written. */
export async function writeVectored(sink: VectoredSink, pieces: Iterable<Buffer>, opts: VectoredWriteOptions = {}): Promise<number> {
  const batchBytes = opts.batchBytes ?? DEFAULT_BATCH_BYTES;
  const batchBuffers = opts.batchBuffers ?? DEFAULT_BATCH_BUFFERS;
  const sliceMs = opts.sliceMs ?? DEFAULT_SLICE_MS;
  let position = 0;
  let batch: Buffer[] = [];
  let pending = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const out = batch;
    batch = [];
    pending = 0;
    position = await writeAll(sink, out, position);
    opts.onWritten?.(out);
    opts.signal?.throwIfAborted();
  };
  let since = performance.now();
  for (const piece of pieces) {
    if (piece.length === 0) continue;
    batch.push(piece);
    pending += piece.length;
    if (pending >= batchBytes || batch.length >= batchBuffers || performance.now() - since >= sliceMs) {
      await flush();
      since = performance.now();
    }
  }
  await flush();
  return position;
}

/** One batch, in full: writev again from the first byte a short write left. Returns the new position. */
async function writeAll(sink: VectoredSink, buffers: Buffer[], position: number): Promise<number> {
  let left = buffers;
  let remaining = left.reduce((a, b) => a + b.length, 0);
  while (remaining > 0) {
    const { bytesWritten } = await sink.writev(left, position);
    if (!Number.isInteger(bytesWritten) || bytesWritten <= 0 || bytesWritten > remaining) {
      throw new KvbridgeError("INTERNAL", `writev wrote ${bytesWritten} of ${remaining} bytes at offset ${position}; giving up`);
    }
    position += bytesWritten;
    remaining -= bytesWritten;
    if (remaining === 0) break;
    let skip = bytesWritten;
    let i = 0;
    while (skip >= left[i]!.length) skip -= left[i++]!.length;
    left = [left[i]!.subarray(skip), ...left.slice(i + 1)];
  }
  return position;
}
