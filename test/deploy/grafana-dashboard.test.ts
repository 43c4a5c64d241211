// deploy/grafana/kvbridge-dashboard.json against what kvbridge really exports: a real prefill, decode
// and router (separate processes on the project's model) serve one completion, their /metrics are
// scraped and parsed, and every metric name in every PromQL expression of the dashboard must be a
// series one of them exports (a histogram's _bucket/_sum/_count against a histogram family).
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPdCluster, type PdCluster } from "../support/pd-cluster.js";
import { repoRoot } from "../support/processes.js";

interface Target {
  expr: string;
}
interface Panel {
  title: string;
  type: string;
  targets?: Target[];
  panels?: Panel[];
}

const dashboard = JSON.parse(readFileSync(path.join(repoRoot, "deploy/grafana/kvbridge-dashboard.json"), "utf8")) as { panels: Panel[]; title: string };

/** Every (panel title, expr) of the dashboard, rows' nested panels included. */
function queries(panels: readonly Panel[]): Array<{ panel: string; expr: string }> {
  return panels.flatMap((p) => [...(p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })), ...queries(p.panels ?? [])]);
}

/** PromQL words that are not metric names: aggregations, functions, keywords. */
const PROMQL_WORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"]);

/**
 * The metric names an expression selects: string literals, label matchers ({...}), ranges ([...])
 * and grouping lists (by (...)) removed, then every identifier not called as a function and not a
 * PromQL keyword.
 */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = new Set<string>();
  for (const m of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*(?=\s*(\()?)/g)) {
    const word = m[0];
    if (m[1] === "(" || PROMQL_WORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}

/** Metric families of an exposition by name, with their TYPE. */
function familiesOf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

/** Whether `name` is a series of one of `families` (histogram suffixes against histogram families). */
function exported(name: string, families: Map<string, string>): boolean {
  if (families.has(name)) return true;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m !== null && families.get(m[1]!) === "histogram";
}

let cluster: PdCluster;
const exposition = new Map<string, Map<string, string>>();

function metricsAddress(lines: readonly string[], marker: string): string {
  const line = lines.find((l) => l.includes(marker));
  const addr = line ? (JSON.parse(line) as { metrics?: string }).metrics : undefined;
  if (!addr) throw new Error(`no metrics address in the "${marker}" line`);
  return addr;
}

beforeAll(async () => {
  cluster = await startPdCluster({ decodeArgs: ["--metrics-listen", "127.0.0.1:0"], prefillArgs: ["--metrics-listen", "127.0.0.1:0"] });
  // One real completion, so every series a request touches has moved on the nodes that record it.
  const res = await fetch(`${cluster.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: "the kv cache moves from prefill to decode", max_tokens: 4 }),
    signal: AbortSignal.timeout(120_000),
  });
  expect(res.status).toBe(200);
  const urls = {
    router: `${cluster.url}/metrics`,
    decode: `http://${metricsAddress(cluster.decode.lines, "decode node serving")}/metrics`,
    prefill: `http://${metricsAddress(cluster.prefill.lines, "prefill node serving")}/metrics`,
  };
  for (const [role, url] of Object.entries(urls)) {
    const r = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    expect(r.status, `${role} ${url}`).toBe(200);
    exposition.set(role, familiesOf(await r.text()));
  }
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("the Grafana dashboard", () => {
  const all = queries(dashboard.panels);

  it("finds the metric names of a PromQL expression, and only them", () => {
    expect(metricNames('histogram_quantile(0.99, sum by(le) (rate(kvbridge_e2e_request_latency_seconds_bucket{model_name="$model_name"}[$__rate_interval])))')).toEqual([
      "kvbridge_e2e_request_latency_seconds_bucket",
    ]);
    expect(metricNames('sum(rate(a_total{x=~"b|"}[5m])) / sum(rate(c_total[5m])) and on(instance) d')).toEqual(["a_total", "c_total", "d"]);
  });

  it("has a query on every panel, and covers vLLM's dashboard series by their kvbridge names", () => {
    expect(all.length).toBeGreaterThanOrEqual(30);
    for (const p of dashboard.panels) expect(p.targets?.length ?? 0, p.title).toBeGreaterThan(0);
    const used = new Set(all.flatMap((q) => metricNames(q.expr)));
    for (const name of [
      "kvbridge_e2e_request_latency_seconds_bucket",
      "kvbridge_prompt_tokens_total",
      "kvbridge_generation_tokens_total",
      "kvbridge_time_per_output_token_seconds_bucket",
      "kvbridge_num_requests_running",
      "kvbridge_num_requests_waiting",
      "kvbridge_time_to_first_token_seconds_bucket",
      "kvbridge_kv_pool_usage_ratio",
      "kvbridge_request_prompt_tokens_bucket",
      "kvbridge_request_generation_tokens_bucket",
      "kvbridge_request_success_total",
      "kvbridge_request_queue_time_seconds_sum",
      "kvbridge_request_prefill_time_seconds_sum",
      "kvbridge_request_decode_time_seconds_sum",
      "kvbridge_request_params_max_tokens_sum",
      "kvbridge_prefix_cache_hits_total",
      "kvbridge_prefix_cache_queries_total",
      "kvbridge_transfer_bytes_total",
      "kvbridge_transfer_seconds_bucket",
    ]) {
      expect(used, name).toContain(name);
    }
  });

  it("a name no node exports is caught", () => {
    const families = new Map([...exposition.values()].flatMap((f) => [...f]));
    expect(exported("kvbridge_no_such_series_total", families)).toBe(false);
    expect(exported("kvbridge_pool_slots_bucket", families)).toBe(false); // a gauge has no buckets
    expect(exported("kvbridge_transfer_seconds_bucket", families)).toBe(true);
  });

  it("every metric name in every query is a series the router, the decode node or the prefill node exports", () => {
    const families = new Map([...exposition.values()].flatMap((f) => [...f]));
    const missing: string[] = [];
    let checked = 0;
    for (const q of all) {
      for (const name of metricNames(q.expr)) {
        checked++;
        if (!exported(name, families)) missing.push(`${q.panel}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(all.length);
  });
});
