// The vLLM-style serving series: what one finished request records (tokens, finish reason, latency
// per phase, TPOT and every inter-token gap), the queue gauges, the decode pool seen as a KV cache,
// the series each role registers when it declares itself, model_name on transfers once declared, and
// the default process metrics without the three that fail `promtool check metrics`.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { DROPPED_DEFAULT_METRICS, nodeMetrics, recordPush, Registry, type NodeMetrics, type ReceiverSnapshot } from "../../src/observability/metrics.js";
import { declareModel, declaredModel, recordGeneration, trackRequest } from "../../src/observability/serving-records.js";

function value(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function families(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => l.startsWith("# TYPE "))
    .map((l) => l.split(" ")[2]!);
}

function declareRole(m: NodeMetrics, role: string): void {
  m.nodeInfo.set({ node_id: `n-${role}`, role, version: "0.0.0", protocol_version: "1" }, 1);
}

const snapshot = (over: Partial<ReceiverSnapshot> = {}): ReceiverSnapshot => ({
  slots: { free: 5, reserved: 1, writing: 1, ready: 3, quarantined: 0 },
  slotBytes: 1024,
  activeRequests: 1,
  entries: 4,
  dedupHits: 3,
  dedupMisses: 9,
  leasesExpired: 0,
  holdsExpired: 0,
  requestsCommitted: 2,
  evictions: 0,
  serving: true,
  ...over,
});

const promtool = spawnSync("promtool", ["--version"]).status === 0;

