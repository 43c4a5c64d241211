// The metric set and its HTTP endpoint through real prom-client and a real loopback HTTP server:
// names and labels, one set per registry, series only for the parts a process runs, receiver values
// mirrored (never double counted), and /metrics served with the Prometheus content type.
import { createServer, request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { nodeMetrics, recordFailure, recordPush, recordRouterRequest, Registry, type ReceiverSnapshot } from "../../src/observability/metrics.js";
import { metricsRoute, startMetricsServer, type MetricsServer } from "../../src/observability/metrics-server.js";

function snapshot(over: Partial<ReceiverSnapshot> = {}): ReceiverSnapshot {
  return {
    slots: { free: 5, reserved: 1, writing: 2, ready: 1, quarantined: 1 },
    slotBytes: 4096, activeRequests: 2, entries: 3, dedupHits: 7, dedupMisses: 3, leasesExpired: 1,
    holdsExpired: 0, requestsCommitted: 4, evictions: 2, serving: true, ...over,
  };
}

/** The value of one sample line `name{labels} value` in an exposition text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function get(url: string, method = "GET"): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end();
  });
}

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("node metrics", () => {
  it("is one set per registry: asking twice returns the same metrics, a second registry gets its own", () => {
    const reg = new Registry();
    expect(nodeMetrics(reg)).toBe(nodeMetrics(reg));
    expect(nodeMetrics(new Registry())).not.toBe(nodeMetrics(reg));
  });

  it("exports only what a process uses: a router registry has router series and no pool series", async () => {
    const m = nodeMetrics(new Registry());
    recordRouterRequest(m, "ok", 0.12);
    recordRouterRequest(m, "unavailable", null);
    const text = await m.registry.metrics();
    expect(sample(text, 'kvbridge_router_requests_total{outcome="ok"}')).toBe(1);
    expect(sample(text, 'kvbridge_router_requests_total{outcome="unavailable"}')).toBe(1);
    expect(sample(text, "kvbridge_router_ttft_seconds_count")).toBe(1);
    expect(sample(text, 'kvbridge_router_ttft_seconds_bucket{le="0.25"}')).toBe(1);
    expect(sample(text, 'kvbridge_router_ttft_seconds_bucket{le="0.1"}')).toBe(0);
    expect(text).not.toContain("kvbridge_pool_slots");
    expect(text).not.toContain("kvbridge_dedup_hits_total");
  });

  it("records a sender's pushes by transport and its failures by error code", async () => {
    const m = nodeMetrics(new Registry());
    recordPush(m, { transport: "tcp", bytesSent: 1000, writeMs: 3 });
    recordPush(m, { transport: "tcp", bytesSent: 500, writeMs: 2 });
    recordPush(m, { transport: "ucx", bytesSent: 0, writeMs: 0 }); // all deduped: nothing moved
    recordFailure(m, "push", new KvbridgeError("RESOURCE_EXHAUSTED", "pool full"));
    recordFailure(m, "push", new Error("boom"));
    const text = await m.registry.metrics();
    expect(sample(text, 'kvbridge_transfer_bytes_total{transport="tcp",direction="sent"}')).toBe(1500);
    expect(sample(text, 'kvbridge_transfer_seconds_count{transport="tcp",direction="sent"}')).toBe(2);
    expect(sample(text, 'kvbridge_transfer_seconds_sum{transport="tcp",direction="sent"}')).toBeCloseTo(0.005);
    expect(text).not.toContain('transport="ucx"');
    expect(sample(text, 'kvbridge_failures_total{op="push",reason="resource_exhausted"}')).toBe(1);
    expect(sample(text, 'kvbridge_failures_total{op="push",reason="internal"}')).toBe(1);
  });

  it("mirrors an attached receiver's counts at scrape time: set, not added, however often scraped", async () => {
    const m = nodeMetrics(new Registry());
    let snap = snapshot();
    const detach = m.attachReceiver(() => snap);
    for (let i = 0; i < 3; i++) await m.registry.metrics();
    let text = await m.registry.metrics();
    for (const [state, n] of Object.entries(snap.slots)) expect(sample(text, `kvbridge_pool_slots{state="${state}"}`)).toBe(n);
    expect(sample(text, "kvbridge_dedup_hits_total")).toBe(7);
    expect(sample(text, "kvbridge_dedup_misses_total")).toBe(3);
    expect(sample(text, "kvbridge_leases_expired_total")).toBe(1);
    expect(sample(text, "kvbridge_evictions_total")).toBe(2);
    expect(sample(text, "kvbridge_requests_active")).toBe(2);
    expect(sample(text, "kvbridge_pool_slot_size_bytes")).toBe(4096);
    expect(sample(text, "kvbridge_serving")).toBe(1);
    snap = snapshot({ dedupHits: 9, serving: false, slots: { free: 0, reserved: 0, writing: 10, ready: 0, quarantined: 0 } });
    text = await m.registry.metrics();
    expect(sample(text, "kvbridge_dedup_hits_total")).toBe(9);
    expect(sample(text, "kvbridge_serving")).toBe(0);
    expect(sample(text, 'kvbridge_pool_slots{state="writing"}')).toBe(10);
    detach();
  });

  it("sums several attached receivers", async () => {
    const m = nodeMetrics(new Registry());
    m.attachReceiver(() => snapshot());
    m.attachReceiver(() => snapshot({ dedupHits: 1 }));
    const text = await m.registry.metrics();
    expect(sample(text, "kvbridge_dedup_hits_total")).toBe(8);
    expect(sample(text, 'kvbridge_pool_slots{state="free"}')).toBe(10);
  });
});

describe("metrics server", () => {
  it("serves GET /metrics in the Prometheus text format on the port it bound", async () => {
    const m = nodeMetrics(new Registry(), { defaultMetrics: true });
    recordRouterRequest(m, "ok");
    server = await startMetricsServer({ host: "127.0.0.1", port: 0 }, m.registry);
    expect(server.port).toBeGreaterThan(0);
    expect(server.address).toBe(`127.0.0.1:${server.port}`);
    const res = await get(`http://${server.address}/metrics`);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(res.body, 'kvbridge_router_requests_total{outcome="ok"}')).toBe(1);
    expect(res.body).toContain("# TYPE kvbridge_router_requests_total counter");
    expect(res.body).toContain("process_cpu_user_seconds_total");
  });

  it("answers other paths 404 and other methods 405, and a second close is a no-op", async () => {
    server = await startMetricsServer({ host: "127.0.0.1", port: 0 }, new Registry());
    expect((await get(`http://${server.address}/`)).status).toBe(404);
    expect((await get(`http://${server.address}/metrics`, "POST")).status).toBe(405);
    await server.close();
    await server.close();
    await expect(get(`http://${server.address}/metrics`)).rejects.toThrow(/ECONNREFUSED/);
  });

  it("serves /metrics as a route of another HTTP server and leaves its other paths alone", async () => {
    const m = nodeMetrics(new Registry());
    recordRouterRequest(m, "cancelled");
    const route = metricsRoute(m.registry);
    const api = createServer((req, res) => {
      if (!route(req, res)) res.writeHead(200).end("api");
    });
    await new Promise<void>((r) => api.listen(0, "127.0.0.1", () => r()));
    try {
      const base = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
      const metrics = await get(`${base}/metrics?x=1`);
      expect(metrics.status).toBe(200);
      expect(sample(metrics.body, 'kvbridge_router_requests_total{outcome="cancelled"}')).toBe(1);
      expect((await get(`${base}/v1/models`)).body).toBe("api");
    } finally {
      await new Promise<void>((r) => api.close(() => r()));
    }
  });

  it("refuses an address already in use with a clear UNAVAILABLE", async () => {
    server = await startMetricsServer({ host: "127.0.0.1", port: 0 }, new Registry());
    await expect(startMetricsServer({ host: "127.0.0.1", port: server.port }, new Registry())).rejects.toMatchObject({
      code: "UNAVAILABLE",
      message: expect.stringMatching(/cannot serve metrics on 127\.0\.0\.1:\d+.*--metrics-listen/),
    });
  });
});
