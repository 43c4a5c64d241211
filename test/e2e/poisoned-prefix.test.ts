// Nobody can poison a prompt's prefix for others, through the real router, prefill and decode
// processes. A hostile client takes a prompt's first chunk key (Prefill.Plan hands keys out) and
// Allocs + Commits it with nothing written: the Commit is refused (commit_unproven) and the next real
// request is 200 and token-exact. A hostile client that does write the chunk (valid length, garbage
// bytes, over the TCP data plane) gets it READY, but the decode node finds it is no KV chunk of the
// prompt, treats it as missing, recomputes and evicts it: 200 and token-exact again, and the request
// after that loads every chunk.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { isKvbridgeError } from "../../src/errors/kvbridge-error.js";
import { offerFromWire } from "../../src/transfer/offer-codec.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { PrefillClient } from "../../src/wire/prefill-client.js";
import { PROTOCOL_VERSION } from "../../src/wire/proto.js";
import { openTestEngine, sampleText } from "../support/model-fixture.js";
import { nodeClients } from "../support/node-clients.js";
import { startPdCluster, type PdCluster } from "../support/pd-cluster.js";

let cluster: PdCluster | undefined;
const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await cluster?.stop();
  cluster = undefined;
});

async function complete(url: string, prompt: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt, max_tokens: 16 }) });
  const body = (await res.json()) as { choices?: Array<{ text: string }> };
  return { status: res.status, text: body.choices?.[0]?.text ?? JSON.stringify(body) };
}

/** The decode node's "generated" log lines, parsed. */
function generated(c: PdCluster): Array<{ recomputed: number; chunksLoaded: number }> {
  return c.decode.lines.filter((l) => l.includes('"msg":"generated"')).map((l) => JSON.parse(l) as { recomputed: number; chunksLoaded: number });
}

describe("a poisoned prefix chunk never reaches a user (router + prefill + decode processes)", () => {
  it("a hostile Alloc + Commit with nothing written is refused, and a chunk of garbage bytes written over TCP is evicted and recomputed: every real request 200 and token-exact", async () => {
    const prompts = [sampleText(300, 71), sampleText(300, 72)];
    const engine = await openTestEngine({ maxSequences: 1 });
    const expected: string[] = [];
    for (const p of prompts) expected.push((await engine.generateLocal({ tokens: engine.tokenize(p), maxTokens: 16 })).text);
    const chunkBytes = engine.maxChunkBytes;
    await engine.close();

    cluster = await startPdCluster({ decodeArgs: ["--quarantine-ms", "200"] });
    const prefill = new PrefillClient(cluster.prefillGrpc);
    closers.push(() => prefill.close());
    const decode = nodeClients(cluster.decodeGrpc);
    closers.push(() => decode.close());
    const T = { timeoutMs: decode.timeoutMs };
    const hello = await decode.receiver.hello({ protocolVersion: PROTOCOL_VERSION, fingerprint: (await prefill.plan({ prompt: prompts[0]! }, T)).fingerprint, transports: ["tcp"], senderId: "hostile" }, T);
    const alloc = async (requestId: string, key: string, fingerprint: string) =>
      decode.receiver.alloc({ requestId, keys: [key], sizes: [chunkBytes], batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint, generation: hello.generation }, T);

    // 1. Alloc + Commit with nothing written, on the first chunk key of prompt 0.
    const plan0 = await prefill.plan({ prompt: prompts[0]! }, T);
    expect(plan0.keys.length).toBeGreaterThan(1);
    await alloc("hostile-empty", plan0.keys[0]!, plan0.fingerprint);
    const refused = await decode.receiver.commit({ requestId: "hostile-empty" }, T).then(
      () => null,
      (e: unknown) => (isKvbridgeError(e) ? [e.code, e.details.reason] : [String(e)]),
    );
    expect(refused).toEqual(["FAILED_PRECONDITION", "commit_unproven"]);
    const r0 = await complete(cluster.url, prompts[0]!);
    expect(r0).toEqual({ status: 200, text: expected[0] });

    // 2. Garbage of a chunk's length written over TCP and committed: READY, but no KV chunk.
    const plan1 = await prefill.plan({ prompt: prompts[1]! }, T);
    const a = await alloc("hostile-garbage", plan1.keys[0]!, plan1.fingerprint);
    const tcpOffer = hello.offers.map(offerFromWire).find((o) => o.kind === "tcp")!;
    const tcp = new TcpSenderTransport();
    closers.push(() => tcp.close());
    const ch = await tcp.connect(tcpOffer, new AbortController().signal);
    closers.push(() => ch.close());
    const slot = a.remoteIndexes[0]!;
    await ch.writeAll("hostile-garbage", [{ slot, poolOffset: slot * hello.slotBytes, token: a.writeTokens[0]!, data: randomBytes(chunkBytes) }], new AbortController().signal);
    expect((await decode.receiver.commit({ requestId: "hostile-garbage" }, T)).keysReady).toBe(1);
    await decode.receiver.release({ requestId: "hostile-garbage" }, T);

    const before = generated(cluster).length;
    const r1 = await complete(cluster.url, prompts[1]!);
    expect(r1).toEqual({ status: 200, text: expected[1] });
    for (const t0 = Date.now(); generated(cluster).length < before + 1 && Date.now() - t0 < 10_000; ) await new Promise((r) => setTimeout(r, 25));
    expect(cluster.decode.lines.some((l) => l.includes("invalid READY chunk: treated as missing and evicted"))).toBe(true);
    expect(cluster.decode.lines.some((l) => l.includes('"msg":"evicted an invalid READY chunk"'))).toBe(true);
    expect(generated(cluster)[before]!.chunksLoaded).toBe(0);

    // 3. Evicted: the next request writes the chunk afresh and loads every chunk.
    const r2 = await complete(cluster.url, prompts[1]!);
    expect(r2).toEqual({ status: 200, text: expected[1] });
    // The decode node logs "generated" as the stream ends; the client can have its answer a moment earlier.
    for (const t0 = Date.now(); generated(cluster).length < before + 2 && Date.now() - t0 < 10_000; ) await new Promise((r) => setTimeout(r, 25));
    expect(generated(cluster)).toHaveLength(before + 2);
    const last = generated(cluster).at(-1)!;
    expect(last.chunksLoaded).toBe(plan1.keys.length);
    expect(last.recomputed).toBe(0);
  });
});
