// kvctl shows text that callers chose (request ids, keys, peers, node ids, error messages): no control
// character in it reaches the terminal raw, so a request id cannot clear the screen or forge a row.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keyRow, KEY_COLUMNS } from "../../src/cli/kvctl/keys-command.js";
import { REQUEST_COLUMNS, requestRow } from "../../src/cli/kvctl/requests-command.js";
import { buildStatus, failureReport, renderStatus } from "../../src/cli/kvctl/status-report.js";
import { renderPairs, renderTable } from "../../src/cli/kvctl/table.js";
import { printable, printableLines, terminalJson } from "../../src/cli/kvctl/terminal-text.js";
import { renderWatchFrame } from "../../src/cli/kvctl/watch-command.js";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import type { EntryInfo__Output } from "../../src/wire/generated/kvbridge/v1/EntryInfo.js";
import type { RequestInfo__Output } from "../../src/wire/generated/kvbridge/v1/RequestInfo.js";
import type { Stats__Output } from "../../src/wire/generated/kvbridge/v1/Stats.js";

/** Anything a terminal acts on: C0, DEL, C1, line/paragraph separators, bidi controls. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
/** Strings rich in what matters here: every C0/C1 code, the bidi and separator characters, and any other code point. */
const hostileText = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({
    unit: fc.oneof(
      fc.integer({ min: 0, max: 0x9f }).map((n) => String.fromCharCode(n)),
      fc.constantFrom("\u061c", "\u200e", "\u200f", "\u2028", "\u2029", "\u202a", "\u202e", "\u2066", "\u2069"),
      fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
    ),
    maxLength,
  });
const HOSTILE = ["\u001b[2J\u001b[H", "ok\nforged  READY  0", "a\rb", "\u009b31m", "x\u007fy", "\u202etxt.exe", "p\u2028q", "\u0007bell\u0000nul"];

function stats(over: Partial<Stats__Output> = {}): Stats__Output {
  return {
    nodeId: "decode-a", role: "decode", version: "0.1.0", protocolVersion: 1, generation: 1, transports: ["tcp"],
    slotBytes: 1024, slotsTotal: 10, slotsFree: 10, slotsWriting: 0, slotsReady: 0, slotsQuarantined: 0, slotsReserved: 0,
    entries: 0, activeRequests: 1, dedupHits: 0, dedupMisses: 0, bytesReceived: 0, leasesExpired: 0,
    requestsCommitted: 0, requestsAborted: 0, evictions: 0, fingerprint: "", serving: true, activeGenerations: 0, models: [], pushesInFlight: 0, transportsNotOffered: [], capabilities: [], ...over,
  };
}

function request(requestId: string, peer = "127.0.0.1:1"): RequestInfo__Output {
  return { requestId, phase: "allocating", keysWritten: 1, keysDeduped: 0, keysPending: 1, bytes: 0, ageMs: 100, leaseLeftMs: 5_000, peer, kind: "kv", model: "", promptTokens: 0, tokensGenerated: 0, chunks: 0 };
}

function entry(key: string, pinnedBy: string[]): EntryInfo__Output {
  return { key, state: "ready", refcount: pinnedBy.length, pinnedBy, slot: 1, size: 10, ageMs: 5, leaseLeftMs: -1, owner: "" };
}

describe("printable", () => {
  it("writes ESC, newline, CR, DEL, C1, bidi and separator characters as visible escapes", () => {
    expect(printable("\u001b[2J")).toBe("\\x1b[2J");
    expect(printable("a\nb\rc\td")).toBe("a\\x0ab\\x0dc\\x09d");
    expect(printable("\u007f\u0080\u009b")).toBe("\\x7f\\x80\\x9b");
    expect(printable("\u202e\u2066\u200f\u2028")).toBe("\\u202e\\u2066\\u200f\\u2028");
  });

  it("leaves ordinary text, accents, CJK and emoji as they are", () => {
    const text = "req-42 caf\u00e9 \u4e2d\u6587 \u{1F600} [x] \\ ~";
    expect(printable(text)).toBe(text);
  });

  it("never lets a raw control character through, whatever the input", () => {
    fc.assert(
      fc.property(hostileText(64), (s) => {
        expect(printable(s)).not.toMatch(RAW_CONTROL);
        expect(printable(s)).not.toContain("\n");
      }),
      { numRuns: 300 },
    );
  });
});

