// 16 simultaneous completions through a router in front of 2 prefill and 2 decode nodes (separate
// processes on the project's model) land 8 and 8 on each side, give or take one, counted by the nodes
// themselves (their own log lines), not by the router. Before the routing policy reserved its choice
// in the step that made it, such a burst all went to the first prefill and the first decode node.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sampleText } from "../support/model-fixture.js";
import { spawnKvbridge, type RunningProcess } from "../support/processes.js";

let prefills: RunningProcess[] = [];
let decodes: RunningProcess[] = [];
let router: RunningProcess | undefined;
let url: string;

const addressOf = (line: string): string => (JSON.parse(line) as { grpc: string }).grpc;

beforeAll(async () => {
  decodes = [0, 1].map((i) =>
    spawnKvbridge(["decode", "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--pool-slots", "256", "--slot-bytes", "512KiB", "--node-id", `decode-${i}`]),
  );
  prefills = [0, 1].map((i) => spawnKvbridge(["prefill", "--listen", "127.0.0.1:0", "--node-id", `prefill-${i}`]));
  const [d, p] = await Promise.all([
    Promise.all(decodes.map((n) => n.waitForLine(/decode node serving/, 120_000))),
    Promise.all(prefills.map((n) => n.waitForLine(/prefill node serving/, 120_000))),
  ]);
  await Promise.all(decodes.map((n) => n.waitForLine(/engine loaded/, 120_000)));
  router = spawnKvbridge(["router", "--listen", "127.0.0.1:0", "--prefill", p.map(addressOf).join(","), "--decode", d.map(addressOf).join(",")]);
  url = (JSON.parse(await router.waitForLine(/router serving/, 60_000)) as { url: string }).url;
}, 240_000);

afterAll(async () => {
  await Promise.all([router, ...prefills, ...decodes].map((n) => n?.stop()));
});

/** How many requests a node served, by its own account. */
const served = (node: RunningProcess, line: RegExp): number => node.lines.filter((l) => line.test(l)).length;

describe("a burst of simultaneous requests spreads over the nodes", () => {
  it("16 simultaneous completions over 2 prefill + 2 decode nodes land 8/8 on each side (±1)", async () => {
    // Distinct prompts from their first token: no decode node holds any prefix, so load alone decides.
    const bodies = Array.from({ length: 16 }, (_, i) => ({ prompt: `${i} ${sampleText(30, 100 + i)}`, max_tokens: 8 }));
    const answers = await Promise.all(
      bodies.map((b) => fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(b) })),
    );
    for (const a of answers) expect(a.status, await a.clone().text()).toBe(200);
    // A node logs after it answered: its last lines may reach us just after the HTTP answers.
    const total = (): number => [...prefills.map((n) => served(n, /"prefill pushed"/)), ...decodes.map((n) => served(n, /"generated"/))].reduce((a, b) => a + b);
    for (const deadline = Date.now() + 10_000; total() < 32 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    const prefillCounts = prefills.map((n) => served(n, /"prefill pushed"/));
    const decodeCounts = decodes.map((n) => served(n, /"generated"/));
    const failures = prefills.flatMap((n) => n.lines.filter((l) => /"prefill failed"/.test(l)));
    expect(prefillCounts.reduce((a, b) => a + b), failures.join("\n")).toBe(16);
    expect(decodeCounts.reduce((a, b) => a + b)).toBe(16);
    for (const c of [...prefillCounts, ...decodeCounts]) expect(Math.abs(c - 8), `prefill ${prefillCounts}, decode ${decodeCounts}`).toBeLessThanOrEqual(1);
  });
});
