// A short run of the soak (scripts/soak.ts, `npm run soak`) so CI covers it: one decode node, three
// sender processes (TCP through a tearing proxy, UCX where available, plain TCP), every fault kind
// injected, and the soak's own verdict: no leaked slot or request, no stuck push, no corrupt chunk,
// RSS within its margin.
import { once } from "node:events";
import { afterEach, expect, it } from "vitest";
import { spawnScript, type RunningProcess } from "../support/processes.js";

let soak: RunningProcess | undefined;
afterEach(async () => {
  await soak?.kill9();
  soak = undefined;
});

interface SoakSummary {
  ok: boolean;
  problems: string[];
  requests: { started: number; ok: number; cancelled: number; stuck: number; failedByReason: Record<string, number> };
  faults: Record<string, number>;
  leaks: number;
  corruptChunks: number;
  verifiedChunks: number;
  nodes: Array<{ baseline: boolean; leakedSlots: number; requestsLeft: number; leasesExpired: number; aborted: number }>;
}

it("a 12-second soak with sender kills, freezes past the lease, torn connections and client cancels ends with nothing leaked, stuck or corrupt", async () => {
  soak = spawnScript("scripts/soak.ts", ["--json", "--duration", "12", "--decodes", "1", "--senders", "3", "--fault-every", "1500", "--rss-margin-mib", "64"]);
  const [code] = (await once(soak.child, "exit")) as [number | null];
  const line = soak.lines.find((l) => l.startsWith('{"seconds"'));
  expect(line, soak.lines.slice(-30).join("\n")).toBeDefined();
  const r = JSON.parse(line!) as SoakSummary;
  expect(r.problems).toEqual([]);
  expect(r.ok).toBe(true);
  expect(code).toBe(0);
  expect(r.leaks).toBe(0);
  expect(r.requests.stuck).toBe(0);
  expect(r.corruptChunks).toBe(0);
  expect(r.verifiedChunks).toBeGreaterThan(0);
  // Load and faults actually happened.
  expect(r.requests.ok).toBeGreaterThan(1_000);
  expect(r.requests.cancelled).toBeGreaterThan(0);
  expect(r.faults["sender killed"]).toBeGreaterThanOrEqual(1);
  expect(r.faults["sender frozen past its lease"]).toBeGreaterThanOrEqual(1);
  expect(r.faults["data connections torn"]).toBeGreaterThanOrEqual(1);
  const node = r.nodes[0]!;
  expect(node).toMatchObject({ baseline: true, leakedSlots: 0, requestsLeft: 0 });
  // Frozen senders' requests expired on the node; cancels and torn connections aborted others.
  expect(node.leasesExpired).toBeGreaterThan(0);
  expect(node.aborted).toBeGreaterThan(0);
}, 60_000);
