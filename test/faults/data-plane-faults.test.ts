// Data-plane and peer faults against a real decode process on loopback: a data connection torn in
// the middle of a frame (its request ends there, and a request id is never reused), a receiver that
// stops reading, a node frozen mid-transfer, and peers that accept connections and never answer.
// Every wait is bounded; the pool returns to baseline after each.
import { randomBytes, createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { KvSender, type PushChunk } from "../../src/transfer/sender.js";
import { encodeWriteHeader, FrameType } from "../../src/transport/tcp/tcp-frame.js";
import { TcpSenderTransport, type TcpSenderOptions } from "../../src/transport/tcp/tcp-sender.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { codeOf, settle } from "../support/fault-outcome.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { RedirectedTcpTransport } from "../support/fault-redirect.js";
import { startSilentPeer } from "../support/fault-silent-peer.js";
import { atBaseline, nodeClients, type NodeClients } from "../support/node-clients.js";
import { RawPeer } from "../support/tcp-raw-peer.js";

const LEASE_MS = 3_000;
let decode: DecodeProcess;
let clients: NodeClients;
const closers: Array<() => Promise<unknown> | unknown> = [];

beforeAll(async () => {
  decode = await startDecodeProcess(["--transport", "tcp", "--lease-ms", String(LEASE_MS), "--quarantine-ms", "300", "--hold-ms", "3000"]);
  clients = nodeClients(decode.grpc);
});

afterAll(async () => {
  while (closers.length) await closers.pop()!();
  clients?.close();
  if (decode) {
    decode.proc.child.kill("SIGCONT");
    await decode.proc.stop();
  }
});

function chunksOf(prefix: string, n: number, bytes: number): PushChunk[] {
  return Array.from({ length: n }, (_, i) => ({ key: `${prefix}-${i}`, data: randomBytes(bytes) }));
}

/** A KvSender over TCP; `redirect` dials the data plane there instead of the receiver's offer. */
function tcpSender(opts: TcpSenderOptions & { rpcTimeoutMs?: number; redirect?: number; delayWritesMs?: number } = {}): KvSender {
  const tcp = new TcpSenderTransport({ connections: 1, ...opts });
  const transport = opts.redirect === undefined ? tcp : new RedirectedTcpTransport(tcp, { host: "127.0.0.1", port: opts.redirect });
  const sender = new KvSender({
    fingerprint: "",
    transports: { tcp: transport },
    rpcTimeoutMs: opts.rpcTimeoutMs ?? 10_000,
    faultDelayBeforeWriteMs: opts.delayWritesMs,
  });
  closers.push(async () => {
    await sender.close();
    await transport.close();
  });
  return sender;
}

async function expectBaseline(timeoutMs = 15_000): Promise<void> {
  const s = await clients.waitForStats(atBaseline, timeoutMs);
  expect(atBaseline(s)).toBe(true);
}

async function requestIds(): Promise<string[]> {
  const r = await clients.inspect.listRequests({}, { timeoutMs: 10_000 });
  return r.requests.map((q) => q.requestId);
}

async function expectChecksums(chunks: PushChunk[]): Promise<void> {
  const sums = await clients.inspect.checksumKeys({ keys: chunks.map((c) => c.key) }, { timeoutMs: 10_000 });
  expect(sums.checksums.map((c) => c.state)).toEqual(chunks.map(() => "ready"));
  expect(sums.checksums.map((c) => c.sha256)).toEqual(chunks.map((c) => createHash("sha256").update(c.data).digest("hex")));
}

describe("a data connection torn in the middle of a frame", () => {
  it("through a real decode node: the request with the torn frame is aborted, another request on another connection is untouched, the pool returns to baseline", async () => {
    const before = await clients.stats();
    const hello = await clients.receiver.hello({ protocolVersion: 1, fingerprint: "" }, { timeoutMs: 10_000 });
    const alloc = (requestId: string, keys: string[], size: number) =>
      clients.receiver.alloc({
        requestId, keys, sizes: keys.map(() => size), batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation: hello.generation,
      }, { timeoutMs: 10_000 });
    const torn = await alloc("torn-a", ["torn-a-0", "torn-a-1"], 100_000);
    const other = await alloc("torn-b", ["torn-b-0"], 1_000);

    const payloadB = randomBytes(1_000);
    const peerB = await RawPeer.connect(decode.dataPort);
    closers.push(() => peerB.destroy());
    peerB.send(encodeWriteHeader(Buffer.from("torn-b"), 0, other.remoteIndexes[0]!, 0, payloadB.length, other.writeTokens[0]!), payloadB);
    expect(await peerB.waitForReplies(1)).toEqual([{ type: FrameType.ACK, seq: 0 }]);

    const peerA = await RawPeer.connect(decode.dataPort);
    peerA.send(encodeWriteHeader(Buffer.from("torn-a"), 0, torn.remoteIndexes[0]!, 0, 100_000, torn.writeTokens[0]!), randomBytes(30_000));
    await new Promise((r) => setTimeout(r, 100));
    // RST: the abrupt end a dead link or a killed sender gives, 30 000 of 100 000 payload bytes in.
    peerA.socket.resetAndDestroy();

    const deadline = Date.now() + 5_000;
    while ((await requestIds()).includes("torn-a") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await requestIds()).not.toContain("torn-a");
    expect(codeOf(await settle(clients.receiver.commit({ requestId: "torn-a" }, { timeoutMs: 10_000 })))).toBe("NOT_FOUND");
    // Long before its lease: the torn connection, not the sweeper, released it.
    const s = await clients.stats();
    expect(Number(s.requestsAborted)).toBe(Number(before.requestsAborted) + 1);
    expect(Number(s.leasesExpired)).toBe(Number(before.leasesExpired));

    const commit = await clients.receiver.commit({ requestId: "torn-b" }, { timeoutMs: 10_000 });
    expect(commit.keysReady).toBe(1);
    await expectChecksums([{ key: "torn-b-0", data: payloadB }]);
    await clients.receiver.release({ requestId: "torn-b" }, { timeoutMs: 10_000 });
    await expectBaseline();
  });

  it("through the real sender, torn once by the network: the receiver aborts the torn attempt, the sender's one retry under the same id is refused (ids are never reused) and the push fails FAILED_PRECONDITION at once; nothing is stranded and a new request lands byte-exact", async () => {
    const proxy = await FaultProxy.start(decode.dataPort);
    closers.push(() => proxy.close());
    const sender = tcpSender({ redirect: proxy.port });
    const before = await clients.stats();
    proxy.setMode({ kind: "cut", cutAfterBytes: 150_000, once: true });
    const t0 = performance.now();
    const err = await sender.push(decode.grpc, "torn-once", chunksOf("torn-once", 4, 200_000)).then(
      () => null,
      (e: unknown) => e,
    );
    const ms = performance.now() - t0;
    expect(err).toBeInstanceOf(KvbridgeError);
    expect(err).toMatchObject({ code: "FAILED_PRECONDITION", details: { reason: "request_id_reused" } });
    expect((err as KvbridgeError).message).toMatch(/cannot be retried: the receiver ended its first attempt/);
    expect(ms).toBeLessThan(5_000);
    expect(proxy.cuts).toBe(1);
    expect(await requestIds()).not.toContain("torn-once");
    const s = await clients.stats();
    // The torn connection ended it, not the lease; nothing of it became READY.
    expect(Number(s.requestsAborted)).toBe(Number(before.requestsAborted) + 1);
    expect(Number(s.leasesExpired)).toBe(Number(before.leasesExpired));
    expect(Number(s.requestsCommitted)).toBe(Number(before.requestsCommitted));
    await expectBaseline();
    // The network healed (the proxy cut once): a new request id goes through the same proxy.
    const chunks = chunksOf("torn-once-new", 4, 200_000);
    const r = await sender.push(decode.grpc, "torn-once-new", chunks);
    expect(r.commit).toEqual({ ready: 4, pending: 0, failed: 0 });
    await expectChecksums(chunks);
    await clients.receiver.release({ requestId: "torn-once-new" }, { timeoutMs: 10_000 });
    await expectBaseline();
  });

  it("through the real sender, torn on every attempt: the push fails quickly without a second write attempt and strands nothing; once the network heals a new request lands", async () => {
    const proxy = await FaultProxy.start(decode.dataPort);
    closers.push(() => proxy.close());
    const sender = tcpSender({ redirect: proxy.port });
    proxy.setMode({ kind: "cut", cutAfterBytes: 150_000 });
    const o = await settle(sender.push(decode.grpc, "torn-always", chunksOf("torn-always", 4, 200_000)));
    // The retry after the cut handshakes again and is refused at Alloc (the torn attempt ended the id).
    expect(codeOf(o)).toBe("FAILED_PRECONDITION");
    expect(o.ms).toBeLessThan(5_000);
    expect(proxy.cuts).toBe(1);
    await expectBaseline();
    proxy.setMode({ kind: "pass" });
    const ok = await sender.push(decode.grpc, "torn-after", chunksOf("torn-after", 2, 10_000));
    expect(ok.commit.ready).toBe(2);
    await clients.receiver.release({ requestId: "torn-after" }, { timeoutMs: 10_000 });
    await expectBaseline();
  });
});

describe("peers that stop reading or never answer", () => {
  it("a receiver whose data plane stops reading: the sender fails DEADLINE_EXCEEDED within its ACK bound and Aborts; the pool is back before the lease could have done it", async () => {
    const proxy = await FaultProxy.start(decode.dataPort);
    closers.push(() => proxy.close());
    const sender = tcpSender({ redirect: proxy.port, ackTimeoutMs: 1_500 });
    proxy.setMode({ kind: "stall" });
    const o = await settle(sender.push(decode.grpc, "stalled", chunksOf("stalled", 8, 256 * 1024)));
    expect(codeOf(o)).toBe("DEADLINE_EXCEEDED");
    expect(o.ok ? "" : o.message).toMatch(/no acknowledgement .* for 1500 ms/);
    expect(o.ms).toBeGreaterThanOrEqual(1_400);
    expect(o.ms).toBeLessThan(5_000);
    const t = performance.now();
    await expectBaseline(LEASE_MS);
    expect(performance.now() - t).toBeLessThan(LEASE_MS);
    expect(await requestIds()).not.toContain("stalled");
  });

  it("a data port that accepts and never answers: the push fails DEADLINE_EXCEEDED within the ACK bound and Aborts its allocation", async () => {
    const silent = await startSilentPeer();
    closers.push(() => silent.close());
    const sender = tcpSender({ redirect: silent.port, ackTimeoutMs: 1_000 });
    const o = await settle(sender.push(decode.grpc, "silent-data", chunksOf("silent-data", 2, 50_000)));
    expect(codeOf(o)).toBe("DEADLINE_EXCEEDED");
    expect(o.ms).toBeLessThan(4_000);
    expect(silent.accepted()).toBe(1);
    await expectBaseline(LEASE_MS);
  });

  it("a data port nobody listens on: the push fails UNAVAILABLE after one retry, at once", async () => {
    const gone = await startSilentPeer();
    const port = gone.port;
    await gone.close();
    const sender = tcpSender({ redirect: port });
    const o = await settle(sender.push(decode.grpc, "refused-data", chunksOf("refused-data", 2, 50_000)));
    expect(codeOf(o)).toBe("UNAVAILABLE");
    expect(o.ok ? "" : o.message).toMatch(/cannot connect to the TCP data plane/);
    expect(o.ms).toBeLessThan(3_000);
    await expectBaseline(LEASE_MS);
  });

  it("a gRPC endpoint that accepts and never answers: the handshake is bounded by the RPC deadline", async () => {
    const silent = await startSilentPeer();
    closers.push(() => silent.close());
    const sender = tcpSender({ rpcTimeoutMs: 1_500 });
    const o = await settle(sender.push(`127.0.0.1:${silent.port}`, "silent-grpc", chunksOf("silent-grpc", 1, 1_000)));
    expect(["DEADLINE_EXCEEDED", "UNAVAILABLE"]).toContain(codeOf(o));
    expect(o.ms).toBeGreaterThanOrEqual(1_400);
    // At most the deadline twice (a retry on UNAVAILABLE), never a hang.
    expect(o.ms).toBeLessThan(2 * 1_500 + 2_000);
    expect(silent.accepted()).toBeGreaterThanOrEqual(1);
  });

  it("a decode node frozen (SIGSTOP) mid-transfer: pushes fail within their RPC and ACK bounds; once thawed the node releases everything and serves again", async () => {
    // Each push holds its WRITING slots 300 ms before writing: the freeze lands inside a push.
    const sender = tcpSender({ rpcTimeoutMs: 2_000, ackTimeoutMs: 2_000, delayWritesMs: 300 });
    const outcomes: Array<Awaited<ReturnType<typeof settle>> & { op: string }> = [];
    let frozenAt = 0;
    const loop = (async () => {
      for (let i = 0; i < 200; i++) {
        const o = await settle(sender.push(decode.grpc, `frozen-${i}`, chunksOf(`frozen-${i}`, 4, 256 * 1024)));
        // A Release to the frozen node is bounded like everything else; its failure ends the run too.
        const done = o.ok ? { ...(await settle(clients.receiver.release({ requestId: `frozen-${i}` }, { timeoutMs: 2_000 }))), op: "release" } : { ...o, op: "push" };
        outcomes.push(done);
        if (!done.ok) return;
      }
    })();
    while (outcomes.length < 2) await new Promise((r) => setTimeout(r, 10));
    // Freeze while a push holds WRITING slots (its writes or its Commit are what then wait).
    await clients.waitForStats((s) => s.slotsWriting > 0, 5_000);
    decode.proc.child.kill("SIGSTOP");
    frozenAt = performance.now();
    try {
      await loop;
      const last = outcomes.at(-1)!;
      expect(last.ok).toBe(false);
      expect(last.op).toBe("push");
      expect(["DEADLINE_EXCEEDED", "UNAVAILABLE"]).toContain(codeOf(last));
      // It waited for a deadline (2 s, some of it possibly spent before the freeze), not for the
      // dead-peer signal a frozen node never gives; the slowest path is the rest of the delay, an
      // RPC or ACK deadline, then the Abort's own deadline (2 s).
      const took = performance.now() - frozenAt;
      expect(took).toBeGreaterThanOrEqual(1_500);
      expect(took).toBeLessThan(300 + 2_000 + 2_000 + 2_500);
    } finally {
      decode.proc.child.kill("SIGCONT");
    }
    await expectBaseline(LEASE_MS + 10_000);
    const ok = await sender.push(decode.grpc, "thawed", chunksOf("thawed", 2, 10_000));
    expect(ok.commit.ready).toBe(2);
    await clients.receiver.release({ requestId: "thawed" }, { timeoutMs: 10_000 });
    await expectBaseline();
  });
});
