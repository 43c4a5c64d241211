// The serving metrics of kvbridge, named after vLLM's (`vllm:x` -> `kvbridge_x`) so a vLLM dashboard
// maps onto them one query at a time: tokens, request outcomes, latency from end to end and per phase,
// the scheduler's queue, the decode pool's use, the prefix cache. Every series carries `model_name`.
// Each role registers its own set when it declares itself (kvbridge_node_info{role}), so a fresh node
// already exports every series a dashboard queries for it, and a router exports no pool series.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Why a generation stopped, the `finished_reason` label ("stop", "length", ...: the OpenAI finish_reason). */
export type FinishReason = string;

/** The roles whose series are registered here. */
export type ServingRole = "router" | "decode" | "prefill";

/** One finished completion request, as the router saw it. Times in milliseconds. */
export interface GenerationRecord {
  model: string;
  promptTokens: number;
  generationTokens: number;
  finishReason: FinishReason;
  /** Request received to last token sent. */
  e2eMs: number;
  /** Request received to first token; null when no token was produced. */
  ttftMs: number | null;
  /** Gaps between consecutive tokens (generationTokens - 1 of them when all are known). */
  itlMs?: readonly number[];
  /** Request received to its prefill starting (planning, choosing nodes, waiting for them). */
  queueMs: number;
  /** Prefill call: prompt evaluation and the KV transfer to the decode node. */
  prefillMs: number;
  /** Decode: Generate called to its last token. */
  decodeMs: number;
  /** The max_tokens the request asked for, when it gave one. */
  maxTokens?: number;
}

/** What the decode pool reports at scrape time for the model it serves. */
export interface DecodePoolSnapshot {
  slotsTotal: number;
  /** Slots holding nothing and promised to nobody. */
  slotsFree: number;
  /** KV chunks looked up at Alloc (hits + misses) and those already present: the prefix cache. */
  prefixQueries: number;
  prefixHits: number;
}

export interface ServingMetrics {
  readonly promptTokens: Counter<"model_name">;
  readonly generationTokens: Counter<"model_name">;
  readonly requestSuccess: Counter<"model_name" | "finished_reason">;
  readonly e2eLatency: Histogram<"model_name">;
  readonly timeToFirstToken: Histogram<"model_name">;
  readonly timePerOutputToken: Histogram<"model_name">;
  readonly interTokenLatency: Histogram<"model_name">;
  readonly queueTime: Histogram<"model_name">;
  readonly prefillTime: Histogram<"model_name">;
  readonly decodeTime: Histogram<"model_name">;
  readonly requestPromptTokens: Histogram<"model_name">;
  readonly requestGenerationTokens: Histogram<"model_name">;
  readonly requestMaxTokens: Histogram<"model_name">;
  readonly requestsRunning: Gauge<"model_name">;
  readonly requestsWaiting: Gauge<"model_name">;
  readonly kvPoolUsage: Gauge<"model_name">;
  readonly prefixCacheQueries: Counter<"model_name">;
  readonly prefixCacheHits: Counter<"model_name">;
  /** The model this registry's decode pool serves (declareModel); "" until one is declared. */
  model: string;
  /** Decode pools reported at scrape time (summed); see attachDecodePool. */
  readonly pools: Set<() => DecodePoolSnapshot>;
  /** Registers the series of `role` (idempotent). */
  registerRole(role: ServingRole): void;
}

// vLLM's buckets where they fit a CPU engine too: latency from milliseconds (a cached prompt on a
// small model) to tens of minutes (a long generation), token counts 1-2-5 up to 100k.
const REQUEST_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920];
const TTFT_SECONDS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640];
const TOKEN_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const TOKEN_COUNTS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

const byRegistry = new WeakMap<Registry, ServingMetrics>();

function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

