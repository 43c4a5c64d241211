// The sequence state written from views: the pieces (sequence-state-pieces.ts) put end to end are
// byte for byte assembleSequenceState's buffer for any layout, chunk boundaries and stream count,
// and the vectored writer (vectored-write.ts) puts them in a real file whole, whatever its batch
// limits, continuing after short writes and refusing a write that makes no progress.
import { randomBytes } from "node:crypto";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { assembleSequenceState, type KvStateLayout, type StatePart } from "../../src/engine/kv-state-layout.js";
import { GATHER_BLOCK_BYTES, GatherBlocks, sequenceStateBytes, sequenceStatePieces } from "../../src/engine/sequence-state-pieces.js";
import { writeVectored, type VectoredSink } from "../../src/engine/vectored-write.js";

interface Case {
  layout: KvStateLayout;
  parts: StatePart[];
  tokens: number[];
  streams: number;
}

function layoutOf(layers: number, kRow: number, vWidth: number, vTrans: boolean): KvStateLayout {
  return {
    stateVersion: 3,
    vTransposed: vTrans,
    layers: Array.from({ length: layers }, (_, i) => ({
      kType: 1,
      kRowBytes: kRow,
      vType: i % 2 === 0 ? 1 : 0,
      vElementBytes: vTrans ? 2 : 0,
      vWidth: vTrans ? vWidth : 0,
      vCellBytes: vWidth * 2,
    })),
  };
}

/** Parts of random bytes, `sizes` cells each, as decodeChunk hands them out (views into one buffer). */
function partsOf(layout: KvStateLayout, sizes: number[]): StatePart[] {
  return sizes.map((cells) => {
    const whole = randomBytes(layout.layers.reduce((a, l) => a + (l.kRowBytes + l.vCellBytes) * cells, 0) + 16);
    let o = 16; // not at offset 0 of their buffer, like a chunk's payload
    const k = layout.layers.map((l) => whole.subarray(o, (o += l.kRowBytes * cells)));
    const v = layout.layers.map((l) => whole.subarray(o, (o += l.vCellBytes * cells)));
    return { cells, k, v };
  });
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    layers: fc.integer({ min: 1, max: 4 }),
    kRow: fc.integer({ min: 1, max: 40 }).map((n) => n * 2),
    vWidth: fc.integer({ min: 1, max: 48 }),
    vTrans: fc.boolean(),
    sizes: fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 9 }),
    cut: fc.nat(),
    streams: fc.integer({ min: 1, max: 4 }),
  })
  .map((r) => {
    const layout = layoutOf(r.layers, r.kRow, r.vWidth, r.vTrans);
    const available = r.sizes.reduce((a, b) => a + b, 0);
    const cells = 1 + (r.cut % available); // any cut, in the last part or before it
    return { layout, parts: partsOf(layout, r.sizes), tokens: Array.from({ length: cells }, (_, i) => (i * 7919) % 32000), streams: r.streams };
  });

describe("sequenceStatePieces", () => {
  it("end to end equal assembleSequenceState for any layout, chunk boundaries, cut and stream count", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const pieces = [...sequenceStatePieces(c.layout, c.tokens, c.parts, c.streams)];
        const joined = Buffer.concat(pieces);
        expect(joined.equals(assembleSequenceState(c.layout, c.tokens, c.parts, c.streams))).toBe(true);
        expect(joined.length).toBe(sequenceStateBytes(c.layout, c.tokens.length, c.streams));
      }),
      { numRuns: 300 },
    );
  });

  it("K rows are views of the parts (no copy); transposed V comes in blocks of at most GATHER_BLOCK_BYTES", () => {
    const layout = layoutOf(2, 256, 128, true);
    const parts = partsOf(layout, [128, 128, 128, 100]);
    const tokens = Array.from({ length: 480 }, (_, i) => i);
    const pieces = [...sequenceStatePieces(layout, tokens, parts)];
    for (const p of parts) expect(pieces.some((x) => x.buffer === p.k[0]!.buffer && x.byteOffset === p.k[0]!.byteOffset)).toBe(true);
    expect(Math.max(...pieces.map((x) => x.length))).toBeLessThanOrEqual(Math.max(GATHER_BLOCK_BYTES, 256 * 128));
  });

  it("refuses more cells than the parts hold and a bad stream count", () => {
    const layout = layoutOf(1, 4, 2, false);
    const parts = partsOf(layout, [3]);
    expect(() => [...sequenceStatePieces(layout, [1, 2, 3, 4], parts)]).toThrow(KvbridgeError);
    expect(() => [...sequenceStatePieces(layout, [1], parts, 0)]).toThrow(KvbridgeError);
  });
});

