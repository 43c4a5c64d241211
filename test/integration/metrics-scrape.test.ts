// /metrics of a real decode process scraped over HTTP while real transfers, refusals, aborts and
// lease expiries happen: every series moves by exactly what the traffic did, and the pool gauges
// agree with the node's own Inspect answer. The sender side is checked through its own registry.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeMetrics, recordPush, Registry } from "../../src/observability/metrics.js";
import { KvSender } from "../../src/transfer/sender.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { ucxAvailability, UcxSenderTransport } from "../../src/transport/ucx/index.js";
import { InspectClient } from "../../src/wire/inspect-client.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";

const T = { timeoutMs: 5_000 };
let node: DecodeProcess;
let metricsUrl: string;
let rx: ReceiverClient;
let inspect: InspectClient;
let generation: number;
const tcp = new TcpSenderTransport({ connections: 1 });
const sender = new KvSender({ fingerprint: "", transports: { tcp } });

async function scrape(): Promise<{ text: string; type: string }> {
  const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) });
  expect(res.status).toBe(200);
  return { text: await res.text(), type: res.headers.get("content-type") ?? "" };
}

/** The value of the sample `series` (name plus labels exactly as exported); undefined when absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function waitForValue(series: string, expected: number, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let { text } = await scrape();
  while (value(text, series) !== expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    ({ text } = await scrape());
  }
  return text;
}

function alloc(requestId: string, keys: string[], size = 100): Promise<unknown> {
  return rx.alloc({ requestId, keys, sizes: keys.map(() => size), batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation }, T);
}

beforeAll(async () => {
  node = await startDecodeProcess(["--pool-slots", "16", "--lease-ms", "800", "--quarantine-ms", "1500", "--hold-ms", "600000", "--metrics-listen", "127.0.0.1:0"]);
  const serving = JSON.parse(node.proc.lines.find((l) => l.includes("decode node serving"))!) as { metrics: string };
  metricsUrl = `http://${serving.metrics}/metrics`;
  rx = new ReceiverClient(node.grpc);
  inspect = new InspectClient(node.grpc);
  generation = (await rx.hello({ protocolVersion: 1, fingerprint: "" }, T)).generation;
});

afterAll(async () => {
  await sender.close();
  await tcp.close();
  rx?.close();
  inspect?.close();
  await node?.proc.stop();
});

describe("decode node /metrics", () => {
  it("starts with its identity, an idle pool, health SERVING and zeroed counters", async () => {
    const { text, type } = await scrape();
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    const stats = await inspect.getStats({}, T);
    expect(value(text, `kvbridge_node_info{node_id="${stats.nodeId}",role="decode",version="${stats.version}",protocol_version="${stats.protocolVersion}"}`)).toBe(1);
    expect(value(text, 'kvbridge_pool_slots{state="free"}')).toBe(16);
    for (const state of ["reserved", "writing", "ready", "quarantined"]) expect(value(text, `kvbridge_pool_slots{state="${state}"}`)).toBe(0);
    expect(value(text, "kvbridge_pool_slot_size_bytes")).toBe(256 * 1024);
    expect(value(text, "kvbridge_serving")).toBe(1);
    expect(value(text, "kvbridge_dedup_hits_total")).toBe(0);
    expect(value(text, "kvbridge_alloc_seconds_count")).toBe(0);
    expect(value(text, "kvbridge_leases_expired_total")).toBe(0);
    expect(text).toContain("# TYPE kvbridge_transfer_seconds histogram");
    expect(text).toContain("process_resident_memory_bytes");
    expect(text).not.toContain("kvbridge_router_");
  });

  it("moves with transfers: bytes and seconds by transport, dedup hits and misses, Alloc latency, pool gauges equal to Inspect", async () => {
    const senderMetrics = nodeMetrics(new Registry());
    const shared = [{ key: "m-p0", data: Buffer.alloc(10_000, 1) }, { key: "m-p1", data: Buffer.alloc(10_000, 2) }];
    const r1 = await sender.push(node.grpc, "m-1", [...shared, { key: "m-1-2", data: Buffer.alloc(10_000, 3) }]);
    const r2 = await sender.push(node.grpc, "m-2", [...shared, { key: "m-2-2", data: Buffer.alloc(5_000, 4) }]);
    recordPush(senderMetrics, r1);
    recordPush(senderMetrics, r2);
    expect(r2.deduped).toBe(2);

    const { text } = await scrape();
    expect(value(text, 'kvbridge_transfer_bytes_total{transport="tcp",direction="received"}')).toBe(35_000);
    expect(value(text, 'kvbridge_transfer_seconds_count{transport="tcp",direction="received"}')).toBe(2);
    expect(value(text, 'kvbridge_transfer_seconds_sum{transport="tcp",direction="received"}')).toBeGreaterThan(0);
    expect(value(text, "kvbridge_dedup_hits_total")).toBe(2);
    expect(value(text, "kvbridge_dedup_misses_total")).toBe(4);
    expect(value(text, "kvbridge_alloc_seconds_count")).toBe(2);
    expect(value(text, 'kvbridge_alloc_seconds_bucket{le="+Inf"}')).toBe(2);
    expect(value(text, "kvbridge_requests_committed_total")).toBe(2);
    expect(value(text, "kvbridge_requests_active")).toBe(2);
    const s = await inspect.getStats({}, T);
    expect(value(text, 'kvbridge_pool_slots{state="ready"}')).toBe(s.slotsReady);
    expect(value(text, 'kvbridge_pool_slots{state="free"}')).toBe(s.slotsFree - s.slotsReserved);
    expect(s.slotsReady).toBe(4);

    const sent = await senderMetrics.registry.metrics();
    expect(value(sent, 'kvbridge_transfer_bytes_total{transport="tcp",direction="sent"}')).toBe(35_000);
    expect(value(sent, 'kvbridge_transfer_seconds_count{transport="tcp",direction="sent"}')).toBe(2);

    await rx.release({ requestId: "m-1" }, T);
    await rx.release({ requestId: "m-2" }, T);
    expect(value((await scrape()).text, "kvbridge_requests_active")).toBe(0);
  });

  it("counts refusals by operation and code, and aborts by end-reason kind", async () => {
    await expect(alloc("m-huge", Array.from({ length: 17 }, (_, i) => `m-h${i}`))).rejects.toMatchObject({ code: "RESOURCE_EXHAUSTED" });
    await expect(rx.commit({ requestId: "m-never" }, T)).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(inspect.listEntries({ state: "bogus" }, T)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await alloc("m-3", ["m-3-0", "m-3-1"]);
    await rx.abort({ requestId: "m-3", reason: "sender gave up" }, T);
    const { text } = await scrape();
    expect(value(text, 'kvbridge_failures_total{op="alloc",reason="resource_exhausted"}')).toBe(1);
    expect(value(text, 'kvbridge_failures_total{op="commit",reason="not_found"}')).toBe(1);
    expect(value(text, 'kvbridge_failures_total{op="list_entries",reason="invalid_argument"}')).toBe(1);
    expect(value(text, 'kvbridge_aborts_total{reason="sender_abort"}')).toBe(1);
    // Each refused call left one line with its operation, request id and code (the interceptors' log).
    const refusedLine = node.proc.lines.find((l) => l.includes('"rpc refused"') && l.includes('"requestId":"m-never"'));
    expect(refusedLine, "no log line for the refused Commit").toBeDefined();
    expect(JSON.parse(refusedLine!)).toMatchObject({ rpc: "/kvbridge.v1.KvReceiver/Commit", code: "not_found" });
    // The aborted writes' slots are quarantined (a late write may still land), then come back.
    expect(value(text, 'kvbridge_pool_slots{state="quarantined"}')).toBe(2);
    const later = await waitForValue('kvbridge_pool_slots{state="quarantined"}', 0);
    expect(value(later, 'kvbridge_pool_slots{state="quarantined"}')).toBe(0);
  });

  it("counts a lease the sweeper expired", async () => {
    await alloc("m-4", ["m-4-0"]);
    const expired = await waitForValue("kvbridge_leases_expired_total", 1);
    expect(value(expired, "kvbridge_leases_expired_total")).toBe(1);
    expect(value(expired, "kvbridge_requests_active")).toBe(0);
    // An expiry is not an abort: the abort count is still the one from the test above.
    expect(value(expired, 'kvbridge_aborts_total{reason="sender_abort"}')).toBe(1);
  });

  const ucx = ucxAvailability();
  it.skipIf(!ucx.available)(`counts UCX transfers, which land without the receiver's CPU, at their commit${ucx.available ? "" : " (UCX not available on this machine)"}`, async () => {
    const stats = await inspect.getStats({}, T);
    if (!stats.transports.includes("ucx")) return expect.fail(`the decode process offers ${stats.transports.join(",")}: its UCX data plane did not start (see its log)`);
    const transport = UcxSenderTransport.create();
    const ucxSender = new KvSender({ fingerprint: "", transports: { ucx: transport }, preference: "ucx" });
    try {
      const before = (await scrape()).text;
      const res = await ucxSender.push(node.grpc, "m-ucx", [{ key: "m-u0", data: Buffer.alloc(30_000, 7) }, { key: "m-u1", data: Buffer.alloc(12_345, 8) }]);
      expect(res.transport).toBe("ucx");
      const after = (await scrape()).text;
      const series = 'kvbridge_transfer_bytes_total{transport="ucx",direction="received"}';
      expect((value(after, series) ?? 0) - (value(before, series) ?? 0)).toBe(42_345);
      expect(value(after, 'kvbridge_transfer_seconds_count{transport="ucx",direction="received"}')).toBe(1);
      // Inspect (and so kvctl) counts them too, once: a retried Commit adds nothing.
      expect((await inspect.getStats({}, T)).bytesReceived - stats.bytesReceived).toBe(42_345);
      await rx.commit({ requestId: "m-ucx" }, T);
      expect((await inspect.getStats({}, T)).bytesReceived - stats.bytesReceived).toBe(42_345);
      const listed = await inspect.listRequests({}, T);
      expect(listed.requests.find((r) => r.requestId === "m-ucx")?.bytes).toBe(42_345);
      await rx.release({ requestId: "m-ucx" }, T);
    } finally {
      await ucxSender.close();
      await transport.close();
    }
  });
});
