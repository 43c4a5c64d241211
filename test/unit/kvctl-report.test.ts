// kvctl's pure parts: units, tables, node addresses, exit codes, and the status report built from
// known Inspect answers (pool states adding up, dedup rate, transfer rate across samples).
import { describe, expect, it } from "vitest";
import { EXIT, exitCodeFor } from "../../src/cli/kvctl/exit-codes.js";
import { formatBytes, formatDuration, formatPercent, formatRate } from "../../src/cli/kvctl/human-units.js";
import { keyRow, KEY_COLUMNS } from "../../src/cli/kvctl/keys-command.js";
import { resolveNodes, singleNode } from "../../src/cli/kvctl/node-targets.js";
import { requestRow, sortRequests } from "../../src/cli/kvctl/requests-command.js";
import { statusExitCode } from "../../src/cli/kvctl/status-command.js";
import { buildStatus, failureReport, renderStatus } from "../../src/cli/kvctl/status-report.js";
import { renderPairs, renderTable } from "../../src/cli/kvctl/table.js";
import { renderWatchFrame } from "../../src/cli/kvctl/watch-command.js";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import type { RequestInfo__Output } from "../../src/wire/generated/kvbridge/v1/RequestInfo.js";
import type { Stats__Output } from "../../src/wire/generated/kvbridge/v1/Stats.js";

function stats(over: Partial<Stats__Output> = {}): Stats__Output {
  return {
    nodeId: "decode-a", role: "decode", version: "0.1.0", protocolVersion: 1, generation: 77, transports: ["ucx", "tcp"],
    slotBytes: 1024, slotsTotal: 10, slotsFree: 5, slotsWriting: 2, slotsReady: 2, slotsQuarantined: 1, slotsReserved: 1,
    entries: 4, activeRequests: 2, dedupHits: 3, dedupMisses: 1, bytesReceived: 10_000, leasesExpired: 1,
    requestsCommitted: 6, requestsAborted: 2, evictions: 0, fingerprint: "", serving: true, activeGenerations: 0, models: [], pushesInFlight: 0, transportsNotOffered: [], capabilities: [], ...over,
  };
}

function request(over: Partial<RequestInfo__Output>): RequestInfo__Output {
  return { requestId: "r", phase: "allocating", keysWritten: 1, keysDeduped: 0, keysPending: 1, bytes: 0, ageMs: 100, leaseLeftMs: 5_000, peer: "127.0.0.1:1", kind: "kv", model: "", promptTokens: 0, tokensGenerated: 0, chunks: 0, ...over };
}

describe("human units", () => {
  it("formats bytes in binary units, durations in the largest short unit, rates and percentages", () => {
    expect([0, 1000, 1536, 1024 ** 2, 256 * 1024 ** 2, 1.5 * 1024 ** 3].map(formatBytes)).toEqual(["0 B", "1000 B", "1.5 KiB", "1 MiB", "256 MiB", "1.5 GiB"]);
    expect(formatBytes(-1)).toBe("-");
    expect([950, 1_234, 12_300, 125_000, 7_500_000, 90_000_000].map(formatDuration)).toEqual(["950ms", "1.23s", "12.3s", "2m05s", "2h05m", "1d01h"]);
    expect(formatDuration(-5)).toBe("expired");
    expect(formatRate(null)).toBe("-");
    expect(formatRate(3 * 1024 ** 2)).toBe("3 MiB/s");
    expect(formatPercent(null)).toBe("-");
    expect(formatPercent(0.375)).toBe("37.5%");
  });
});

