// A cancel touches nothing else, through the real router, prefill and decode processes. Request A
// writes a prompt prefix's chunks; requests B1..B3 with the same prefix dedupe them while A is still
// writing (the prefill node delays every write: KVBRIDGE_FAULT_DELAY_WRITE_MS). A's client then
// disconnects, so A is aborted and its chunks fail. Each B's own sender holds the same chunk bytes:
// after its Commit it sees the failed keys, re-allocates them in the same request (a repair round)
// and writes them itself. Under both recompute policies: every B is 200 and token-exact, and the
// decode node recomputes nothing for any of them.
import { afterEach, describe, expect, it } from "vitest";
import { openTestEngine, sampleText } from "../support/model-fixture.js";
import { nodeClients, atBaseline } from "../support/node-clients.js";
import { startPdCluster, type PdCluster } from "../support/pd-cluster.js";

let cluster: PdCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const PREFIX = sampleText(400, 91);
const SUFFIXES = [" alpha beta", " gamma delta", " epsilon zeta"];

function post(url: string, prompt: string, signal?: AbortSignal): Promise<Response> {
  return fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt, max_tokens: 12 }), signal });
}

interface GeneratedLine {
  requestId: string;
  recomputed: number;
  chunksLoaded: number;
}

describe.each(["recompute", "fail"] as const)("a writer's cancel under --recompute-policy %s", (policy) => {
  it("the requests that deduped its chunks repair them from their own senders: 0 failures, 0 recomputes", async () => {
    const engine = await openTestEngine({ maxSequences: 1 });
    const expected: string[] = [];
    for (const s of SUFFIXES) expected.push((await engine.generateLocal({ tokens: engine.tokenize(PREFIX + s), maxTokens: 12 })).text);
    await engine.close();

    cluster = await startPdCluster({
      decodeArgs: ["--recompute-policy", policy, "--quarantine-ms", "200"],
      prefillArgs: ["--max-sequences", "4"],
      prefillEnv: { KVBRIDGE_FAULT_DELAY_WRITE_MS: "20000" },
    });
    const decode = nodeClients(cluster.decodeGrpc);
    try {
      // A allocates the prefix's chunks and sits in the write delay.
      const a = new AbortController();
      const aDone = post(cluster.url, PREFIX + " the writer that leaves", a.signal).then(
        () => "finished",
        () => "aborted",
      );
      await decode.waitForStats((s) => s.slotsWriting > 0, 30_000);
      // The Bs dedupe A's WRITING prefix chunks (and allocate their own last chunks).
      const bs = SUFFIXES.map((s) => post(cluster!.url, PREFIX + s));
      // Each B evaluates its prompt first (CPU-bound, so they may trickle in): at least one must
      // have deduped A's chunks before A leaves; later ones find them failed or absent.
      const all = await decode.waitForStats((s) => s.activeRequests >= 1 + SUFFIXES.length, 15_000);
      expect(all.activeRequests).toBeGreaterThanOrEqual(2);
      expect(all.dedupHits).toBeGreaterThan(0);
      expect(all.requestsCommitted).toBe(0);
      // A's client disconnects before A wrote anything.
      a.abort();
      expect(await aDone).toBe("aborted");

      const results = await Promise.all(bs.map(async (p) => {
        const res = await p;
        const body = (await res.json()) as { choices?: Array<{ text: string }> };
        return { status: res.status, text: body.choices?.[0]?.text ?? JSON.stringify(body) };
      }));
      expect(results).toEqual(expected.map((text) => ({ status: 200, text })));

      // The decode node logs "generated" as each stream ends; a client can have its answer a moment earlier.
      const generated = (): GeneratedLine[] => cluster!.decode.lines.filter((l) => l.includes('"msg":"generated"')).map((l) => JSON.parse(l) as GeneratedLine);
      for (const t0 = Date.now(); generated().length < SUFFIXES.length && Date.now() - t0 < 10_000; ) await new Promise((r) => setTimeout(r, 25));
      const lines = cluster.decode.lines;
      const gen = generated();
      expect(gen).toHaveLength(SUFFIXES.length);
      for (const g of gen) {
        expect(g.recomputed).toBe(0);
        expect(g.chunksLoaded).toBeGreaterThan(1);
      }
      expect(lines.some((l) => l.includes("recomputing missing KV locally"))).toBe(false);
      // The repairs happened (A's chunks did fail), done by the Bs' own senders.
      expect(lines.some((l) => l.includes("repair round"))).toBe(true);
      expect(cluster.prefill.lines.some((l) => l.includes("written again by this request"))).toBe(true);
      expect(atBaseline(await decode.waitForStats(atBaseline, 20_000))).toBe(true);
    } finally {
      decode.close();
    }
  });
});
