// SIGTERM on a real decode process: health turns NOT_SERVING at once, new requests are refused with
// UNAVAILABLE, requests already in flight (later batches included) finish byte-exact, and the
// process exits as soon as none is left, or releases what is left at --drain-timeout. No request lost.
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError, toKvbridgeError } from "../../src/errors/kvbridge-error.js";
import { offerFromWire } from "../../src/transfer/offer-codec.js";
import { KvSender } from "../../src/transfer/sender.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { HealthClient } from "../../src/wire/health-client.js";
import { InspectClient } from "../../src/wire/inspect-client.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";

const T = { timeoutMs: 5_000 };

interface Running {
  node: DecodeProcess;
  rx: ReceiverClient;
  inspect: InspectClient;
  health: HealthClient;
  exit: Promise<{ code: number | null; at: number }>;
}

const running: Running[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    r.rx.close();
    r.inspect.close();
    r.health.close();
    await r.node.proc.kill9();
  }
});

async function start(extra: string[]): Promise<Running> {
  const node = await startDecodeProcess(extra);
  const r: Running = {
    node,
    rx: new ReceiverClient(node.grpc),
    inspect: new InspectClient(node.grpc),
    health: new HealthClient(node.grpc),
    exit: new Promise((resolve) => node.proc.child.once("exit", (code) => resolve({ code, at: Date.now() }))),
  };
  running.push(r);
  return r;
}

function healthOf(r: Running): Promise<string> {
  return r.health.check("", { timeoutMs: 3_000 });
}

async function waitFor<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

