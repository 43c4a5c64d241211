// A router given a static list of decode nodes, the first of which is still loading its engine:
// that node's health says NOT_SERVING (and it answers MatchPrefix UNAVAILABLE, reason loading), so
// the router keeps it out of rotation and every completion is served by the node that is ready
// (instead of a 503 from the loading one, which the router would otherwise prefer: equal prefix
// match, equal load, first in the list).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaEngine } from "../../src/engine/llama-engine.js";
import { startDecodeRole, type DecodeRole } from "../../src/roles/decode-role.js";
import { parseHostPort } from "../../src/roles/host-port.js";
import { silentLogger } from "../../src/observability/logger.js";
import { DecodeClient } from "../../src/wire/decode-client.js";
import { startPdCluster, type PdCluster } from "../support/pd-cluster.js";
import { spawnKvbridge, type RunningProcess } from "../support/processes.js";

let cluster: PdCluster;
let loading: DecodeRole;
let router: RunningProcess;
let url: string;

beforeAll(async () => {
  cluster = await startPdCluster();
  // A decode node whose engine never finishes loading: the node a real one is while it loads.
  loading = await startDecodeRole({
    listen: parseHostPort("127.0.0.1:0", "listen"),
    dataListen: parseHostPort("127.0.0.1:0", "data"),
    poolSlots: 8,
    slotBytes: 4096,
    leaseMs: 10_000,
    quarantineMs: 100,
    transport: "tcp",
    lockMemory: false,
    logger: silentLogger(),
    engine: new Promise<LlamaEngine>(() => {}),
  });
  router = spawnKvbridge(["router", "--listen", "127.0.0.1:0", "--prefill", cluster.prefillGrpc, "--decode", `${loading.grpcAddress},${cluster.decodeGrpc}`]);
  url = (JSON.parse(await router.waitForLine(/router serving/, 60_000)) as { url: string }).url;
}, 180_000);

afterAll(async () => {
  await router?.stop();
  await loading?.close();
  await cluster?.stop();
});

async function complete(prompt: string): Promise<{ status: number; body: { choices?: Array<{ text: string }>; error?: { message: string } } }> {
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "kvbridge", prompt, max_tokens: 8 }),
  });
  return { status: res.status, body: (await res.json()) as never };
}

describe("router with a decode node that is still loading", () => {
  it("the loading node answers MatchPrefix UNAVAILABLE (reason loading) and the router holds it out of rotation", async () => {
    const client = new DecodeClient(loading.grpcAddress);
    try {
      await expect(client.matchPrefix({ keys: ["k"] }, { timeoutMs: 5_000 })).rejects.toMatchObject({ code: "UNAVAILABLE", details: { reason: "loading" } });
    } finally {
      client.close();
    }
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { decode: Array<{ target: string; inRotation: boolean; health: string }> };
    expect(body.decode).toEqual([
      { target: loading.grpcAddress, inRotation: false, health: "NOT_SERVING" },
      { target: cluster.decodeGrpc, inRotation: true, health: "SERVING" },
    ]);
  });

  it("serves every completion from the ready node, the same text as the cluster's own router", async () => {
    for (const prompt of ["Once upon a time", "The quick brown fox", "In a hole in the ground"]) {
      const [viaBoth, viaReady] = await Promise.all([complete(prompt), fetch(`${cluster.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "kvbridge", prompt, max_tokens: 8 }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { choices: Array<{ text: string }> } }))]);
      expect(viaBoth.status, JSON.stringify(viaBoth.body)).toBe(200);
      expect(viaReady.status).toBe(200);
      expect(viaBoth.body.choices![0]!.text).toBe(viaReady.body.choices[0]!.text);
    }
    // Nothing was routed to the loading node.
    expect(router.lines.filter((l) => l.includes("\"routing\"")).length).toBeGreaterThanOrEqual(3);
    expect(router.lines.some((l) => l.includes(`"decode":"${loading.grpcAddress}"`))).toBe(false);
  });
});
