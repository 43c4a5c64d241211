// A real decode process and real sender processes on loopback: concurrent requests with shared
// prefixes verified byte for byte, failures and kills, bad input; the pool back at baseline after each.
import { createConnection } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { KvSender } from "../../src/transfer/sender.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { atBaseline, nodeClients, type NodeClients } from "../support/node-clients.js";
import { spawnKvbridge } from "../support/processes.js";

let decode: DecodeProcess;
let clients: NodeClients;

beforeAll(async () => {
  // Short lease, quarantine and hold so expiry paths finish within the test (a killed sender may
  // have committed a request it never released: the hold gives its pins back).
  decode = await startDecodeProcess(["--lease-ms", "1500", "--quarantine-ms", "300", "--hold-ms", "2000", "--pool-slots", "96"]);
  clients = nodeClients(decode.grpc);
});

afterAll(async () => {
  clients?.close();
  await decode?.proc.stop();
});

async function expectCode(p: Promise<unknown>, code: string): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(KvbridgeError);
    expect((e as KvbridgeError).code).toBe(code);
    return (e as KvbridgeError).message;
  }
  throw new Error(`expected ${code}`);
}

describe("decode process + sender processes over TCP", () => {
  it("moves many concurrent shared-prefix requests byte-exact and returns the pool to baseline", async () => {
    const send = spawnKvbridge([
      "send", "--to", decode.grpc, "--transport", "tcp", "--requests", "60", "--chunks", "8",
      "--chunk-bytes", "200KiB", "--concurrency", "8", "--shared-prefix", "0.5", "--json",
    ]);
    const { code } = await new Promise<{ code: number | null }>((resolve) => send.child.on("exit", (c) => resolve({ code: c })));
    const out = JSON.parse(send.lines.find((l) => l.startsWith("{\"bytes\""))!) as Record<string, number>;
    expect(code).toBe(0);
    expect(out.requests_ok).toBe(60);
    expect(out.requests_failed).toBe(0);
    expect(out.chunks_verified).toBe(60 * 8);
    // 4 shared chunks written once; every later request dedups them.
    expect(out.dedup_hits).toBeGreaterThanOrEqual(59 * 4 - 8 * 4);
    expect(out.bytes).toBeLessThan(60 * 8 * 200 * 1024);
    const s = await clients.waitForStats(atBaseline);
    expect(atBaseline(s)).toBe(true);
  });

  it("a sender killed mid-transfer strands nothing: its requests are aborted or expire, the pool returns to baseline", async () => {
    const send = spawnKvbridge([
      "send", "--to", decode.grpc, "--transport", "tcp", "--requests", "100000", "--chunks", "16",
      "--chunk-bytes", "256KiB", "--concurrency", "4", "--no-verify",
    ]);
    const busy = await clients.waitForStats((s) => s.activeRequests > 0 && s.bytesReceived > 0, 30_000);
    expect(busy.activeRequests).toBeGreaterThan(0);
    await send.kill9();
    const s = await clients.waitForStats(atBaseline, 20_000);
    expect(atBaseline(s)).toBe(true);
  });

  it("aborting a push from its own signal releases exactly that request and leaves another's intact", async () => {
    const tcp = new TcpSenderTransport({ connections: 2 });
    const sender = new KvSender({ fingerprint: "", transports: { tcp } });
    try {
      const big = Array.from({ length: 16 }, (_, i) => ({ key: `iso-a-${i}`, data: Buffer.alloc(256 * 1024, i) }));
      const other = Array.from({ length: 4 }, (_, i) => ({ key: `iso-b-${i}`, data: Buffer.alloc(1000, 7) }));
      const ac = new AbortController();
      const pa = sender.push(decode.grpc, "iso-a", big, { signal: ac.signal });
      const pb = sender.push(decode.grpc, "iso-b", other);
      setTimeout(() => ac.abort(), 1);
      await expectCode(pa, "CANCELLED");
      const rb = await pb;
      expect(rb.commit).toEqual({ ready: 4, pending: 0, failed: 0 });
      const sums = await clients.inspect.checksumKeys({ keys: other.map((c) => c.key) }, { timeoutMs: 10_000 });
      expect(sums.checksums.map((c) => c.state)).toEqual(["ready", "ready", "ready", "ready"]);
      await clients.receiver.release({ requestId: "iso-b" }, { timeoutMs: 10_000 });
      const s = await clients.waitForStats(atBaseline);
      expect(atBaseline(s)).toBe(true);
    } finally {
      await sender.close();
      await tcp.close();
    }
  });

  it("answers malformed control-plane calls with clear statuses and keeps serving", async () => {
    const hello = await clients.receiver.hello({ protocolVersion: 1, fingerprint: "" }, { timeoutMs: 10_000 });
    const base = { fingerprint: "", generation: hello.generation, batchSeq: 0, totalChunks: 0, isLastBatch: true };
    const alloc = (req: object) => clients.receiver.alloc({ ...base, ...req }, { timeoutMs: 10_000 });
    expect(await expectCode(alloc({ requestId: "bad1", keys: ["a", "b"], sizes: [1] }), "INVALID_ARGUMENT")).toMatch(/one size per key/);
    expect(await expectCode(alloc({ requestId: "bad2", keys: ["a"], sizes: [hello.slotBytes + 1] }), "INVALID_ARGUMENT")).toMatch(/slot size/);
    await expectCode(alloc({ requestId: "", keys: ["a"], sizes: [1] }), "INVALID_ARGUMENT");
    await expectCode(alloc({ requestId: "bad3", keys: [""], sizes: [1] }), "INVALID_ARGUMENT");
    await expectCode(alloc({ requestId: "bad4", keys: Array.from({ length: 5000 }, (_, i) => `k${i}`), sizes: Array(5000).fill(1) }), "INVALID_ARGUMENT");
    expect(await expectCode(alloc({ requestId: "bad5", keys: ["a"], sizes: [1], generation: 12345 }), "FAILED_PRECONDITION")).toMatch(/restarted/);
    await expectCode(clients.receiver.commit({ requestId: "never-allocated" }, { timeoutMs: 10_000 }), "NOT_FOUND");
    await expectCode(clients.receiver.abort({ requestId: "never-allocated" }, { timeoutMs: 10_000 }), "NOT_FOUND");
    expect(await expectCode(clients.receiver.hello({ protocolVersion: 99, fingerprint: "" }, { timeoutMs: 10_000 }), "INCOMPATIBLE")).toMatch(/protocol version/);
    expect(await expectCode(clients.receiver.hello({ protocolVersion: 1, fingerprint: "other-model" }, { timeoutMs: 10_000 }), "INCOMPATIBLE")).toMatch(/fingerprint/);
    // Over capacity: refused at once, nothing left behind.
    await expectCode(
      alloc({ requestId: "huge", keys: Array.from({ length: 97 }, (_, i) => `h${i}`), sizes: Array(97).fill(10) }),
      "RESOURCE_EXHAUSTED",
    );
    const s = await clients.stats();
    expect(atBaseline(s)).toBe(true);
  });

  it("closes a data connection that sends garbage, and keeps serving other connections", async () => {
    const sock = createConnection({ host: "127.0.0.1", port: decode.dataPort });
    await new Promise<void>((r) => sock.once("connect", () => r()));
    const closed = new Promise<void>((r) => sock.once("close", () => r()));
    const reply: Buffer[] = [];
    sock.on("data", (d: Buffer) => reply.push(d));
    sock.write(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(4)));
    await closed;
    // The receiver says why before closing: a CLOSE frame naming the bad magic.
    expect(Buffer.concat(reply).toString("latin1")).toMatch(/magic/);
    // The node still takes a full transfer afterwards.
    const tcp = new TcpSenderTransport({ connections: 1 });
    const sender = new KvSender({ fingerprint: "", transports: { tcp } });
    try {
      const r = await sender.push(decode.grpc, "after-garbage", [{ key: "ag-0", data: Buffer.alloc(4096, 3) }]);
      expect(r.commit.ready).toBe(1);
      await clients.receiver.release({ requestId: "after-garbage" }, { timeoutMs: 10_000 });
    } finally {
      await sender.close();
      await tcp.close();
    }
  });
});
