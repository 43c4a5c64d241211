// The KvReceiver service and the server interceptors over real gRPC on loopback: what the service
// itself refuses (a sender's generation, protocol or fingerprint, with typed details), what it leaves
// to the store (answered once, with the store's words), and the interceptors in their order: a gate
// refusal never reaches the handler, yet metrics count it by op and code and the log names its
// request id; health passes them untouched.
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { allocateHeapPool } from "../../src/memory/pool-memory.js";
import { silentLogger } from "../../src/observability/logger.js";
import { nodeMetrics, Registry } from "../../src/observability/metrics.js";
import { parseHostPort } from "../../src/roles/host-port.js";
import { startGrpcServer, type NodeGrpcServer } from "../../src/services/grpc-server.js";
import { receiverHandlers } from "../../src/services/receiver-service.js";
import { opOf, serverInterceptors, type AdmissionGate } from "../../src/services/server-interceptors.js";
import { KvReceiver } from "../../src/transfer/receiver.js";
import { HealthClient } from "../../src/wire/health-client.js";
import { kvbridgeV1 } from "../../src/wire/proto.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";

const T = { timeoutMs: 5_000 };

interface Node {
  rx: KvReceiver;
  server: NodeGrpcServer;
  client: ReceiverClient;
  metrics: ReturnType<typeof nodeMetrics>;
  lines: Array<Record<string, unknown>>;
  allocsHandled: () => number;
}

const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) {
    n.client.close();
    await n.server.close(100);
    n.rx.close();
  }
});

async function start(gate?: AdmissionGate, fingerprint = ""): Promise<Node> {
  const rx = new KvReceiver({ memory: allocateHeapPool({ slots: 4, slotBytes: 1024 }), leaseMs: 60_000, quarantineMs: 0, fingerprint, nodeId: "rx-test", logger: silentLogger() });
  const metrics = nodeMetrics(new Registry());
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const handlers = receiverHandlers(rx);
  let allocs = 0;
  const alloc = handlers.Alloc;
  // Counts what reaches the handler, to tell a gate refusal from a handler refusal.
  handlers.Alloc = (call, callback) => {
    allocs++;
    alloc(call, callback);
  };
  const server = await startGrpcServer(
    parseHostPort("127.0.0.1:0", "listen"),
    [{ name: "kvbridge.v1.KvReceiver", definition: kvbridgeV1().KvReceiver.service, implementation: handlers }],
    undefined,
    undefined,
    serverInterceptors({ gate, metrics, logger: pino({ level: "debug" }, sink) }),
  );
  server.setServing("SERVING");
  const node: Node = { rx, server, client: new ReceiverClient(server.address), metrics, lines, allocsHandled: () => allocs };
  nodes.push(node);
  return node;
}

async function refusal(p: Promise<unknown>): Promise<KvbridgeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof KvbridgeError)) throw new Error(`expected a KvbridgeError, got ${String(err)}`);
  return err;
}

function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const allocReq = (requestId: string, generation: number, over: object = {}) => ({
  requestId,
  keys: ["k0"],
  sizes: [10],
  batchSeq: 0,
  totalChunks: 0,
  isLastBatch: true,
  fingerprint: "",
  generation,
  ...over,
});

