// UCX's absence is a value, not a crash: availability says why, every UCX entry point throws
// UNAVAILABLE with that reason, and the pool falls back to memory that TCP can serve.
import { describe, expect, test } from "vitest";
import { ucxAvailability } from "../../src/transport/ucx/index.js";
import { spawnScript } from "../support/processes.js";

interface Probe {
  availability: { available: boolean; reason?: string; version?: string };
  pool: { kind: string; allocator: string | null; warning: string | null };
  sender: { ok: boolean; code?: string; message?: string };
  receiver: { ok: boolean; code?: string; message?: string };
  explicitUcxPool: { ok: boolean; code?: string; message?: string };
}

async function probe(env: NodeJS.ProcessEnv): Promise<Probe> {
  const p = spawnScript("test/support/ucx-availability-probe.ts", [], env);
  const line = await p.waitForLine(/^UCX_PROBE /, 60_000);
  // Everything it made closed cleanly (no crash, no hang) before it reports done.
  await p.waitForLine(/^UCX_PROBE_DONE$/, 30_000);
  await p.stop(10_000);
  return JSON.parse(line.slice("UCX_PROBE ".length)) as Probe;
}

describe("UCX availability", () => {
  test("a missing libucp (KVBRIDGE_LIBUCP=/nonexistent/libucp.so.0) gives availability false with the reason, UNAVAILABLE from sender and receiver, and a libc pool", async () => {
    const r = await probe({ KVBRIDGE_LIBUCP: "/nonexistent/libucp.so.0" });
    expect(r.availability.available).toBe(false);
    expect(r.availability.reason).toContain("/nonexistent/libucp.so.0");
    expect(r.availability.reason).toContain("KVBRIDGE_LIBUCP");
    for (const entry of [r.sender, r.receiver, r.explicitUcxPool]) {
      expect(entry.ok).toBe(false);
      expect(entry.code).toBe("UNAVAILABLE");
      expect(entry.message).toContain("/nonexistent/libucp.so.0");
    }
    expect(r.pool).toEqual({ kind: "mmap", allocator: "libc", warning: null });
  });

  test("a library that is not libucp is refused with the missing symbol, not loaded half-way", () => {
    const a = ucxAvailability({ libraryPath: "libc.so.6" });
    expect(a.available).toBe(false);
    if (!a.available) expect(a.reason).toMatch(/libc\.so\.6 loaded but could not be bound: .*ucp_/);
  });

  test.skipIf(!ucxAvailability().available)("the installed libucp is reported with its version, and every entry point works (needs libucp)", async () => {
    const r = await probe({});
    expect(r.availability.available).toBe(true);
    expect(r.availability.version).toMatch(/^1\.\d+\.\d+$/);
    expect(r.sender.ok).toBe(true);
    expect(r.receiver.ok).toBe(true);
    expect(r.pool.allocator).toBe("ucx");
  });
});
