// Leases and quarantine on a real decode process: a Commit that comes after the lease is refused and
// the writes are released; Commits racing the lease expiry each get one consistent answer; a write
// that arrives after its allocation was aborted lands nowhere (TCP) or in a slot nobody gets before
// the grace period ends (UCX one-sided puts, which the receiver cannot refuse).
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ucxAvailability } from "../../src/transport/ucx/index.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { codeOf, settle } from "../support/fault-outcome.js";
import { RawTransferClient } from "../support/fault-raw-transfer.js";
import { atBaseline } from "../support/node-clients.js";

const LEASE_MS = 800;
const QUARANTINE_MS = 1_500;
const SLOTS = 16;
const ucx = ucxAvailability();
let decode: DecodeProcess;
let raw: RawTransferClient;

beforeAll(async () => {
  decode = await startDecodeProcess([
    "--lease-ms", String(LEASE_MS), "--quarantine-ms", String(QUARANTINE_MS), "--hold-ms", "5000", "--pool-slots", String(SLOTS), "--slot-bytes", "64KiB",
  ]);
  raw = new RawTransferClient(decode.grpc);
});

afterAll(async () => {
  await raw?.close();
  await decode?.proc.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

async function states(keys: string[]): Promise<Array<{ state: string; sha256: string }>> {
  const r = await raw.clients.inspect.checksumKeys({ keys }, { timeoutMs: 10_000 });
  return r.checksums;
}

async function expectBaseline(timeoutMs = QUARANTINE_MS + 5_000): Promise<void> {
  const s = await raw.clients.waitForStats(atBaseline, timeoutMs);
  expect(atBaseline(s)).toBe(true);
}

describe("a late Commit racing the lease", () => {
  it("a slow writer whose Commit comes after the lease is refused with FAILED_PRECONDITION; its bytes never become READY and the pool returns to baseline", async () => {
    const before = await raw.clients.stats();
    const keys = ["late-0", "late-1"];
    const data = keys.map(() => randomBytes(10_000));
    const a = await raw.alloc("late", keys, 10_000);
    await raw.write("tcp", a, data);
    // The writer stalls past its lease: no Renew, no Commit.
    await sleep(LEASE_MS + 300);
    const o = await settle(raw.commit("late"));
    expect(codeOf(o)).toBe("FAILED_PRECONDITION");
    expect(o.ok ? "" : o.message).toMatch(/lease expired/);
    // Asked again, the answer does not change into a success.
    expect(codeOf(await settle(raw.commit("late")))).toBe("FAILED_PRECONDITION");
    expect((await states(keys)).map((s) => s.state)).toEqual(["missing", "missing"]);
    const after = await raw.clients.stats();
    expect(Number(after.leasesExpired)).toBe(Number(before.leasesExpired) + 1);
    expect(Number(after.requestsCommitted)).toBe(Number(before.requestsCommitted));
    await expectBaseline();
  });

  it("a write that arrives after the lease is refused on the data plane", async () => {
    const a = await raw.alloc("late-write", ["late-write-0"], 5_000);
    await sleep(LEASE_MS + 300);
    const o = await settle(raw.write("tcp", a, [randomBytes(5_000)]));
    expect(codeOf(o)).toBe("FAILED_PRECONDITION");
    expect(o.ok ? "" : o.message).toMatch(/lease expired/);
    expect(codeOf(await settle(raw.commit("late-write")))).toBe("FAILED_PRECONDITION");
    expect((await states(["late-write-0"]))[0]!.state).toBe("missing");
    await expectBaseline();
  });

  it("Commits sent around the lease expiry each get one consistent answer: committed with every byte READY, or refused with nothing READY", async () => {
    const n = 12;
    const data = Array.from({ length: n }, () => randomBytes(4_000));
    const outcomes = await Promise.all(
      data.map(async (d, i) => {
        // The node starts the lease when the Alloc arrives, after t0.
        const t0 = performance.now();
        const a = await raw.alloc(`race-${i}`, [`race-${i}-0`], d.length);
        await raw.write("tcp", a, [d]);
        // Commits spread over [lease - 300, lease + 300) ms after t0.
        await sleep(Math.max(0, LEASE_MS - 300 + Math.floor((600 * i) / n) - (performance.now() - t0)));
        return settle(raw.commit(`race-${i}`));
      }),
    );
    const codes = outcomes.map(codeOf);
    for (const c of codes) expect(["OK", "FAILED_PRECONDITION"]).toContain(c);
    const sums = await states(data.map((_, i) => `race-${i}-0`));
    for (let i = 0; i < n; i++) {
      if (codes[i] === "OK") {
        expect(sums[i]).toEqual(expect.objectContaining({ state: "ready", sha256: sha(data[i]!) }));
        await raw.release(`race-${i}`);
      } else {
        expect(sums[i]!.state).toBe("missing");
      }
    }
    // The earliest Commit is well inside the lease, the latest well past it.
    expect(codes[0]).toBe("OK");
    expect(codes[n - 1]).toBe("FAILED_PRECONDITION");
    await expectBaseline();
  });
});

describe("quarantine: writes that arrive after their allocation was aborted", () => {
  it("over TCP a late frame is refused, and the aborted slots are not handed out again before the grace period", async () => {
    const keys = Array.from({ length: SLOTS }, (_, i) => `q-a-${i}`);
    const a = await raw.alloc("q-a", keys, 8_000);
    expect(a.slots).toHaveLength(SLOTS);
    await raw.abort("q-a");
    const abortedAt = performance.now();
    expect((await raw.clients.stats()).slotsQuarantined).toBe(SLOTS);
    // The late write: the request's own frame, with its own token, after the Abort.
    const late = await settle(raw.write("tcp", a, keys.map(() => Buffer.alloc(8_000, 0xee))));
    expect(codeOf(late)).toBe("NOT_FOUND");
    // Every slot is quarantined: a new request is refused, not given a slot a late write may hit.
    const early = await settle(raw.alloc("q-b", ["q-b-0"], 8_000));
    expect(codeOf(early)).toBe("RESOURCE_EXHAUSTED");
    expect(early.ok ? "" : early.message).toMatch(new RegExp(`${SLOTS} quarantined`));
    expect(performance.now() - abortedAt).toBeLessThan(QUARANTINE_MS);
    await sleep(QUARANTINE_MS - (performance.now() - abortedAt) + 100);
    const b = await raw.alloc("q-b", ["q-b-0"], 8_000);
    const mine = randomBytes(8_000);
    await raw.write("tcp", b, [mine]);
    await raw.commit("q-b");
    expect((await states(["q-b-0"]))[0]).toEqual(expect.objectContaining({ state: "ready", sha256: sha(mine) }));
    await raw.release("q-b");
    await expectBaseline();
  });

  it.skipIf(!ucx.available)("over UCX a late one-sided put lands in its quarantined slot, which nobody gets until the grace period ends", async () => {
    const keys = Array.from({ length: SLOTS }, (_, i) => `qu-a-${i}`);
    const a = await raw.alloc("qu-a", keys, 8_000);
    await raw.abort("qu-a");
    const abortedAt = performance.now();
    // UCX puts bypass the receiver's CPU: this one completes even though its request is gone.
    await raw.write("ucx", a, keys.map(() => Buffer.alloc(8_000, 0xee)));
    const early = await settle(raw.alloc("qu-b", ["qu-b-0"], 8_000));
    expect(codeOf(early)).toBe("RESOURCE_EXHAUSTED");
    expect(performance.now() - abortedAt).toBeLessThan(QUARANTINE_MS);
    await sleep(QUARANTINE_MS - (performance.now() - abortedAt) + 100);
    const b = await raw.alloc("qu-b", ["qu-b-0"], 8_000);
    const mine = randomBytes(8_000);
    await raw.write("ucx", b, [mine]);
    await raw.commit("qu-b");
    expect((await states(["qu-b-0"]))[0]).toEqual(expect.objectContaining({ state: "ready", sha256: sha(mine) }));
    await raw.release("qu-b");
    await expectBaseline();
  });
});
