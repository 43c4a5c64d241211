// MappedTarget, the receiver's pool as mapped into a UCX sender: copies land at their offsets across
// view windows, an offset past the mapping is INVALID_ARGUMENT (never a fault), the mapping's length
// comes from /proc/self/maps, prefaulting populates the whole mapping without changing its bytes,
// and close() stops both.
import { randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { isKvbridgeError } from "../../src/errors/kvbridge-error.js";
import { allocateMappedPool } from "../../src/memory/mapped-pool.js";
import { loadUcx } from "../../native-bindings/ucx/ucx-library.js";
import { MappedTarget, mappingBytesFrom } from "../../src/transport/ucx/ucx-mapped-target.js";

const loaded = loadUcx();
const ucx = loaded.available ? loaded.ucx : null;

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    return isKvbridgeError(err) ? err.code : "not a KvbridgeError";
  }
}

describe.skipIf(ucx === null)("MappedTarget", () => {
  test("copies land at their offsets, also across view windows, and nothing past the mapping is written", () => {
    const pool = allocateMappedPool({ slots: 8, slotBytes: 64 * 1024, lock: false });
    try {
      expect(mappingBytesFrom(pool.address)).toBeGreaterThanOrEqual(pool.mappedBytes);
      // 100 KiB windows, so a 64 KiB write at 96 KiB straddles two of them.
      const t = new MappedTarget(ucx!, pool.address, pool.mappedBytes, 100 * 1024);
      const a = randomBytes(64 * 1024);
      const b = randomBytes(64 * 1024);
      t.copyIn(a, 0);
      t.copyIn(b, 96 * 1024);
      expect(pool.bytes.subarray(0, 64 * 1024).equals(a)).toBe(true);
      expect(pool.bytes.subarray(96 * 1024, 160 * 1024).equals(b)).toBe(true);
      expect(pool.bytes.subarray(64 * 1024, 96 * 1024).every((x) => x === 0)).toBe(true);
      expect(codeOf(() => t.copyIn(a, pool.mappedBytes - 1024))).toBe("INVALID_ARGUMENT");
      void t.close();
      expect(codeOf(() => t.copyIn(a, 0))).toBe("FAILED_PRECONDITION");
    } finally {
      pool.close();
    }
  });

  test("prefaulting populates the whole mapping in the background and leaves its bytes as they were", async () => {
    const pool = allocateMappedPool({ slots: 40, slotBytes: 4 << 20, lock: false });
    try {
      const marker = randomBytes(4096);
      marker.copy(pool.bytes, 100 << 20);
      const t = new MappedTarget(ucx!, pool.address, pool.mappedBytes);
      t.startPrefault();
      const deadline = Date.now() + 30_000;
      while (!t.prefault.done && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(t.prefault.done).toBe(true);
      // Kernels before 5.14 refuse MADV_POPULATE_WRITE: prefaulting then stops at once.
      expect([0, pool.mappedBytes]).toContain(t.prefault.bytes);
      expect(pool.bytes.subarray(100 << 20, (100 << 20) + 4096).equals(marker)).toBe(true);
      await t.close();
    } finally {
      pool.close();
    }
  });

  test("close() stops prefaulting and resolves once no madvise call runs on the mapping", async () => {
    const pool = allocateMappedPool({ slots: 64, slotBytes: 4 << 20, lock: false });
    try {
      const t = new MappedTarget(ucx!, pool.address, pool.mappedBytes);
      t.startPrefault();
      await t.close();
      const bytes = t.prefault.bytes;
      await new Promise((r) => setTimeout(r, 100));
      expect(t.prefault.bytes).toBe(bytes);
      expect(bytes).toBeLessThan(pool.mappedBytes);
    } finally {
      pool.close();
    }
  });
});