describe("serving metrics", () => {
  it("one finished request moves tokens, success by finish reason, e2e/TTFT/TPOT/ITL, queue, prefill and decode time", async () => {
    const m = nodeMetrics(new Registry());
    recordGeneration(m, {
      model: "tiny",
      promptTokens: 40,
      generationTokens: 5,
      finishReason: "length",
      e2eMs: 1_000,
      ttftMs: 200,
      itlMs: [150, 250, 200, 200],
      queueMs: 20,
      prefillMs: 150,
      decodeMs: 830,
      maxTokens: 5,
    });
    recordGeneration(m, { model: "tiny", promptTokens: 2, generationTokens: 1, finishReason: "stop", e2eMs: 100, ttftMs: 100, queueMs: 1, prefillMs: 50, decodeMs: 49 });
    const t = await m.registry.metrics();
    expect(value(t, 'kvbridge_prompt_tokens_total{model_name="tiny"}')).toBe(42);
    expect(value(t, 'kvbridge_generation_tokens_total{model_name="tiny"}')).toBe(6);
    expect(value(t, 'kvbridge_request_success_total{model_name="tiny",finished_reason="length"}')).toBe(1);
    expect(value(t, 'kvbridge_request_success_total{model_name="tiny",finished_reason="stop"}')).toBe(1);
    expect(value(t, 'kvbridge_e2e_request_latency_seconds_sum{model_name="tiny"}')).toBeCloseTo(1.1);
    expect(value(t, 'kvbridge_time_to_first_token_seconds_count{model_name="tiny"}')).toBe(2);
    // TPOT: (1000 - 200) ms over the 4 tokens after the first; a one-token request has none.
    expect(value(t, 'kvbridge_time_per_output_token_seconds_count{model_name="tiny"}')).toBe(1);
    expect(value(t, 'kvbridge_time_per_output_token_seconds_sum{model_name="tiny"}')).toBeCloseTo(0.2);
    expect(value(t, 'kvbridge_inter_token_latency_seconds_count{model_name="tiny"}')).toBe(4);
    expect(value(t, 'kvbridge_inter_token_latency_seconds_bucket{le="0.2",model_name="tiny"}')).toBe(3);
    expect(value(t, 'kvbridge_request_queue_time_seconds_sum{model_name="tiny"}')).toBeCloseTo(0.021);
    expect(value(t, 'kvbridge_request_prefill_time_seconds_sum{model_name="tiny"}')).toBeCloseTo(0.2);
    expect(value(t, 'kvbridge_request_decode_time_seconds_sum{model_name="tiny"}')).toBeCloseTo(0.879);
    expect(value(t, 'kvbridge_request_prompt_tokens_bucket{le="50",model_name="tiny"}')).toBe(2);
    expect(value(t, 'kvbridge_request_generation_tokens_sum{model_name="tiny"}')).toBe(6);
    // Only the request that gave max_tokens is counted there.
    expect(value(t, 'kvbridge_request_params_max_tokens_count{model_name="tiny"}')).toBe(1);
  });

  it("a tracked request is waiting, then running, then gone; a second ended() or running() changes nothing", async () => {
    const m = nodeMetrics(new Registry());
    const a = trackRequest(m, "tiny");
    const b = trackRequest(m, "tiny");
    const gauges = async (): Promise<[number | undefined, number | undefined]> => {
      const t = await m.registry.metrics();
      return [value(t, 'kvbridge_num_requests_waiting{model_name="tiny"}'), value(t, 'kvbridge_num_requests_running{model_name="tiny"}')];
    };
    expect(await gauges()).toEqual([2, 0]);
    a.running();
    a.running();
    expect(await gauges()).toEqual([1, 1]);
    b.ended();
    b.ended();
    b.running();
    expect(await gauges()).toEqual([0, 1]);
    a.ended();
    expect(await gauges()).toEqual([0, 0]);
  });

  it("a decode pool is a KV cache: usage ratio of non-free slots and prefix-cache queries and hits, labelled with the declared model", async () => {
    const m = nodeMetrics(new Registry());
    const detach = m.attachReceiver(() => snapshot());
    let t = await m.registry.metrics();
    // No engine declared yet: the series exist, with an empty model_name.
    expect(value(t, 'kvbridge_kv_pool_usage_ratio{model_name=""}')).toBeCloseTo(0.5);
    declareModel(m, "tiny");
    expect(declaredModel(m)).toBe("tiny");
    t = await m.registry.metrics();
    expect(value(t, 'kvbridge_kv_pool_usage_ratio{model_name="tiny"}')).toBeCloseTo(0.5);
    expect(value(t, 'kvbridge_kv_pool_usage_ratio{model_name=""}')).toBeUndefined();
    expect(value(t, 'kvbridge_prefix_cache_queries_total{model_name="tiny"}')).toBe(12);
    expect(value(t, 'kvbridge_prefix_cache_hits_total{model_name="tiny"}')).toBe(3);
    detach();
    t = await m.registry.metrics();
    expect(value(t, 'kvbridge_kv_pool_usage_ratio{model_name="tiny"}')).toBeCloseTo(0.5); // last value kept, not re-collected
  });

  it("declaring a role registers its series: the router's request series, the decode pool's, none of the other's", async () => {
    const router = nodeMetrics(new Registry());
    declareRole(router, "router");
    const r = families(await router.registry.metrics());
    for (const name of ["kvbridge_e2e_request_latency_seconds", "kvbridge_time_to_first_token_seconds", "kvbridge_num_requests_waiting", "kvbridge_request_success_total"]) {
      expect(r).toContain(name);
    }
    expect(r).not.toContain("kvbridge_kv_pool_usage_ratio");
    const decode = nodeMetrics(new Registry());
    declareRole(decode, "decode");
    decode.attachReceiver(() => snapshot());
    const d = families(await decode.registry.metrics());
    expect(d).toContain("kvbridge_kv_pool_usage_ratio");
    expect(d).toContain("kvbridge_prefix_cache_hits_total");
    expect(d).not.toContain("kvbridge_e2e_request_latency_seconds");
  });

  it("transfer series carry model_name once the node declared its model, and not before", async () => {
    const m = nodeMetrics(new Registry());
    recordPush(m, { transport: "tcp", bytesSent: 10, writeMs: 1 });
    declareModel(m, "tiny");
    recordPush(m, { transport: "tcp", bytesSent: 30, writeMs: 1 });
    const t = await m.registry.metrics();
    expect(value(t, 'kvbridge_transfer_bytes_total{transport="tcp",direction="sent"}')).toBe(10);
    expect(value(t, 'kvbridge_transfer_bytes_total{transport="tcp",direction="sent",model_name="tiny"}')).toBe(30);
  });

  it("default metrics leave out the nodejs_*_total gauges (their per-type gauges stay)", async () => {
    const m = nodeMetrics(new Registry(), { defaultMetrics: true });
    const f = families(await m.registry.metrics());
    for (const name of DROPPED_DEFAULT_METRICS) expect(f).not.toContain(name);
    expect(f).toContain("nodejs_active_handles");
    expect(f).toContain("process_resident_memory_bytes");
  });

  it.skipIf(!promtool)(`every role's exposition passes promtool check metrics${promtool ? "" : " (skipped: promtool is not installed)"}`, async () => {
    const m = nodeMetrics(new Registry(), { defaultMetrics: true });
    for (const role of ["router", "decode", "prefill"]) declareRole(m, role);
    m.attachReceiver(() => snapshot());
    declareModel(m, "tiny");
    recordGeneration(m, { model: "tiny", promptTokens: 3, generationTokens: 2, finishReason: "stop", e2eMs: 10, ttftMs: 5, itlMs: [5], queueMs: 1, prefillMs: 2, decodeMs: 7 });
    trackRequest(m, "tiny");
    recordPush(m, { transport: "tcp", bytesSent: 10, writeMs: 1 });
    const res = spawnSync("promtool", ["check", "metrics"], { input: await m.registry.metrics(), encoding: "utf8" });
    expect(res.stdout + res.stderr).toBe("");
    expect(res.status).toBe(0);
  });
});
