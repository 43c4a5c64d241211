// The router's recovery and bounded waits against real node processes (separate prefill, decode
// and router processes on the project's model): a node killed and restarted after 10 s down is
// served again within 2 s of saying it serves (the channel's reconnect backoff is bounded, health
// puts it back); while it is down requests fail fast and /readyz says 503. A frozen node (SIGSTOP)
// leaves rotation and its running stream ends at once with an SSE error (well before the idle bound),
// new requests fail fast, and it is back in rotation once it resumes (SIGCONT).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sampleText } from "../support/model-fixture.js";
import { startFaultCluster, streamCompletion, type FaultCluster, type Role } from "../support/fault-cluster.js";

let cluster: FaultCluster;
// Longer than health takes to find a frozen node (two 1 s Check deadlines), so the stream is ended by that verdict.
const IDLE_MS = 10_000;
/** A frozen node is out of rotation, and its streams ended, within this of the freeze. */
const FROZEN_OUT_MS = 5_000;

beforeAll(async () => {
  cluster = await startFaultCluster();
  // The router again with a short idle bound on Generate (its other flags at their defaults).
  await cluster.restart("router", { extraArgs: ["--generate-idle-timeout", String(IDLE_MS)] });
}, 240_000);

afterAll(async () => {
  for (const role of ["prefill", "decode"] as const) cluster?.proc(role).child.kill("SIGCONT");
  await cluster?.stop();
});

async function complete(prompt: string, maxTokens = 2): Promise<{ status: number; ms: number; body: { error?: { code: string } } }> {
  const t0 = performance.now();
  const res = await fetch(`${cluster.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt, max_tokens: maxTokens }) });
  return { status: res.status, ms: performance.now() - t0, body: (await res.json()) as never };
}

const readyz = async (): Promise<number> => (await fetch(`${cluster.url}/readyz`)).status;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(25);
  }
  return performance.now() - t0;
}

/**
 * Kills `role`, checks requests fail fast while it is down, restarts it after `downMs` and returns how
 * long after its "serving" line the first request that succeeded was sent.
 */
async function outage(role: Exclude<Role, "router">, downMs: number, seed: number): Promise<number> {
  expect((await complete(sampleText(20, seed))).status).toBe(200);
  await cluster.proc(role).kill9();
  await until("/readyz 503 with the node down", async () => (await readyz()) === 503, 5_000);
  const down = performance.now();
  while (performance.now() - down < downMs) {
    const r = await complete(sampleText(20, seed + 1));
    expect(r.status).toBe(503);
    expect(r.ms).toBeLessThan(1_000);
    await sleep(500);
  }
  await cluster.restart(role);
  const serving = performance.now();
  for (let attempt = 1; ; attempt++) {
    const sent = performance.now() - serving;
    const r = await complete(sampleText(20, seed + 2));
    if (r.status === 200) {
      console.log(`${role} after ${downMs} ms down: served ${Math.round(sent)} ms after the node's serving line (attempt ${attempt})`);
      return sent;
    }
    expect(r.status, JSON.stringify(r.body)).toBe(503);
    if (sent > 10_000) throw new Error(`no completion within 10 s of the ${role} node serving again`);
    await sleep(50);
  }
}

describe("a node restarted after 10 s down", () => {
  for (const [role, seed] of [["prefill", 100], ["decode", 200]] as const) {
    it(`${role}: 503 at once while down, served within 2 s of the node serving again`, async () => {
      const afterMs = await outage(role, 10_000, seed);
      expect(afterMs).toBeLessThan(2_000);
      // A node whose connection was refused can serve as a last resort a moment before its health
      // puts it back in rotation: readiness follows within one health interval or two.
      await until("/readyz 200 after the node serves again", async () => (await readyz()) === 200, 2_000);
    }, 180_000);
  }
});

describe("a frozen node (SIGSTOP)", () => {
  it("decode: the running stream ends with an SSE error once health takes the node out (before the idle bound), new requests fail fast, and the node is back once resumed", async () => {
    const stream = streamCompletion(cluster.url, { prompt: sampleText(30, 300), max_tokens: 2_000 });
    await stream.firstText;
    const decode = cluster.proc("decode").child;
    decode.kill("SIGSTOP");
    const frozeAt = performance.now();
    try {
      const out = await stream.ended;
      const endedMs = performance.now() - frozeAt;
      expect(out.status).toBe(200);
      const last = JSON.parse(out.events.at(-1)!) as { error?: { code: string; message: string } };
      expect(last.error?.code).toBe("unavailable");
      expect(last.error?.message).toContain("left rotation");
      expect(out.events).not.toContain("[DONE]");
      expect(endedMs).toBeLessThan(FROZEN_OUT_MS);
      // Out of rotation by health: refused fast, without waiting on the frozen node.
      await until("/readyz 503 with the decode node frozen", async () => (await readyz()) === 503, 5_000);
      const r = await complete(sampleText(20, 301));
      expect(r.status).toBe(503);
      expect(r.ms).toBeLessThan(1_000);
    } finally {
      decode.kill("SIGCONT");
    }
    const backMs = await until("/readyz 200 once the decode node resumed", async () => (await readyz()) === 200, 10_000);
    expect(backMs).toBeLessThan(2_000);
    expect((await complete(sampleText(20, 302))).status).toBe(200);
  }, 120_000);

  it("prefill: requests fail fast once it is out of rotation, and it is back once resumed", async () => {
    const prefill = cluster.proc("prefill").child;
    prefill.kill("SIGSTOP");
    try {
      // A request sent at the freeze ends when health takes the node out (its Plan is cancelled), not at the Plan deadline.
      const first = await complete(sampleText(20, 400));
      expect(first.status).toBe(503);
      expect(first.ms).toBeLessThan(5_000);
      const r = await complete(sampleText(20, 401));
      expect(r.status).toBe(503);
      expect(r.ms).toBeLessThan(1_000);
      expect(await readyz()).toBe(503);
    } finally {
      prefill.kill("SIGCONT");
    }
    const backMs = await until("/readyz 200 once the prefill node resumed", async () => (await readyz()) === 200, 10_000);
    expect(backMs).toBeLessThan(2_000);
    expect((await complete(sampleText(20, 402))).status).toBe(200);
  }, 120_000);
});
