// The prefill node dies while it holds WRITING allocations on the decode node (kill -9 between its
// Alloc and its writes). With policy recompute the request still completes with the same tokens;
// with policy fail it fails with a clear error. Either way the decode pool returns to baseline.
import { afterEach, describe, expect, it } from "vitest";
import { atBaseline, nodeClients } from "../support/node-clients.js";
import { openTestEngine, sampleText } from "../support/model-fixture.js";
import { startPdCluster, type PdCluster } from "../support/pd-cluster.js";

let cluster: PdCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function killPrefillOnceAllocated(c: PdCluster, body: object): Promise<Response> {
  const decode = nodeClients(c.decodeGrpc);
  try {
    const pending = fetch(`${c.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const busy = await decode.waitForStats((s) => s.slotsWriting > 0, 30_000);
    expect(busy.slotsWriting).toBeGreaterThan(0);
    await c.prefill.kill9();
    const res = await pending;
    const s = await decode.waitForStats(atBaseline, 20_000);
    expect(atBaseline(s)).toBe(true);
    return res;
  } finally {
    decode.close();
  }
}

const faultEnv = { KVBRIDGE_FAULT_DELAY_WRITE_MS: "60000" };

describe("prefill node killed mid-transfer", () => {
  it("policy recompute: the decode node computes the lost KV itself and the tokens are unchanged", async () => {
    const prompt = sampleText(150, 31);
    const engine = await openTestEngine({ maxSequences: 1 });
    const expected = (await engine.generateLocal({ tokens: engine.tokenize(prompt), maxTokens: 20 })).text;
    await engine.close();
    cluster = await startPdCluster({ decodeArgs: ["--lease-ms", "1500", "--quarantine-ms", "200"], prefillEnv: faultEnv });
    const res = await killPrefillOnceAllocated(cluster, { prompt, max_tokens: 20 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: Array<{ text: string }> };
    expect(body.choices[0]!.text).toBe(expected);
    expect(cluster.decode.lines.some((l) => /recomputing missing KV locally/.test(l))).toBe(true);
  });

  it("policy fail: the request fails with a clear error naming the lost chunk", async () => {
    cluster = await startPdCluster({
      decodeArgs: ["--lease-ms", "1500", "--quarantine-ms", "200", "--recompute-policy", "fail"],
      prefillEnv: faultEnv,
    });
    const res = await killPrefillOnceAllocated(cluster, { prompt: sampleText(150, 32), max_tokens: 20 });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { message: string; code: string } };
    expect(body.error.code).toBe("kv_failed");
    expect(body.error.message).toMatch(/request .* (failed|is failed).*policy is fail/);
  });
});
