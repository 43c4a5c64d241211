// kill -9 of each role of a real prefill/decode/router cluster (separate processes, the project's
// model) while it works on a request: the prefill node mid-transfer over UCX and over TCP (the decode
// node recomputes the lost KV), the router mid-transfer (the prefill node's push is cancelled and its
// allocation aborted at once) and mid-stream (the decode node stops generating), and the decode node
// mid-decode (the client gets a clear error, never a hang). The decode pool returns to baseline.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ucxAvailability } from "../../src/transport/ucx/index.js";
import { startFaultCluster, streamCompletion, type FaultCluster } from "../support/fault-cluster.js";
import { sampleText } from "../support/model-fixture.js";
import { atBaseline, nodeClients, type NodeClients } from "../support/node-clients.js";

const ucx = ucxAvailability();
const LEASE_MS = 1_500;
/** The prefill node pauses this long between its Alloc and its writes: the window the faults hit. */
const DELAY_MS = 3_000;
let cluster: FaultCluster;
let decode: NodeClients;

beforeAll(async () => {
  cluster = await startFaultCluster({
    decodeArgs: ["--lease-ms", String(LEASE_MS), "--quarantine-ms", "200", "--hold-ms", "5000"],
    prefillArgs: ["--transport", ucx.available ? "ucx" : "tcp"],
    prefillEnv: { KVBRIDGE_FAULT_DELAY_WRITE_MS: String(DELAY_MS) },
  });
  decode = nodeClients(cluster.decodeGrpc);
});

afterAll(async () => {
  decode?.close();
  await cluster?.stop();
});

