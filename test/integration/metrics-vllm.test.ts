// /metrics of a real decode process and a real router process, scraped over HTTP after real KV
// transfers: both pass `promtool check metrics` (lint included), export no nodejs_*_total gauge, and
// the decode node exports its pool the way vLLM exports its KV cache (usage ratio, prefix-cache
// queries and hits) while the router exports the request series a vLLM dashboard queries.
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvSender } from "../../src/transfer/sender.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { spawnKvbridge, type RunningProcess } from "../support/processes.js";

const promtool = spawnSync("promtool", ["--version"]).status === 0;
const skipped = promtool ? "" : " (skipped: promtool is not installed; Debian package prometheus)";

let decode: DecodeProcess;
let router: RunningProcess;
let decodeMetrics: string;
let routerMetrics: string;
const tcp = new TcpSenderTransport({ connections: 1 });
const sender = new KvSender({ fingerprint: "", transports: { tcp } });

async function scrape(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  expect(res.status).toBe(200);
  return res.text();
}

function value(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function promtoolCheck(text: string): { status: number | null; output: string } {
  const res = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  return { status: res.status, output: res.stdout + res.stderr };
}

beforeAll(async () => {
  decode = await startDecodeProcess(["--pool-slots", "8", "--metrics-listen", "127.0.0.1:0"]);
  const serving = JSON.parse(decode.proc.lines.find((l) => l.includes("decode node serving"))!) as { metrics: string };
  decodeMetrics = `http://${serving.metrics}/metrics`;
  // The router serves /metrics next to its API; a prefill address nothing listens on is enough here.
  router = spawnKvbridge(["router", "--listen", "127.0.0.1:0", "--prefill", "127.0.0.1:1", "--decode", decode.grpc]);
  const line = await router.waitForLine(/router serving/, 60_000);
  routerMetrics = `${(JSON.parse(line) as { url: string }).url}/metrics`;
  const shared = [{ key: "v-p0", data: Buffer.alloc(8_000, 1) }];
  await sender.push(decode.grpc, "v-1", [...shared, { key: "v-1-1", data: Buffer.alloc(8_000, 2) }]);
  await sender.push(decode.grpc, "v-2", [...shared, { key: "v-2-1", data: Buffer.alloc(8_000, 3) }]);
}, 120_000);

afterAll(async () => {
  await sender.close();
  await tcp.close();
  await router?.stop();
  await decode?.proc.stop();
});

describe("vLLM-style metrics on real nodes", () => {
  it.skipIf(!promtool)(`a decode node's /metrics after transfers passes promtool check metrics${skipped}`, async () => {
    const text = await scrape(decodeMetrics);
    expect(text).toContain("kvbridge_transfer_bytes_total");
    const r = promtoolCheck(text);
    expect(r.output).toBe("");
    expect(r.status).toBe(0);
  });

  it.skipIf(!promtool)(`a router's /metrics passes promtool check metrics${skipped}`, async () => {
    const text = await scrape(routerMetrics);
    expect(text).toContain("# TYPE kvbridge_e2e_request_latency_seconds histogram");
    const r = promtoolCheck(text);
    expect(r.output).toBe("");
    expect(r.status).toBe(0);
  });

  it("neither exports the nodejs_*_total gauges promtool's lint refuses; both keep the per-type gauges", async () => {
    for (const text of [await scrape(decodeMetrics), await scrape(routerMetrics)]) {
      expect(text).not.toMatch(/^# TYPE nodejs_active_(handles|requests|resources)_total /m);
      expect(text).toMatch(/^# TYPE nodejs_active_handles gauge$/m);
    }
  });

  it("the decode pool is exported as a KV cache: usage ratio and prefix-cache queries and hits match the transfers", async () => {
    const text = await scrape(decodeMetrics);
    // An engine-less node serves no model: model_name is empty. 4 keys looked up, 1 already there.
    expect(value(text, 'kvbridge_prefix_cache_queries_total{model_name=""}')).toBe(4);
    expect(value(text, 'kvbridge_prefix_cache_hits_total{model_name=""}')).toBe(1);
    // 3 READY chunks (held for decode) of 8 slots.
    expect(value(text, 'kvbridge_kv_pool_usage_ratio{model_name=""}')).toBeCloseTo(3 / 8);
    expect(text).not.toContain("kvbridge_e2e_request_latency_seconds");
  });

  it("the router exports the request series of a vLLM dashboard and no pool series", async () => {
    const text = await scrape(routerMetrics);
    for (const name of [
      "kvbridge_prompt_tokens_total",
      "kvbridge_generation_tokens_total",
      "kvbridge_request_success_total",
      "kvbridge_time_to_first_token_seconds",
      "kvbridge_time_per_output_token_seconds",
      "kvbridge_inter_token_latency_seconds",
      "kvbridge_request_queue_time_seconds",
      "kvbridge_request_prefill_time_seconds",
      "kvbridge_request_decode_time_seconds",
      "kvbridge_num_requests_running",
      "kvbridge_num_requests_waiting",
    ]) {
      expect(text).toMatch(new RegExp(`^# TYPE ${name} `, "m"));
    }
    expect(text).not.toContain("kvbridge_kv_pool_usage_ratio");
  });
});