describe("kvctl output with hostile request ids and keys", () => {
  it("a table keeps one line per row and its columns aligned, whatever the cells hold", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(hostileText(20), hostileText(20)), { maxLength: 6 }), (rows) => {
        const text = renderTable([{ header: "A", value: (r: [string, string]) => r[0] }, { header: "B", value: (r: [string, string]) => r[1] }], rows);
        const lines = text.split("\n");
        expect(lines.length).toBe(rows.length + 2); // header, rows, and the final newline
        expect(text).not.toMatch(RAW_CONTROL);
      }),
      { numRuns: 300 },
    );
  });

  it("the keys and requests tables show each hostile value escaped on its own row", () => {
    const keys = renderTable(KEY_COLUMNS, HOSTILE.map((k) => keyRow(entry(k, [k]))));
    expect(keys.split("\n")).toHaveLength(HOSTILE.length + 2);
    expect(keys).toContain("\\x1b[2J\\x1b[H");
    expect(keys).toContain("ok\\x0aforged  READY  0");
    expect(keys).not.toMatch(RAW_CONTROL);
    const reqs = renderTable(REQUEST_COLUMNS, HOSTILE.map((id) => requestRow(request(id, id))));
    expect(reqs.split("\n")).toHaveLength(HOSTILE.length + 2);
    expect(reqs).not.toMatch(RAW_CONTROL);
    expect(renderPairs(HOSTILE.map((h) => [h, h] as const))).not.toMatch(RAW_CONTROL);
  });

  it("a status block and a watch frame escape what the node chose: node id, role, version, transports, request ids, errors", () => {
    const evil = "\u001b[2J\u001b[31m";
    const report = buildStatus("n:1", { stats: stats({ nodeId: evil, role: `decode\n${evil}`, version: evil, transports: [evil] }), at: 1 }, "SERVING", [], { nearExpiryMs: 1 });
    const block = renderStatus(report);
    expect(block).not.toMatch(RAW_CONTROL);
    expect(block.split("\n")[0]).toContain("\\x1b[2J\\x1b[31m");
    const failed = renderStatus(failureReport("m:2", new KvbridgeError("NOT_FOUND", `request ${evil} is gone\nforged line`)));
    expect(failed).not.toMatch(RAW_CONTROL);
    expect(failed.trimEnd().split("\n")).toHaveLength(2);
    const frame = renderWatchFrame("title", [{ report, requests: HOSTILE.map((id) => request(id)) }], 3);
    expect(frame).not.toMatch(RAW_CONTROL);
    expect(frame).toContain("... 5 more (kvctl requests n:1)");
  });

  it("a frame with a raw control character left in a line is still made printable before it is drawn", () => {
    expect(printableLines("line one\n\u001b[2Jline two\n")).toBe("line one\n\\x1b[2Jline two\n");
  });

  it("JSON output parses back to the same values and holds no raw DEL, C1 or bidi character", () => {
    fc.assert(
      fc.property(fc.array(hostileText(20), { maxLength: 5 }), (ids) => {
        const value = { nodes: [{ requests: ids.map((request_id) => ({ request_id })) }] };
        const text = terminalJson(value, 2);
        expect(text).not.toMatch(RAW_CONTROL);
        expect(JSON.parse(text)).toEqual(value);
      }),
      { numRuns: 300 },
    );
    expect(terminalJson({ id: "\u009b2J\u202e" })).toBe('{"id":"\\u009b2J\\u202e"}');
  });
});
