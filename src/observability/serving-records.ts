// Small typed recording functions over the serving metrics (serving-metrics.ts): what the router
// records when a completion request ends, the queue it tracks while requests wait and run, and the
// model a node declares once its engine is known. Each records one event in one synchronous step.
import type { NodeMetrics } from "./metrics.js";
import { servingMetrics, type DecodePoolSnapshot, type GenerationRecord } from "./serving-metrics.js";

export type { DecodePoolSnapshot, GenerationRecord } from "./serving-metrics.js";

const seconds = (ms: number): number => Math.max(0, ms) / 1000;

/**
 * Router: one completion request that finished with a completion (a failed or cancelled one is
 * counted by recordRouterRequest only, like vLLM's request_success counts successes).
 */
export function recordGeneration(m: NodeMetrics, g: GenerationRecord): void {
  const s = servingMetrics(m.registry);
  const model = { model_name: g.model };
  s.promptTokens.inc(model, g.promptTokens);
  s.generationTokens.inc(model, g.generationTokens);
  s.requestSuccess.inc({ model_name: g.model, finished_reason: g.finishReason });
  s.e2eLatency.observe(model, seconds(g.e2eMs));
  s.queueTime.observe(model, seconds(g.queueMs));
  s.prefillTime.observe(model, seconds(g.prefillMs));
  s.decodeTime.observe(model, seconds(g.decodeMs));
  s.requestPromptTokens.observe(model, g.promptTokens);
  s.requestGenerationTokens.observe(model, g.generationTokens);
  if (g.maxTokens !== undefined && g.maxTokens > 0) s.requestMaxTokens.observe(model, g.maxTokens);
  if (g.ttftMs !== null) {
    s.timeToFirstToken.observe(model, seconds(g.ttftMs));
    // vLLM's TPOT: the time after the first token spread over the tokens that followed it.
    if (g.generationTokens > 1) s.timePerOutputToken.observe(model, seconds(g.e2eMs - g.ttftMs) / (g.generationTokens - 1));
  }
  for (const gap of g.itlMs ?? []) s.interTokenLatency.observe(model, seconds(gap));
}

/** A request's place in the router's queue gauges: waiting until it runs, then running until it ends. */
export interface RequestTracker {
  /** Waiting -> running (its Generate started). Idempotent; ignored once ended. */
  running(): void;
  /** Leaves the gauges. Idempotent. */
  ended(): void;
}

/** Router: a request admitted for `model`; it counts as waiting until `running()`. */
export function trackRequest(m: NodeMetrics, model: string): RequestTracker {
  const s = servingMetrics(m.registry);
  const labels = { model_name: model };
  let state: "waiting" | "running" | "ended" = "waiting";
  s.requestsWaiting.inc(labels);
  // Both gauges exist for the model from its first request on, so "none running" reads 0, not missing.
  s.requestsRunning.inc(labels, 0);
  return {
    running() {
      if (state !== "waiting") return;
      state = "running";
      s.requestsWaiting.dec(labels);
      s.requestsRunning.inc(labels);
    },
    ended() {
      if (state === "ended") return;
      (state === "waiting" ? s.requestsWaiting : s.requestsRunning).dec(labels);
      state = "ended";
    },
  };
}

/**
 * The model this registry's node serves (its engine's model id), the model_name of the decode pool's
 * series and of transfer series; a node without an engine declares none and exports model_name="".
 */
export function declareModel(m: NodeMetrics, model: string): void {
  servingMetrics(m.registry).model = model;
}

/** The model declared for this registry, or undefined. */
export function declaredModel(m: NodeMetrics): string | undefined {
  return servingMetrics(m.registry).model || undefined;
}

/** Decode: a pool read at scrape time for the usage ratio and the prefix cache. Returns the detach function. */
export function attachDecodePool(m: NodeMetrics, snapshot: () => DecodePoolSnapshot): () => void {
  const s = servingMetrics(m.registry);
  s.registerRole("decode");
  s.pools.add(snapshot);
  return () => {
    s.pools.delete(snapshot);
  };
}