describe("drain on SIGTERM", () => {
  it("turns NOT_SERVING, refuses new requests, lets an in-flight batched request finish byte-exact, then exits 0 long before the timeout", async () => {
    const r = await start(["--drain-timeout", "60000", "--lease-ms", "30000", "--metrics-listen", "127.0.0.1:0"]);
    const metricsAddr = (JSON.parse(r.node.proc.lines.find((l) => l.includes("decode node serving"))!) as { metrics: string }).metrics;
    const hello = await r.rx.hello({ protocolVersion: 1, fingerprint: "" }, T);
    const base = { fingerprint: "", generation: hello.generation };
    const chunks = [0, 1, 2].map((i) => Buffer.alloc(100_000 + i, 0x30 + i));

    // In flight before the signal: batch 0 of a three-chunk request.
    const b0 = await r.rx.alloc({ ...base, requestId: "inflight", keys: ["d-0", "d-1"], sizes: [chunks[0]!.length, chunks[1]!.length], batchSeq: 0, totalChunks: 3, isLastBatch: false }, T);
    expect(await healthOf(r)).toBe("SERVING");

    r.node.proc.child.kill("SIGTERM");
    await waitFor("health", () => healthOf(r), (s) => s === "NOT_SERVING");
    const scraped = await (await fetch(`http://${metricsAddr}/metrics`)).text();
    expect(scraped).toMatch(/^kvbridge_serving 0$/m);
    expect((await r.inspect.getStats({}, T)).serving).toBe(false);

    // A new request is refused before anything is allocated for it.
    const refused = await r.rx.alloc({ ...base, requestId: "newcomer", keys: ["n-0"], sizes: [10], batchSeq: 0, totalChunks: 0, isLastBatch: true }, T).then(
      () => undefined,
      (e: unknown) => toKvbridgeError(e),
    );
    expect(refused).toBeInstanceOf(KvbridgeError);
    expect(refused!.code).toBe("UNAVAILABLE");
    expect(refused!.details.reason).toBe("draining");
    expect(refused!.message).toMatch(/draining and takes no new requests; send newcomer to another node/);

    // The in-flight request goes on: its last batch, its writes, its commit.
    const b1 = await r.rx.alloc({ ...base, requestId: "inflight", keys: ["d-2"], sizes: [chunks[2]!.length], batchSeq: 1, totalChunks: 3, isLastBatch: true }, T);
    const tcp = new TcpSenderTransport({ connections: 1 });
    try {
      const ch = await tcp.connect(offerFromWire(hello.offers.find((o) => o.transport === "tcp")!), AbortSignal.timeout(5_000));
      const slots = [...b0.remoteIndexes, ...b1.remoteIndexes];
      const tokens = [...b0.writeTokens, ...b1.writeTokens];
      await ch.writeAll(
        "inflight",
        chunks.map((data, i) => ({ slot: slots[i]!, poolOffset: slots[i]! * hello.slotBytes, token: tokens[i]!, data })),
        AbortSignal.timeout(10_000),
      );
      // Committed before the data connection closes: a connection lost under an unfinished request aborts it.
      expect(await r.rx.commit({ requestId: "inflight" }, T)).toEqual({ keysReady: 3, keysPending: 0, keysFailed: 0 });
      await ch.close();
    } finally {
      await tcp.close();
    }
    const sums = await r.inspect.checksumKeys({ keys: ["d-0", "d-1", "d-2"] }, T);
    expect(sums.checksums.map((c) => c.sha256)).toEqual(chunks.map(sha));

    // Still draining while the request holds its chunks; consuming it lets the process go.
    expect(r.node.proc.child.exitCode).toBeNull();
    const released = Date.now();
    await r.rx.release({ requestId: "inflight" }, T);
    const { code, at } = await r.exit;
    expect(code).toBe(0);
    expect(at - released).toBeLessThan(5_000);
    expect(r.node.proc.lines.some((l) => l.includes("decode node: drained, nothing in flight"))).toBe(true);
    expect(r.node.proc.lines.some((l) => l.includes("drain timeout"))).toBe(false);
  });

  it("releases a request still in flight at --drain-timeout and exits 0 right after it", async () => {
    const r = await start(["--drain-timeout", "1000", "--lease-ms", "60000"]);
    const hello = await r.rx.hello({ protocolVersion: 1, fingerprint: "" }, T);
    await r.rx.alloc({ requestId: "stuck", keys: ["s-0"], sizes: [10], batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation: hello.generation }, T);
    const t0 = Date.now();
    r.node.proc.child.kill("SIGTERM");
    const { code, at } = await r.exit;
    expect(code).toBe(0);
    expect(at - t0).toBeGreaterThanOrEqual(900);
    expect(at - t0).toBeLessThan(8_000);
    expect(r.node.proc.lines.some((l) => l.includes("decode node: drain timeout, releasing work still in flight") && l.includes('"left":1'))).toBe(true);
  });

  it("under concurrent load loses no request: each one completes byte-exact or is refused with UNAVAILABLE", async () => {
    const r = await start(["--drain-timeout", "30000", "--pool-slots", "64"]);
    const tcp = new TcpSenderTransport({ connections: 2 });
    const sender = new KvSender({ fingerprint: "", transports: { tcp }, rpcTimeoutMs: 5_000 });
    const completed: string[] = [];
    const refused: string[] = [];
    const other: string[] = [];
    let next = 0;
    let signalled = false;
    const shared = { key: "load-shared", data: Buffer.alloc(64 * 1024, 0xaa) };
    const worker = async (): Promise<void> => {
      for (;;) {
        const id = `load-${next++}`;
        const chunks = [shared, ...[0, 1, 2].map((i) => ({ key: `${id}-${i}`, data: Buffer.alloc(64 * 1024, (next + i) & 0xff) }))];
        try {
          await sender.push(r.node.grpc, id, chunks);
          const sums = await r.inspect.checksumKeys({ keys: chunks.map((c) => c.key) }, T);
          expect(sums.checksums.map((c) => c.sha256)).toEqual(chunks.map((c) => sha(c.data)));
          await r.rx.release({ requestId: id }, T);
          completed.push(id);
        } catch (err) {
          const e = toKvbridgeError(err);
          (e.code === "UNAVAILABLE" ? refused : other).push(`${id}: ${e.code} ${e.message}`);
          return;
        }
        if (completed.length >= 12 && !signalled) {
          signalled = true;
          r.node.proc.child.kill("SIGTERM");
        }
      }
    };
    try {
      await Promise.all([worker(), worker(), worker(), worker()]);
    } finally {
      await sender.close();
      await tcp.close();
    }
    expect(other).toEqual([]);
    expect(completed.length).toBeGreaterThanOrEqual(12);
    expect(refused).toHaveLength(4);
    const { code } = await r.exit;
    expect(code).toBe(0);
    expect(r.node.proc.lines.some((l) => l.includes("decode node: drained, nothing in flight"))).toBe(true);
  });
});
