// The native pools (libc mmap and UCX-allocated): alignment, zeroing, locking, zero-copy views,
// bounds, idempotent close, the mlock refusal message, allocatePoolMemory's choices, and each pool's
// kind saying what its memory is.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { loadKoffi } from "../../native-bindings/koffi/load-koffi.js";
import { isKvbridgeError } from "../../src/errors/kvbridge-error.js";
import { allocateMappedPool, allocatePoolMemory, type NativePoolMemory } from "../../src/memory/mapped-pool.js";
import { acquireUcxContext } from "../../native-bindings/ucx/ucx-context.js";
import { allocateUcxPool, registerPool } from "../../src/memory/ucx-pool.js";
import { ucxAvailability } from "../../src/transport/ucx/index.js";
import { repoRoot } from "../support/processes.js";

const koffi = (() => {
  const k = loadKoffi();
  if (!k.ok) throw new Error(k.reason);
  return k.koffi;
})();
const ucx = ucxAvailability().available;

/** Locked memory of this process in KiB, from /proc/self/status. */
function vmLckKiB(): number {
  const m = /VmLck:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) : NaN;
}

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    return isKvbridgeError(err) ? err.code : "not a KvbridgeError";
  }
}

function checkRegion(pool: NativePoolMemory, slots: number, slotBytes: number): void {
  expect(pool.address % 4096n).toBe(0n);
  expect(pool.mappedBytes % 4096).toBe(0);
  expect(pool.mappedBytes).toBeGreaterThanOrEqual(slots * slotBytes);
  expect(pool.bytes.length).toBe(slots * slotBytes);
  expect(pool.bytes.every((b) => b === 0)).toBe(true);
  // Zero-copy: the JavaScript view is the native region itself.
  expect(koffi.address(pool.bytes)).toBe(pool.address);
  const view = pool.slotView(3, 10);
  view.fill(0xab);
  expect(koffi.address(view)).toBe(pool.address + 3n * BigInt(slotBytes));
  expect(koffi.decode(pool.address + 3n * BigInt(slotBytes) + 9n, "uint8_t")).toBe(0xab);
  expect(pool.bytes[3 * slotBytes + 10]).toBe(0);
}

describe("allocateMappedPool (libc mmap)", () => {
  test("maps a page-aligned zeroed region whose slot views write through to native memory without copies", () => {
    const pool = allocateMappedPool({ slots: 8, slotBytes: 10_000, lock: "auto" });
    try {
      expect(pool.kind).toBe("mmap");
      checkRegion(pool, 8, 10_000);
      expect(pool.mappedBytes).toBe(81_920);
    } finally {
      pool.close();
    }
  });

  test("lock: true pins the pages (VmLck grows by the mapping) and close unpins and unmaps once", () => {
    const before = vmLckKiB();
    const pool = allocateMappedPool({ slots: 16, slotBytes: 1 << 20, lock: true });
    expect(pool.locked).toBe(true);
    expect(pool.lockWarning).toBeNull();
    expect(vmLckKiB() - before).toBe(16 * 1024);
    pool.close();
    pool.close();
    expect(vmLckKiB()).toBe(before);
    expect(codeOf(() => pool.bytes)).toBe("FAILED_PRECONDITION");
    expect(codeOf(() => pool.slotView(0))).toBe("FAILED_PRECONDITION");
  });

  test("lock: false leaves the pages unlocked", () => {
    const before = vmLckKiB();
    const pool = allocateMappedPool({ slots: 4, slotBytes: 1 << 20, lock: false });
    expect(pool.locked).toBe(false);
    expect(vmLckKiB()).toBe(before);
    pool.close();
  });

  test("bad geometry and out-of-range slot views are refused with INVALID_ARGUMENT", () => {
    expect(codeOf(() => allocateMappedPool({ slots: 0, slotBytes: 4096, lock: false }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => allocateMappedPool({ slots: 4, slotBytes: 1.5, lock: false }))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => allocateMappedPool({ slots: 2 ** 20, slotBytes: 2 ** 13, lock: false }))).toBe("INVALID_ARGUMENT");
    const pool = allocateMappedPool({ slots: 4, slotBytes: 4096, lock: false });
    try {
      expect(codeOf(() => pool.slotView(4))).toBe("INVALID_ARGUMENT");
      expect(codeOf(() => pool.slotView(-1))).toBe("INVALID_ARGUMENT");
      expect(codeOf(() => pool.slotView(0, 4097))).toBe("INVALID_ARGUMENT");
      expect(pool.slotView(3).length).toBe(4096);
    } finally {
      pool.close();
    }
  });
});