describe("writeVectored into a real file", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "kvbridge-vw-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A real file whose writev takes at most `most` bytes per call (a short write, as the kernel may do). */
  async function shortWriting(file: string, most: number): Promise<{ sink: VectoredSink; calls: () => number; close: () => Promise<void> }> {
    const handle = await open(file, "w");
    let calls = 0;
    const sink: VectoredSink = {
      writev: async (buffers, position) => {
        calls++;
        const take: Buffer[] = [];
        let room = most;
        for (const b of buffers as Buffer[]) {
          if (room === 0) break;
          const piece = b.subarray(0, Math.min(room, b.length));
          take.push(piece);
          room -= piece.length;
        }
        return handle.writev(take, position ?? undefined);
      },
    };
    return { sink, calls: () => calls, close: () => handle.close() };
  }

  it("writes every piece in order for any batch limits (bytes, buffers, time slice)", async () => {
    await fc.assert(
      fc.asyncProperty(
        caseArb,
        fc.record({ batchBytes: fc.integer({ min: 1, max: 4096 }), batchBuffers: fc.integer({ min: 1, max: 64 }), sliceMs: fc.constantFrom(0, 2, 1000) }),
        async (c, limits) => {
          const file = path.join(dir, "state.ggsq");
          const handle = await open(file, "w");
          let written: number;
          try {
            written = await writeVectored(handle, sequenceStatePieces(c.layout, c.tokens, c.parts, c.streams), limits);
          } finally {
            await handle.close();
          }
          const want = assembleSequenceState(c.layout, c.tokens, c.parts, c.streams);
          expect(written).toBe(want.length);
          expect((await readFile(file)).equals(want)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("gather blocks handed back after each batch are reused: a few blocks for a state of many, same bytes", async () => {
    const layout = layoutOf(2, 64, 128, true);
    const parts = partsOf(layout, Array.from({ length: 32 }, () => 128)); // 4096 cells: 1 MiB of V per layer
    const tokens = Array.from({ length: 4095 }, (_, i) => i % 1000);
    const file = path.join(dir, "reuse.ggsq");
    const blocks = new GatherBlocks();
    const used = new Set<ArrayBufferLike>();
    const handle = await open(file, "w");
    try {
      await writeVectored(handle, sequenceStatePieces(layout, tokens, parts, 1, blocks), {
        batchBytes: 2 * GATHER_BLOCK_BYTES,
        onWritten: (written) => {
          for (const p of written) if (p.buffer.byteLength === GATHER_BLOCK_BYTES) used.add(p.buffer);
          blocks.written(written);
        },
      });
    } finally {
      await handle.close();
    }
    expect((await readFile(file)).equals(assembleSequenceState(layout, tokens, parts))).toBe(true);
    const gathered = (2 * 128 * 4095 * 2) / GATHER_BLOCK_BYTES; // V bytes in blocks
    expect(gathered).toBeGreaterThan(30);
    expect(used.size).toBeGreaterThan(0);
    expect(used.size).toBeLessThanOrEqual(3);
  });

  it("continues after short writes, from the first byte not written, across buffer boundaries", async () => {
    const layout = layoutOf(3, 64, 24, true);
    const parts = partsOf(layout, [16, 16, 9]);
    const tokens = Array.from({ length: 40 }, (_, i) => i + 5);
    const want = assembleSequenceState(layout, tokens, parts, 2);
    for (const most of [1, 7, 100, 4093]) {
      const file = path.join(dir, `short-${most}.ggsq`);
      const w = await shortWriting(file, most);
      try {
        expect(await writeVectored(w.sink, sequenceStatePieces(layout, tokens, parts, 2), { batchBytes: 5000 })).toBe(want.length);
      } finally {
        await w.close();
      }
      expect((await readFile(file)).equals(want)).toBe(true);
      expect(w.calls()).toBeGreaterThanOrEqual(Math.ceil(want.length / most));
    }
  });

  it("fails, instead of looping, when a write makes no progress", async () => {
    const stuck: VectoredSink = { writev: async () => ({ bytesWritten: 0 }) };
    await expect(writeVectored(stuck, [Buffer.from("abc")])).rejects.toMatchObject({ code: "INTERNAL" });
  });

  it("stops between batches once its signal is aborted", async () => {
    const file = path.join(dir, "aborted.ggsq");
    const handle = await open(file, "w");
    const ac = new AbortController();
    const sink: VectoredSink = {
      writev: async (buffers, position) => {
        const r = await handle.writev(buffers, position ?? undefined);
        ac.abort(new KvbridgeError("CANCELLED", "stop"));
        return r;
      },
    };
    try {
      await expect(writeVectored(sink, [Buffer.alloc(10), Buffer.alloc(10), Buffer.alloc(10)], { batchBuffers: 1, signal: ac.signal })).rejects.toMatchObject({ code: "CANCELLED" });
    } finally {
      await handle.close();
    }
    expect((await readFile(file)).length).toBe(10);
  });
});