/** The serving metric set of `registry`, each series registered on first use or with its role. */
export function servingMetrics(registry: Registry): ServingMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const labelNames = ["model_name"] as const;
  const counter = (name: string, help: string): (() => Counter<"model_name">) => lazy(() => new Counter({ name, help, labelNames, registers }));
  const histogram = (name: string, help: string, buckets: number[]): (() => Histogram<"model_name">) =>
    lazy(() => new Histogram({ name, help, labelNames, buckets, registers }));
  const gauge = (name: string, help: string): (() => Gauge<"model_name">) => lazy(() => new Gauge({ name, help, labelNames, registers }));

  const pools = new Set<() => DecodePoolSnapshot>();
  const sumPools = (): DecodePoolSnapshot | undefined => {
    if (pools.size === 0) return undefined;
    const acc: DecodePoolSnapshot = { slotsTotal: 0, slotsFree: 0, prefixQueries: 0, prefixHits: 0 };
    for (const p of pools) {
      const s = p();
      acc.slotsTotal += s.slotsTotal;
      acc.slotsFree += s.slotsFree;
      acc.prefixQueries += s.prefixQueries;
      acc.prefixHits += s.prefixHits;
    }
    return acc;
  };
  /** A counter mirrored from the pools' own monotonic counts at scrape time. */
  const mirrored = (name: string, help: string, pick: (s: DecodePoolSnapshot) => number): (() => Counter<"model_name">) =>
    lazy(
      () =>
        new Counter({
          name,
          help,
          labelNames,
          registers,
          collect() {
            const s = sumPools();
            if (s === undefined) return;
            this.reset();
            this.inc({ model_name: sm.model }, pick(s));
          },
        }),
    );

  const promptTokens = counter("kvbridge_prompt_tokens_total", "Prompt tokens of finished requests (vLLM: prompt_tokens_total)");
  const generationTokens = counter("kvbridge_generation_tokens_total", "Generated tokens of finished requests (vLLM: generation_tokens_total)");
  const requestSuccess = lazy(
    () =>
      new Counter({
        name: "kvbridge_request_success_total",
        help: "Requests that finished with a completion, by finish reason: stop (stop token or sequence), length (max_tokens or context)",
        labelNames: ["model_name", "finished_reason"] as const,
        registers,
      }),
  );
  const e2eLatency = histogram("kvbridge_e2e_request_latency_seconds", "Router: request received to its last token sent", REQUEST_SECONDS);
  const timeToFirstToken = histogram("kvbridge_time_to_first_token_seconds", "Router: request received to its first token", TTFT_SECONDS);
  const timePerOutputToken = histogram(
    "kvbridge_time_per_output_token_seconds",
    "Router, per request: (last token - first token) / (generated tokens - 1)",
    TOKEN_SECONDS,
  );
  const interTokenLatency = histogram("kvbridge_inter_token_latency_seconds", "Router: every gap between two consecutive tokens of a request", TOKEN_SECONDS);
  const queueTime = histogram("kvbridge_request_queue_time_seconds", "Router: request received to its prefill starting (planning, node choice)", REQUEST_SECONDS);
  const prefillTime = histogram("kvbridge_request_prefill_time_seconds", "Router: the prefill call, prompt evaluation and KV transfer to the decode node", REQUEST_SECONDS);
  const decodeTime = histogram("kvbridge_request_decode_time_seconds", "Router: Generate called on the decode node to its last token", REQUEST_SECONDS);
  const requestPromptTokens = histogram("kvbridge_request_prompt_tokens", "Prompt tokens per finished request", TOKEN_COUNTS);
  const requestGenerationTokens = histogram("kvbridge_request_generation_tokens", "Generated tokens per finished request", TOKEN_COUNTS);
  const requestMaxTokens = histogram("kvbridge_request_params_max_tokens", "max_tokens asked for, per finished request that gave one", TOKEN_COUNTS);
  const requestsRunning = gauge("kvbridge_num_requests_running", "Router: requests generating on a decode node now");
  const requestsWaiting = gauge("kvbridge_num_requests_waiting", "Router: requests admitted and not generating yet (planning, prefill, KV transfer)");
  const kvPoolUsage = lazy(
    () =>
      new Gauge({
        name: "kvbridge_kv_pool_usage_ratio",
        help: "Decode: share of the KV pool's slots in use (not free), 0 to 1 (vLLM: kv_cache_usage_perc)",
        labelNames,
        registers,
        collect() {
          const s = sumPools();
          if (s === undefined) return;
          this.reset();
          this.set({ model_name: sm.model }, s.slotsTotal > 0 ? (s.slotsTotal - s.slotsFree) / s.slotsTotal : 0);
        },
      }),
  );
  const prefixCacheQueries = mirrored("kvbridge_prefix_cache_queries_total", "Decode: KV chunks looked up in the pool at Alloc (each one chunk of --chunk-tokens tokens)", (s) => s.prefixQueries);
  const prefixCacheHits = mirrored("kvbridge_prefix_cache_hits_total", "Decode: KV chunks found already in the pool at Alloc, so not transferred", (s) => s.prefixHits);

  const roleSeries: Record<ServingRole, Array<() => unknown>> = {
    router: [
      promptTokens,
      generationTokens,
      requestSuccess,
      e2eLatency,
      timeToFirstToken,
      timePerOutputToken,
      interTokenLatency,
      queueTime,
      prefillTime,
      decodeTime,
      requestPromptTokens,
      requestGenerationTokens,
      requestMaxTokens,
      requestsRunning,
      requestsWaiting,
    ],
    decode: [kvPoolUsage, prefixCacheQueries, prefixCacheHits],
    prefill: [],
  };

  const sm: ServingMetrics = {
    get promptTokens() {
      return promptTokens();
    },
    get generationTokens() {
      return generationTokens();
    },
    get requestSuccess() {
      return requestSuccess();
    },
    get e2eLatency() {
      return e2eLatency();
    },
    get timeToFirstToken() {
      return timeToFirstToken();
    },
    get timePerOutputToken() {
      return timePerOutputToken();
    },
    get interTokenLatency() {
      return interTokenLatency();
    },
    get queueTime() {
      return queueTime();
    },
    get prefillTime() {
      return prefillTime();
    },
    get decodeTime() {
      return decodeTime();
    },
    get requestPromptTokens() {
      return requestPromptTokens();
    },
    get requestGenerationTokens() {
      return requestGenerationTokens();
    },
    get requestMaxTokens() {
      return requestMaxTokens();
    },
    get requestsRunning() {
      return requestsRunning();
    },
    get requestsWaiting() {
      return requestsWaiting();
    },
    get kvPoolUsage() {
      return kvPoolUsage();
    },
    get prefixCacheQueries() {
      return prefixCacheQueries();
    },
    get prefixCacheHits() {
      return prefixCacheHits();
    },
    model: "",
    pools,
    registerRole(role) {
      for (const make of roleSeries[role]) make();
    },
  };
  byRegistry.set(registry, sm);
  return sm;
}
