// The server's one interceptor and unaryHandler over real gRPC on loopback, path by path: an answered
// call is timed and, with debug off, writes no log line (with debug on, one naming its peer); a
// handler's sync throw, async rejection and sync or async result each become the call's answer; an
// unexpected error is logged as "rpc failed" at error level; a gate alone still keeps refused calls
// from the handler; no options, no interceptor.
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { nodeMetrics, Registry } from "../../src/observability/metrics.js";
import { parseHostPort } from "../../src/roles/host-port.js";
import { startGrpcServer, type NodeGrpcServer } from "../../src/services/grpc-server.js";
import { serverInterceptors, type InterceptorOptions } from "../../src/services/server-interceptors.js";
import { unaryHandler } from "../../src/services/unary-handler.js";
import type { KvReceiverHandlers } from "../../src/wire/generated/kvbridge/v1/KvReceiver.js";
import { kvbridgeV1 } from "../../src/wire/proto.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";

const T = { timeoutMs: 5_000 };

interface Served {
  server: NodeGrpcServer;
  client: ReceiverClient;
  handled: string[];
}
const served: Served[] = [];
afterEach(async () => {
  for (const s of served.splice(0)) {
    s.client.close();
    await s.server.close(100);
  }
});

function logSink(): { lines: Array<Record<string, unknown>>; sink: Writable } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, sink };
}

/**
 * A KvReceiver service whose handlers answer in each way a handler can: Alloc synchronously, Renew
 * asynchronously, Commit by a synchronous KvbridgeError, Abort by an asynchronous plain Error,
 * Release by a synchronous plain Error.
 */
async function serve(opts: InterceptorOptions): Promise<Served> {
  const handled: string[] = [];
  const handlers: Pick<KvReceiverHandlers, "Alloc" | "Renew" | "Commit" | "Abort" | "Release"> = {
    Alloc: unaryHandler((req) => {
      handled.push(`alloc ${req.requestId}`);
      return { remoteIndexes: [7], alreadySentIndexes: [], writeTokens: [Buffer.alloc(8, 1)], slotBytes: 64, leaseExpiresAtMs: 1 };
    }),
    Renew: unaryHandler(async (req) => {
      handled.push(`renew ${req.requestId}`);
      await new Promise((r) => setTimeout(r, 5));
      return { leaseExpiresAtMs: 42 };
    }),
    Commit: unaryHandler((req) => {
      handled.push(`commit ${req.requestId}`);
      throw new KvbridgeError("NOT_FOUND", `request ${req.requestId} is unknown`, { details: { reason: "lease_expired" } });
    }),
    Abort: unaryHandler(async (req) => {
      handled.push(`abort ${req.requestId}`);
      await Promise.resolve();
      throw new Error("the handler broke");
    }),
    Release: unaryHandler((req) => {
      handled.push(`release ${req.requestIds.join(",")}`);
      throw new Error("the handler broke at once");
    }),
  };
  const server = await startGrpcServer(
    parseHostPort("127.0.0.1:0", "listen"),
    [{ name: "kvbridge.v1.KvReceiver", definition: kvbridgeV1().KvReceiver.service, implementation: handlers }],
    undefined,
    undefined,
    serverInterceptors(opts),
  );
  server.setServing("SERVING");
  const s = { server, client: new ReceiverClient(server.address), handled };
  served.push(s);
  return s;
}

async function failure(p: Promise<unknown>): Promise<KvbridgeError> {
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

const allocReq = (requestId: string) => ({ requestId, keys: ["k"], sizes: [8], fingerprint: "", generation: 1 });
const releaseReq = (requestId: string) => ({ requestId, requestIds: [requestId] });
const v1 = kvbridgeV1().KvReceiver.service;

describe("server interceptor and unaryHandler", () => {
  it("answers each kind of handler outcome, times Allocs, counts failures, and logs no OK line at info", async () => {
    const metrics = nodeMetrics(new Registry());
    const { lines, sink } = logSink();
    const s = await serve({ metrics, logger: pino({ level: "info" }, sink) });

    expect(await s.client.alloc(allocReq("a-1"), T)).toMatchObject({ remoteIndexes: [7], slotBytes: 64 });
    expect(await s.client.renew({ requestId: "r-1" }, T)).toMatchObject({ leaseExpiresAtMs: 42 });
    expect(await failure(s.client.commit({ requestId: "c-1" }, T))).toMatchObject({ code: "NOT_FOUND", details: { reason: "lease_expired" }, message: expect.stringContaining("request c-1 is unknown") });
    expect(await failure(s.client.abort({ requestId: "x-1", reason: "" }, T))).toMatchObject({ code: "INTERNAL", message: expect.stringContaining("the handler broke") });
    expect(await failure(s.client.release(releaseReq("l-1"), T))).toMatchObject({ code: "INTERNAL", message: expect.stringContaining("the handler broke at once") });
    expect(s.handled).toEqual(["alloc a-1", "renew r-1", "commit c-1", "abort x-1", "release l-1"]);

    const text = await metrics.registry.metrics();
    expect(sample(text, "kvbridge_alloc_seconds_count")).toBe(1);
    expect(sample(text, 'kvbridge_failures_total{op="commit",reason="not_found"}')).toBe(1);
    expect(sample(text, 'kvbridge_failures_total{op="abort",reason="internal"}')).toBe(1);
    expect(sample(text, 'kvbridge_failures_total{op="release",reason="internal"}')).toBe(1);
    expect(text).not.toMatch(/kvbridge_failures_total\{op="(alloc|renew)"/);

    // Info level: the OK answers write nothing; the refusal and the failures one line each.
    expect(lines.filter((l) => l.msg === "rpc answered")).toEqual([]);
    expect(lines.find((l) => l.requestId === "c-1")).toMatchObject({ msg: "rpc refused", level: 30, rpc: v1.Commit.path, code: "not_found" });
    expect(lines.find((l) => l.requestId === "x-1")).toMatchObject({ msg: "rpc failed", level: 50, rpc: v1.Abort.path, code: "internal", err: expect.stringContaining("the handler broke") });
    expect(lines.find((l) => l.requestId === "l-1")).toMatchObject({ msg: "rpc failed", level: 50, rpc: v1.Release.path });
    expect(lines).toHaveLength(3);
  });

  it("logs every OK answer at debug with its request id, peer and time", async () => {
    const { lines, sink } = logSink();
    const s = await serve({ logger: pino({ level: "debug" }, sink) });
    await s.client.alloc(allocReq("a-2"), T);
    await s.client.renew({ requestId: "r-2" }, T);
    const alloc = lines.find((l) => l.requestId === "a-2");
    expect(alloc).toMatchObject({ msg: "rpc answered", level: 20, rpc: v1.Alloc.path, peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    expect(typeof alloc?.ms).toBe("number");
    expect(lines.find((l) => l.requestId === "r-2")).toMatchObject({ msg: "rpc answered", rpc: v1.Renew.path });
  });

  it("keeps a refused call from the handler with a gate alone, and builds no interceptor for no options", async () => {
    const s = await serve({ gate: { refusal: (method) => (method === v1.Alloc.path ? new KvbridgeError("UNAVAILABLE", "not now", { details: { reason: "loading" } }) : undefined) } });
    expect(await failure(s.client.alloc(allocReq("a-3"), T))).toMatchObject({ code: "UNAVAILABLE", details: { reason: "loading" } });
    expect(await s.client.renew({ requestId: "r-3" }, T)).toMatchObject({ leaseExpiresAtMs: 42 });
    expect(s.handled).toEqual(["renew r-3"]);
    expect(serverInterceptors({})).toEqual([]);
  });
});