describe("tables", () => {
  it("aligns columns, right-aligns numbers, never truncates a cell", () => {
    const long = "k".repeat(70);
    const out = renderTable(
      [
        { header: "KEY", value: (r: { k: string; n: number }) => r.k },
        { header: "N", value: (r) => String(r.n), align: "right" },
      ],
      [{ k: long, n: 5 }, { k: "a", n: 12345 }],
    );
    expect(out).toBe(`KEY${" ".repeat(67)}      N\n${long}      5\na${" ".repeat(69)}  12345\n`);
    expect(renderPairs([["a", "1"], ["long", "2"]])).toBe("a:    1\nlong: 2\n");
  });

  it("shows at most three pinning requests, then a count", () => {
    const row = keyRow({ key: "k", state: "ready", refcount: 5, pinnedBy: ["a", "b", "c", "d", "e"], slot: 3, size: 10, ageMs: 1, leaseLeftMs: -1, owner: "" });
    expect(row).toMatchObject({ slot: 3, lease_left_ms: null, owner: null });
    const cells = KEY_COLUMNS.map((c) => c.value(row));
    expect(cells).toEqual(["k", "READY", "5", "a,b,c +2", "3", "10 B", "1ms", "-"]);
    const failed = keyRow({ key: "f", state: "failed", refcount: 1, pinnedBy: ["x"], slot: -1, size: 10, ageMs: 1, leaseLeftMs: -1, owner: "" });
    expect(KEY_COLUMNS[4]!.value(failed)).toBe("-");
  });
});

describe("node addresses", () => {
  it("takes ADDR arguments, then --node flags, else KVBRIDGE_NODES; de-duplicates; maps 0.0.0.0 to loopback", () => {
    expect(resolveNodes(["10.0.0.1:1"], ["10.0.0.2:2", "10.0.0.1:1"], "ignored:3")).toEqual(["10.0.0.1:1", "10.0.0.2:2"]);
    expect(resolveNodes([], undefined, "a:1, b:2 c:3")).toEqual(["a:1", "b:2", "c:3"]);
    expect(resolveNodes([":50061"], undefined, undefined)).toEqual(["127.0.0.1:50061"]);
    expect(resolveNodes(["[::1]:5"], undefined, undefined)).toEqual(["[::1]:5"]);
  });

  it("refuses no address and malformed ones with a message that says what to type", () => {
    expect(() => resolveNodes([], undefined, undefined)).toThrow(/KVBRIDGE_NODES=host:port/);
    expect(() => resolveNodes(["nope"], undefined, undefined)).toThrow(/not HOST:PORT/);
    expect(() => singleNode(["a:1", "b:2"], "evict")).toThrow(/exactly one node/);
    expect(singleNode(["a:1"], "evict")).toBe("a:1");
  });
});

describe("exit codes", () => {
  it("tell unreachable, denied, not found and refused-by-state apart", () => {
    expect(exitCodeFor("UNAVAILABLE")).toBe(EXIT.UNREACHABLE);
    expect(exitCodeFor("DEADLINE_EXCEEDED")).toBe(EXIT.UNREACHABLE);
    expect(exitCodeFor("PERMISSION_DENIED")).toBe(EXIT.DENIED);
    expect(exitCodeFor("NOT_FOUND")).toBe(EXIT.NOT_FOUND);
    expect(exitCodeFor("FAILED_PRECONDITION")).toBe(EXIT.REFUSED);
    expect(exitCodeFor("INVALID_ARGUMENT")).toBe(EXIT.USAGE);
    expect(exitCodeFor("INTERNAL")).toBe(EXIT.ERROR);
    expect(new Set(Object.values(EXIT)).size).toBe(Object.keys(EXIT).length);
  });
});

