// kvctl's views of generations, prefill nodes and routers: the request table's columns (KV columns
// alone while only KV is listed; KIND, MODEL, TOKENS once a generation or a push is), a prefill node's
// status block, and the router's node list read from a real HTTP server on loopback (200 and 503 both
// list nodes; 401, a non-router and a bad URL are clear errors).
import { createServer, type Server } from "node:http";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { requestColumns, requestRow } from "../../src/cli/kvctl/requests-command.js";
import { routerNodes, routerUrl } from "../../src/cli/kvctl/router-nodes.js";
import { buildStatus, renderStatus } from "../../src/cli/kvctl/status-report.js";
import { renderTable } from "../../src/cli/kvctl/table.js";
import type { RequestInfo__Output } from "../../src/wire/generated/kvbridge/v1/RequestInfo.js";
import type { Stats__Output } from "../../src/wire/generated/kvbridge/v1/Stats.js";

function request(over: Partial<RequestInfo__Output>): RequestInfo__Output {
  return { requestId: "r", phase: "allocating", keysWritten: 1, keysDeduped: 0, keysPending: 1, bytes: 0, ageMs: 100, leaseLeftMs: 5_000, peer: "127.0.0.1:1", kind: "kv", model: "", promptTokens: 0, tokensGenerated: 0, chunks: 0, ...over };
}

const model = { id: "m1", state: "loaded", sequencesInUse: 1, sequencesTotal: 4, prefixCacheChunks: 3, prefixCacheBytes: 3 * 1024 * 1024, prefixCacheBudgetBytes: 256 * 1024 * 1024, prefixCacheLookups: 4, prefixCacheHitChunks: 2 };

function prefillStats(): Stats__Output {
  return {
    nodeId: "prefill-a", role: "prefill", version: "0.1.0", protocolVersion: 1, generation: 0, transports: ["tcp"],
    slotBytes: 0, slotsTotal: 0, slotsFree: 0, slotsWriting: 0, slotsReady: 0, slotsQuarantined: 0, slotsReserved: 0,
    entries: 0, activeRequests: 2, dedupHits: 0, dedupMisses: 0, bytesReceived: 0, leasesExpired: 0,
    requestsCommitted: 0, requestsAborted: 0, evictions: 0, fingerprint: "fp", serving: true, activeGenerations: 0, models: [model], pushesInFlight: 2, transportsNotOffered: [], capabilities: [],
  };
}

describe("request table columns", () => {
  it("KV requests only: the KV columns as before", () => {
    const rows = [request({ requestId: "a" })].map(requestRow);
    expect(renderTable(requestColumns(rows, false), rows).split("\n")[0]).toMatch(/^REQUEST +PHASE +WRITTEN +DEDUPED +PENDING +BYTES +AGE +LEASE LEFT +PEER$/);
  });

  it("a generation and a push: KIND, MODEL, TOKENS join; KV cells of their rows are '-'", () => {
    const rows = [
      request({ requestId: "g", kind: "generate", phase: "decoding", model: "m1", tokensGenerated: 42, leaseLeftMs: -1, peer: "", keysWritten: 0, keysPending: 0 }),
      request({ requestId: "p", kind: "prefill", phase: "pushing", model: "m1", promptTokens: 300, chunks: 5, leaseLeftMs: -1, peer: "10.0.0.7:50061", keysWritten: 0, keysPending: 0 }),
      request({ requestId: "k" }),
    ].map(requestRow);
    const lines = renderTable(requestColumns(rows, true), rows).trimEnd().split("\n");
    expect(lines[0]).toMatch(/^REQUEST +KIND +PHASE +MODEL +TOKENS +WRITTEN +DEDUPED +PENDING +BYTES +AGE +LEASE LEFT +PEER +BYTES \(EXACT\) +AGE MS +LEASE MS +PROMPT TOKENS +CHUNKS$/);
    expect(lines[1]).toMatch(/^g +generate +DECODING +m1 +42 +- +- +- +- +100ms +- +- +- +100 +- +0 +-$/);
    expect(lines[2]).toMatch(/^p +prefill +PUSHING +m1 +- +- +- +- +- +100ms +- +10\.0\.0\.7:50061 +- +100 +- +300 +5$/);
    expect(lines[3]).toMatch(/^k +kv +ALLOCATING +- +- +1 +0 +1 +0 B +100ms +5\.00s +127\.0\.0\.1:1 +0 +100 +5000 +- +-$/);
  });

  it("a node that lists no kind holds KV requests", () => {
    expect(requestRow(request({ kind: "" })).kind).toBe("kv");
  });
});

describe("prefill status block", () => {
  it("models with sequences, the prefix cache, pushes in flight; no pool", () => {
    const text = renderStatus(buildStatus("p:1", { stats: prefillStats(), at: 1 }, "SERVING", [], { nearExpiryMs: 1 }));
    expect(text).toBe(
      "p:1  prefill-a  prefill  v0.1.0  protocol 1  SERVING  tcp\n" +
        "  models       m1 loaded 1/4 sequences\n" +
        "  prefix cache 3 chunks, 3 MiB of 256 MiB, 2 chunk(s) found in 4 lookup(s)\n" +
        "  pushes       2 in flight\n",
    );
  });
});

describe("router node list", () => {
  let server: Server | undefined;
  afterEach(async () => {
    if (server) await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
  });
  const serve = async (status: number, body: string): Promise<string> => {
    server = createServer((req, res) => {
      res.writeHead(req.headers.authorization === "Bearer good" ? 200 : status, { "content-type": "application/json" }).end(body);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  };

  it("503 still lists the nodes, each with its role, rotation and health", async () => {
    const url = await serve(503, JSON.stringify({ status: "not ready", draining: true, prefill: [{ target: "a:1", inRotation: true, health: "SERVING" }], decode: [{ target: "b:2", inRotation: false, health: "unreachable" }] }));
    expect(await routerNodes(url, { timeoutMs: 2_000 })).toEqual({
      router: url,
      status: "not ready",
      draining: true,
      nodes: [
        { role: "prefill", address: "a:1", in_rotation: true, health: "SERVING" },
        { role: "decode", address: "b:2", in_rotation: false, health: "unreachable" },
      ],
    });
  });

  it("401 asks for --api-key; the key is sent as a Bearer token", async () => {
    const url = await serve(401, JSON.stringify({ status: "ready", prefill: [], decode: [] }));
    await expect(routerNodes(url, { timeoutMs: 2_000 })).rejects.toMatchObject({ code: "PERMISSION_DENIED", message: expect.stringContaining("--api-key") });
    await expect(routerNodes(url, { timeoutMs: 2_000, apiKey: "good" })).resolves.toMatchObject({ status: "ready", nodes: [] });
  });

  it("something else on the port, or not a URL: clear errors", async () => {
    const url = await serve(404, "not found");
    await expect(routerNodes(url, { timeoutMs: 2_000 })).rejects.toMatchObject({ code: "UNAVAILABLE", message: expect.stringContaining("is it a kvbridge router") });
    expect(() => routerUrl("ftp://x")).toThrow(/http:\/\/ or https:\/\//);
    expect(routerUrl("127.0.0.1:8080").href).toBe("http://127.0.0.1:8080/");
  });
});
