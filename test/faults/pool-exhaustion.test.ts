// Pool exhaustion under load on a real decode process: many more concurrent requests than the pool
// can hold. Each is refused RESOURCE_EXHAUSTED at once or completes (or is cancelled by its own
// signal); none waits on another, all settle within a bound, retried refusals all complete in the
// end, and the pool returns to baseline.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvSender, type PushChunk } from "../../src/transfer/sender.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { codeOf, settle, type Outcome } from "../support/fault-outcome.js";
import { atBaseline, nodeClients, type NodeClients } from "../support/node-clients.js";

const SLOTS = 16;
let decode: DecodeProcess;
let clients: NodeClients;
let tcp: TcpSenderTransport;
let sender: KvSender;

beforeAll(async () => {
  decode = await startDecodeProcess(["--pool-slots", String(SLOTS), "--slot-bytes", "64KiB", "--lease-ms", "2000", "--quarantine-ms", "200", "--hold-ms", "3000"]);
  clients = nodeClients(decode.grpc);
  tcp = new TcpSenderTransport({ connections: 2 });
  sender = new KvSender({ fingerprint: "", transports: { tcp }, preference: "tcp" });
});

afterAll(async () => {
  await sender?.close();
  await tcp?.close();
  clients?.close();
  await decode?.proc.stop();
});

/** Request i: 3..6 chunks of 32 KiB; every third starts with the same two shared chunks. */
function requestChunks(run: string, i: number): PushChunk[] {
  const n = 3 + (i % 4);
  return Array.from({ length: n }, (_, c) => {
    const key = i % 3 === 0 && c < 2 ? `${run}-shared-${c}` : `${run}-r${i}-c${c}`;
    return { key, data: Buffer.alloc(32 * 1024, createHash("sha256").update(key).digest()) };
  });
}

/** One push and, when it commits, its Release (what a decode node does once it consumed the KV). */
async function pushAndRelease(requestId: string, chunks: PushChunk[], signal?: AbortSignal): Promise<void> {
  await sender.push(decode.grpc, requestId, chunks, { signal });
  await clients.receiver.release({ requestId }, { timeoutMs: 10_000 });
}

describe("pool exhaustion under load", () => {
  it("64 concurrent requests against a 16-slot pool: each completes, is refused RESOURCE_EXHAUSTED at once, or is cancelled by its own signal; all settle within the bound and the pool returns to baseline", async () => {
    const run = "burst";
    const n = 64;
    const started = performance.now();
    const outcomes: Array<Outcome<void>> = await Promise.all(
      Array.from({ length: n }, (_, i) => {
        const ac = new AbortController();
        // One in eight gives up on its own a few milliseconds in, wherever it is.
        if (i % 8 === 7) setTimeout(() => ac.abort(), 2 + (i % 5));
        return settle(pushAndRelease(`${run}-${i}`, requestChunks(run, i), ac.signal));
      }),
    );
    const allSettledMs = performance.now() - started;
    const codes = outcomes.map(codeOf);
    const count = (c: string): number => codes.filter((x) => x === c).length;
    for (const [i, c] of codes.entries()) {
      expect(i % 8 === 7 ? ["OK", "RESOURCE_EXHAUSTED", "CANCELLED"] : ["OK", "RESOURCE_EXHAUSTED"]).toContain(c);
    }
    expect(count("OK")).toBeGreaterThan(0);
    expect(count("RESOURCE_EXHAUSTED")).toBeGreaterThan(0);
    // Refusals come at once: the store decides in one step, it never queues a request.
    for (const o of outcomes) if (!o.ok && o.code === "RESOURCE_EXHAUSTED") expect(o.ms).toBeLessThan(5_000);
    expect(allSettledMs).toBeLessThan(15_000);
    const refusal = outcomes.find((o) => !o.ok && o.code === "RESOURCE_EXHAUSTED");
    expect(refusal && !refusal.ok ? refusal.message : "").toMatch(/pool full for request .*raise --pool-slots or retry later/);
    const s = await clients.waitForStats(atBaseline, 10_000);
    expect(atBaseline(s)).toBe(true);
    expect(s.serving).toBe(true);
  });

  it("refused requests retried with backoff all complete: nobody holds slots while waiting for more, so the pool never deadlocks", async () => {
    const run = "retry";
    const n = 48;
    let refusals = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const chunks = requestChunks(run, i);
        for (let attempt = 0; ; attempt++) {
          const o = await settle(pushAndRelease(`${run}-${i}-a${attempt}`, chunks));
          if (o.ok) return;
          expect(codeOf(o)).toBe("RESOURCE_EXHAUSTED");
          refusals++;
          if (performance.now() - started > 40_000) throw new Error(`request ${i} still refused after 40 s (${attempt + 1} attempts)`);
          await new Promise((r) => setTimeout(r, 10 + Math.random() * 40 * Math.min(attempt + 1, 8)));
        }
      }),
    );
    expect(refusals).toBeGreaterThan(0);
    const s = await clients.waitForStats(atBaseline, 10_000);
    expect(atBaseline(s)).toBe(true);
  });
});