describe("KvReceiver service", () => {
  it("refuses an Alloc without the handshake's generation (0) or with another one: FAILED_PRECONDITION receiver_restarted with the current generation, nothing allocated", async () => {
    const n = await start();
    const hello = await n.client.hello({ protocolVersion: 1, fingerprint: "" }, T);
    for (const generation of [0, hello.generation - 1]) {
      const err = await refusal(n.client.alloc(allocReq("r", generation), T));
      expect(err.code).toBe("FAILED_PRECONDITION");
      expect(err.details).toEqual({ reason: "receiver_restarted", generation: hello.generation });
      expect(err.message).toMatch(generation === 0 ? /carries no receiver generation \(0\); send Hello first/ : /receiver restarted/);
    }
    expect(n.rx.stats().activeRequests).toBe(0);
    await n.client.alloc(allocReq("r", hello.generation), T);
    expect(n.rx.hasRequest("r")).toBe(true);
  });

  it("refuses another protocol version or model fingerprint with INCOMPATIBLE and a reason a sender can branch on", async () => {
    const n = await start(undefined, "fp-a");
    const protocol = await refusal(n.client.hello({ protocolVersion: 99, fingerprint: "fp-a" }, T));
    expect(protocol).toMatchObject({ code: "INCOMPATIBLE", details: { reason: "protocol_mismatch" } });
    const helloFp = await refusal(n.client.hello({ protocolVersion: 1, fingerprint: "fp-b" }, T));
    expect(helloFp).toMatchObject({ code: "INCOMPATIBLE", details: { reason: "fingerprint_mismatch" } });
    const hello = await n.client.hello({ protocolVersion: 1, fingerprint: "fp-a" }, T);
    const allocFp = await refusal(n.client.alloc(allocReq("r", hello.generation, { fingerprint: "fp-b" }), T));
    expect(allocFp).toMatchObject({ code: "INCOMPATIBLE", details: { reason: "fingerprint_mismatch" } });
  });

  it("leaves the rest of an Alloc's validation to the store, which answers in its own words", async () => {
    const n = await start();
    const hello = await n.client.hello({ protocolVersion: 1, fingerprint: "" }, T);
    const tooMany = Array.from({ length: hello.maxKeysPerAlloc + 1 }, (_, i) => `k${i}`);
    const err = await refusal(n.client.alloc(allocReq("big", hello.generation, { keys: tooMany, sizes: tooMany.map(() => 1) }), T));
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toMatch(/split the request into batches/);
    const empty = await refusal(n.client.alloc(allocReq("", hello.generation), T));
    expect(empty.code).toBe("INVALID_ARGUMENT");
    expect(empty.message).toMatch(/request_id must be 1\.\.256 characters/);
  });
});

describe("server interceptors", () => {
  it("a gate refusal never reaches the handler, and metrics and the log still see it, with the request id and code", async () => {
    const allocPath = kvbridgeV1().KvReceiver.service.Alloc.path;
    const gate: AdmissionGate = {
      refusal: (method, request) =>
        method === allocPath && (request as { requestId: string }).requestId.startsWith("new-")
          ? new KvbridgeError("UNAVAILABLE", "draining in this test", { details: { reason: "draining" } })
          : undefined,
    };
    const n = await start(gate);
    const hello = await n.client.hello({ protocolVersion: 1, fingerprint: "" }, T);
    const err = await refusal(n.client.alloc(allocReq("new-1", hello.generation), T));
    expect(err).toMatchObject({ code: "UNAVAILABLE", details: { reason: "draining" }, message: expect.stringContaining("draining in this test") });
    expect(n.allocsHandled()).toBe(0);
    await n.client.alloc(allocReq("old-1", hello.generation), T);
    expect(n.allocsHandled()).toBe(1);
    await refusal(n.client.commit({ requestId: "never" }, T));

    const text = await n.metrics.registry.metrics();
    expect(sample(text, 'kvbridge_failures_total{op="alloc",reason="unavailable"}')).toBe(1);
    expect(sample(text, 'kvbridge_failures_total{op="commit",reason="not_found"}')).toBe(1);
    // Both Allocs are timed, the refused one included.
    expect(sample(text, "kvbridge_alloc_seconds_count")).toBe(2);

    const refused = n.lines.find((l) => l.msg === "rpc refused" && l.requestId === "new-1");
    expect(refused).toMatchObject({ rpc: allocPath, code: "unavailable", level: 30 });
    expect(n.lines.find((l) => l.msg === "rpc answered" && l.requestId === "old-1")).toMatchObject({ rpc: allocPath, level: 20 });
    expect(n.lines.find((l) => l.requestId === "never")).toMatchObject({ code: "not_found" });
  });

  it("lets grpc.health.v1 through untouched and names ops in snake case", async () => {
    const n = await start({ refusal: () => new KvbridgeError("UNAVAILABLE", "refuse everything") });
    const health = new HealthClient(n.server.address);
    try {
      expect(await health.check("", T)).toBe("SERVING");
    } finally {
      health.close();
    }
    await refusal(n.client.hello({ protocolVersion: 1, fingerprint: "" }, T));
    expect(n.lines.some((l) => String(l.rpc).startsWith("/grpc.health"))).toBe(false);
    expect(opOf("/kvbridge.v1.KvReceiver/AwaitReady")).toBe("await_ready");
    expect(opOf("/kvbridge.v1.Admin/AbortRequest")).toBe("abort_request");
    expect(opOf("/grpc.health.v1.Health/Check")).toBeUndefined();
  });
});