describe("status report", () => {
  it("splits reserved slots out of free so the states add up, in slots and in bytes", () => {
    const r = buildStatus("n:1", { stats: stats(), at: 1000 }, "SERVING", [], { nearExpiryMs: 2000 });
    expect(r.pool.slots).toEqual({ total: 10, free: 4, reserved: 1, writing: 2, ready: 2, quarantined: 1 });
    const { total, ...states } = r.pool.slots;
    expect(Object.values(states).reduce((a, b) => a + b, 0)).toBe(total);
    expect(r.pool.bytes.ready).toBe(2048);
    expect(r.dedup).toEqual({ hits: 3, misses: 1, hit_rate: 0.75 });
    expect(r.transfer).toEqual({ bytes_received: 10_000, rate_bytes_per_second: null, sample_ms: null });
  });

  it("measures the transfer rate between two samples of the same process only", () => {
    const prev = { stats: stats({ bytesReceived: 4_000 }), at: 1_000 };
    const r = buildStatus("n:1", { stats: stats(), at: 1_500 }, "SERVING", [], { nearExpiryMs: 2000, previous: prev });
    expect(r.transfer.rate_bytes_per_second).toBe(12_000);
    expect(r.transfer.sample_ms).toBe(500);
    const restarted = buildStatus("n:1", { stats: stats({ generation: 78 }), at: 1_500 }, "SERVING", [], { nearExpiryMs: 2000, previous: prev });
    expect(restarted.transfer.rate_bytes_per_second).toBeNull();
  });

  it("counts only allocating requests whose lease ends within the threshold as near expiry", () => {
    const reqs = [
      request({ requestId: "a", leaseLeftMs: 500 }),
      request({ requestId: "b", leaseLeftMs: 5_000 }),
      request({ requestId: "c", phase: "committed", leaseLeftMs: 100 }),
      request({ requestId: "d", leaseLeftMs: -10 }),
    ];
    expect(buildStatus("n:1", { stats: stats(), at: 1 }, "SERVING", reqs, { nearExpiryMs: 2000 }).leases_near_expiry).toBe(2);
  });

  it("renders a node block with identity, health, pool bytes, requests, dedup and transfer lines", () => {
    const r = buildStatus("n:1", { stats: stats(), at: 1_500 }, "NOT_SERVING", [], { nearExpiryMs: 2000, previous: { stats: stats({ bytesReceived: 0 }), at: 500 } });
    const text = renderStatus(r);
    expect(text.split("\n")[0]).toBe("n:1  decode-a  decode  v0.1.0  protocol 1  NOT_SERVING  ucx,tcp");
    expect(text).toContain("10 slots x 1 KiB = 10 KiB, 60.0% in use");
    expect(text).toContain("free 4 (4 KiB)  reserved 1 (1 KiB)  writing 2 (2 KiB)  ready 2 (2 KiB)  quarantined 1 (1 KiB)");
    expect(text).toContain("3 hits / 1 misses (75.0% hit rate)");
    expect(text).toContain("9.8 KiB received, 9.8 KiB/s over the last 1.00s");
    const failed = renderStatus(failureReport("m:2", new KvbridgeError("UNAVAILABLE", "node m:2 did not answer")));
    expect(failed).toBe("m:2  UNREACHABLE\n  error        UNAVAILABLE: node m:2 did not answer\n");
  });

  it("exits 0 when every node serves, 3 when one is unreachable, 7 when one is not serving", () => {
    const ok = buildStatus("n:1", { stats: stats(), at: 1 }, "SERVING", [], { nearExpiryMs: 1 });
    const draining = { ...ok, health: "NOT_SERVING" as const };
    const down = failureReport("m:2", new KvbridgeError("UNAVAILABLE", "x"));
    expect(statusExitCode([ok])).toBe(0);
    expect(statusExitCode([ok, draining])).toBe(7);
    expect(statusExitCode([draining, down])).toBe(3);
  });
});

describe("requests and watch frames", () => {
  it("lists the oldest request first and shows a committed request's hold", () => {
    const rows = sortRequests([request({ requestId: "young", ageMs: 5 }), request({ requestId: "old", ageMs: 50_000, phase: "committed", leaseLeftMs: 30_000 })].map(requestRow));
    expect(rows.map((r) => r.request_id)).toEqual(["old", "young"]);
    const frame = renderWatchFrame("title", [{ report: buildStatus("n:1", { stats: stats(), at: 1 }, "SERVING", [], { nearExpiryMs: 1 }), requests: [request({ requestId: "young", ageMs: 5 }), request({ requestId: "old", ageMs: 50_000, phase: "committed", leaseLeftMs: 30_000 })] }], 1);
    expect(frame.startsWith("title\n\nn:1  decode-a")).toBe(true);
    expect(frame).toMatch(/\n {2}REQUEST +PHASE/);
    expect(frame).toMatch(/\n {2}old +COMMITTED .* hold 30\.0s/);
    expect(frame).not.toMatch(/young +ALLOCATING/);
    expect(frame).toContain("... 1 more (kvctl requests n:1)");
  });
});