describe.skipIf(!ucx)("allocateUcxPool (needs libucp)", () => {
  test("UCX allocates a page-aligned zeroed locked region of kind ucx, registered for the data plane until close", () => {
    const before = vmLckKiB();
    const pool = allocateUcxPool({ slots: 8, slotBytes: 1 << 20, lock: true });
    expect(pool.kind).toBe("ucx");
    expect(pool.locked).toBe(true);
    expect(vmLckKiB() - before).toBeGreaterThanOrEqual(8 * 1024);
    checkRegion(pool, 8, 1 << 20);
    expect(pool.registration).not.toBeNull();
    pool.close();
    pool.close();
    expect(pool.registration).toBeNull();
    expect(vmLckKiB()).toBe(before);
  });

  test("registering a UCX pool in its own context reuses its registration; another context, or an mmap pool, gets one of its own", () => {
    const pool = allocateUcxPool({ slots: 2, slotBytes: 4096, lock: false });
    const mapped = allocateMappedPool({ slots: 2, slotBytes: 4096, lock: false });
    const same = acquireUcxContext({});
    const other = acquireUcxContext({ ucxConfig: { TLS: "tcp,self" } });
    if (!same.ok || !other.ok) throw new Error("UCX context unavailable");
    try {
      const reused = registerPool(pool, same.lease);
      expect(reused.ucxAllocated).toBe(true);
      expect(reused.memh).toBe(pool.registration!.memh);
      const fresh = registerPool(pool, other.lease);
      expect(fresh.ucxAllocated).toBe(false);
      expect(fresh.memh).not.toBe(pool.registration!.memh);
      const ofMapped = registerPool(mapped, same.lease);
      expect(ofMapped.ucxAllocated).toBe(false);
      for (const r of [reused, fresh, ofMapped]) {
        r.release();
        r.release();
      }
    } finally {
      same.lease.release();
      other.lease.release();
      pool.close();
      mapped.close();
    }
  });
});

describe("allocatePoolMemory", () => {
  test("picks the allocator asked for, and in auto mode prefers UCX's memory when libucp loads", () => {
    const heap = allocatePoolMemory({ slots: 2, slotBytes: 4096, lock: "auto", allocator: "heap" });
    expect(heap.memory.kind).toBe("heap");
    heap.memory.close();
    const mapped = allocatePoolMemory({ slots: 2, slotBytes: 4096, lock: "auto", allocator: "mmap" });
    expect(mapped.memory.kind).toBe("mmap");
    mapped.memory.close();
    const auto = allocatePoolMemory({ slots: 2, slotBytes: 4096, lock: "auto" });
    expect(auto.memory.kind).toBe(ucx ? "ucx" : "mmap");
    auto.memory.close();
  });

  test("auto mode without a usable libucp falls back to the libc pool", () => {
    const auto = allocatePoolMemory({ slots: 2, slotBytes: 4096, lock: "auto", ucx: { libraryPath: "/nonexistent/libucp.so.0" } });
    expect(auto.memory.kind).toBe("mmap");
    expect(auto.warning).toBeNull();
    auto.memory.close();
    expect(codeOf(() => allocatePoolMemory({ slots: 2, slotBytes: 4096, lock: "auto", allocator: "ucx", ucx: { libraryPath: "/nonexistent/libucp.so.0" } }))).toBe(
      "UNAVAILABLE",
    );
  });
});

function canDropMemlock(): boolean {
  try {
    execFileSync("prlimit", ["--version"], { stdio: "ignore" });
    execFileSync("setpriv", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!canDropMemlock())("mlock refused (needs prlimit and setpriv to drop RLIMIT_MEMLOCK and CAP_IPC_LOCK)", () => {
  test("lock: true fails with RESOURCE_EXHAUSTED naming RLIMIT_MEMLOCK and the fix; lock: auto serves unlocked with that warning", () => {
    // The probe runs in a child whose memlock limit is 64 KiB and which cannot bypass it.
    const out = execFileSync(
      "prlimit",
      ["--memlock=65536:65536", "setpriv", "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock", process.execPath, "--import", "tsx", "test/support/ucx-mlock-probe.ts", String(64 << 20)],
      { encoding: "utf8", cwd: repoRoot },
    );
    const line = out.split("\n").find((l) => l.startsWith("UCX_MLOCK "));
    expect(line, out).toBeDefined();
    const r = JSON.parse(line!.slice("UCX_MLOCK ".length)) as Record<string, { ok: boolean; code?: string; message?: string; locked?: boolean; lockWarning?: string } | null>;
    const cases = ucx ? (["mmap", "ucx"] as const) : (["mmap"] as const);
    for (const kind of cases) {
      const locked = r[`${kind}Locked`]!;
      expect(locked.ok).toBe(false);
      expect(locked.code).toBe("RESOURCE_EXHAUSTED");
      expect(locked.message).toContain("RLIMIT_MEMLOCK is 65536 bytes");
      expect(locked.message).toContain("ulimit -l");
      expect(locked.message).toContain("memlock");
      const auto = r[`${kind}Auto`]!;
      expect(auto.ok).toBe(true);
      expect(auto.locked).toBe(false);
      expect(auto.lockWarning).toContain("RLIMIT_MEMLOCK");
    }
  });
});