function complete(body: object): Promise<Response> {
  return fetch(`${cluster.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

const linesMatching = (role: "prefill" | "decode" | "router", re: RegExp): number => cluster.proc(role).lines.filter((l) => re.test(l)).length;

async function waitForLines(role: "prefill" | "decode" | "router", re: RegExp, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (linesMatching(role, re) < count) {
    if (Date.now() > deadline) {
      const tail = (r: "prefill" | "decode" | "router"): string => `${r}:\n${cluster.proc(r).lines.slice(-8).join("\n")}`;
      throw new Error(`${role}: fewer than ${count} lines matching ${re} after ${timeoutMs} ms\n${tail("prefill")}\n${tail("decode")}\n${tail("router")}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function expectBaseline(timeoutMs = 15_000): Promise<void> {
  const s = await decode.waitForStats(atBaseline, timeoutMs);
  expect(atBaseline(s)).toBe(true);
}

/** Kills the prefill node once the decode node holds WRITING slots for the request in flight. */
async function killPrefillMidTransfer(prompt: string): Promise<Response> {
  const recomputes = linesMatching("decode", /recomputing missing KV locally/);
  const pending = complete({ prompt, max_tokens: 16 });
  await decode.waitForStats((s) => s.slotsWriting > 0, 30_000);
  await cluster.proc("prefill").kill9();
  const res = await pending;
  expect(linesMatching("decode", /recomputing missing KV locally/)).toBe(recomputes + 1);
  await expectBaseline();
  return res;
}

describe("the prefill node killed mid-transfer", () => {
  for (const kind of ucx.available ? (["ucx", "tcp"] as const) : (["tcp"] as const)) {
    it(`over ${kind}: the decode node recomputes the lost KV, the client gets its completion and the pool returns to baseline`, async () => {
      if (kind === "tcp") await cluster.restart("prefill", { extraArgs: ["--transport", "tcp"] });
      // A first request opens the data plane to the decode node (a UCX endpoint, TCP connections).
      const warm = await complete({ prompt: sampleText(150, 40), max_tokens: 4 });
      expect(warm.status).toBe(200);
      expect(cluster.proc("prefill").lines.some((l) => /prefill pushed/.test(l) && l.includes(`"transport":"${kind}"`))).toBe(true);
      const res = await killPrefillMidTransfer(sampleText(150, kind === "ucx" ? 41 : 42));
      expect(res.status).toBe(200);
      const body = (await res.json()) as { choices: Array<{ text: string }> };
      expect(body.choices[0]!.text.length).toBeGreaterThan(0);
    });
  }
});

describe("the router killed", () => {
  it("mid-transfer: the prefill node's call is cancelled, its push aborts the allocation at once (not at lease expiry), the pool returns to baseline", async () => {
    await cluster.restart("prefill", { extraArgs: [] });
    const before = await decode.stats();
    const pending = complete({ prompt: sampleText(150, 43), max_tokens: 16 }).catch(() => undefined);
    await decode.waitForStats((s) => s.slotsWriting > 0, 30_000);
    await cluster.proc("router").kill9();
    const killedAt = performance.now();
    await pending;
    await expectBaseline(LEASE_MS + 5_000);
    // Well before the prefill's write delay ends: the cancel, not the lease or the push, freed it.
    expect(performance.now() - killedAt).toBeLessThan(DELAY_MS);
    const after = await decode.stats();
    expect(Number(after.requestsAborted)).toBe(Number(before.requestsAborted) + 1);
    expect(Number(after.leasesExpired)).toBe(Number(before.leasesExpired));
    expect(Number(after.requestsCommitted)).toBe(Number(before.requestsCommitted));
    await waitForLines("prefill", /prefill cancelled by its caller/, 1, 5_000);
    await cluster.restart("router");
  });

  it("mid-stream: the decode node stops generating for the lost client, holds nothing, and serves the next request", async () => {
    const cancelled = linesMatching("decode", /generate cancelled/);
    const stream = streamCompletion(cluster.url, { prompt: sampleText(60, 44), max_tokens: 3000 });
    await stream.firstText;
    await cluster.proc("router").kill9();
    const ended = await stream.ended;
    expect(ended.events).not.toContain("[DONE]");
    // 3000 tokens take several seconds; the cancel reaches the decode node within a second or two.
    await waitForLines("decode", /generate cancelled/, cancelled + 1, 5_000);
    await expectBaseline();
    await cluster.restart("router");
    const res = await complete({ prompt: sampleText(60, 45), max_tokens: 8 });
    expect(res.status).toBe(200);
    await expectBaseline();
  });
});

describe("the decode node killed mid-decode", () => {
  it("streaming: the client's stream ends with an error event naming the failure, within seconds", async () => {
    const stream = streamCompletion(cluster.url, { prompt: sampleText(60, 46), max_tokens: 3000 });
    await stream.firstText;
    await cluster.proc("decode").kill9();
    const killedAt = performance.now();
    const ended = await stream.ended;
    expect(performance.now() - killedAt).toBeLessThan(5_000);
    expect(ended.status).toBe(200);
    const last = JSON.parse(ended.events.at(-1)!) as { error?: { code: string; message: string } };
    expect(last.error?.code).toBe("unavailable");
    // Clients are told which step failed, never a node's address (that stays in the router's log).
    expect(last.error?.message).toMatch(/^Generate on a node/);
    expect(last.error?.message).not.toMatch(/127\.0\.0\.1/);
    await cluster.restart("decode");
    decode.close();
    decode = nodeClients(cluster.decodeGrpc);
  });

  it("non-streaming: the client gets an HTTP 503 with an OpenAI error body, within seconds; restarted, the node serves again", async () => {
    const pushed = linesMatching("prefill", /prefill pushed/);
    const pending = complete({ prompt: sampleText(60, 47), max_tokens: 3000 });
    await waitForLines("prefill", /prefill pushed/, pushed + 1, 30_000);
    await new Promise((r) => setTimeout(r, 300));
    await cluster.proc("decode").kill9();
    const killedAt = performance.now();
    const res = await pending;
    expect(performance.now() - killedAt).toBeLessThan(5_000);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string; type: string } };
    expect(body.error).toMatchObject({ code: "unavailable", type: "server_error" });
    await cluster.restart("decode");
    decode.close();
    decode = nodeClients(cluster.decodeGrpc);
    const again = await complete({ prompt: sampleText(60, 48), max_tokens: 8 });
    expect(again.status).toBe(200);
    await expectBaseline();
  });
});
