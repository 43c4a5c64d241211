// Aggregate decode throughput at 1, 4 and 16 concurrent streams, for each way the engine can run
// concurrent requests (EngineOptions.batching): one context per request (the baseline, measured in
// the same run), one shared context with batch-invariant rows (the default), and one shared
// context whose rows share each matrix product. Per-stream inter-token latency p50/p99 beside it.
// Run directly: node --import tsx bench/engine-batch-bench.ts [small|medium]

import { LlamaEngine, type EngineBatching } from "../src/engine/index.js";
import { ensurePresetModel, type ModelPreset } from "../src/engine/model-writer.js";
import type { BenchFigure } from "./bench-figure.js";

export interface EngineBatchBenchOptions {
  /** Generated model preset; default "small" (the default model). */
  preset?: ModelPreset;
  /** Concurrent streams per measurement; default [1, 4, 16]. */
  streams?: number[];
  /** Tokens each stream generates; default 64. */
  maxTokens?: number;
  /** Prompt tokens per stream (distinct prompts); default 32. */
  promptTokens?: number;
  threads?: number;
  modes?: EngineBatching[];
  log?: (line: string) => void;
}

interface Run {
  tokensPerSecond: number;
  itlP50: number;
  itlP99: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** N streams at once; decode throughput counts tokens after each stream's first, over the decode span. */
async function measure(engine: LlamaEngine, n: number, maxTokens: number, promptTokens: number, round: number): Promise<Run> {
  const prompts = Array.from({ length: n }, (_, i) => {
    const t = engine.tokenize(`stream ${round}-${i}: ` + "the kv cache moves between prefill and decode nodes ".repeat(8));
    return t.slice(0, promptTokens);
  });
  const stamps: number[][] = prompts.map(() => []);
  await Promise.all(prompts.map((tokens, i) => engine.generateLocal({ tokens, maxTokens, onToken: () => stamps[i]!.push(performance.now()) })));
  const first = Math.min(...stamps.map((s) => s[0]!));
  const last = Math.max(...stamps.map((s) => s.at(-1)!));
  const counted = stamps.reduce((a, s) => a + s.length - 1, 0);
  const gaps = stamps.flatMap((s) => s.slice(1).map((t, k) => t - s[k]!)).sort((a, b) => a - b);
  return { tokensPerSecond: (counted / (last - first)) * 1000, itlP50: percentile(gaps, 0.5), itlP99: percentile(gaps, 0.99) };
}

export async function runEngineBatchBench(opts: EngineBatchBenchOptions = {}): Promise<BenchFigure[]> {
  const preset = opts.preset ?? "small";
  const streams = opts.streams ?? [1, 4, 16];
  const maxTokens = opts.maxTokens ?? 64;
  const promptTokens = opts.promptTokens ?? 32;
  const modes = opts.modes ?? ["context-per-request", "invariant", "shared"];
  const modelPath = await ensurePresetModel(preset);
  const results = new Map<string, Run>();
  for (const batching of modes) {
    const engine = await LlamaEngine.open({
      modelPath,
      batching,
      maxSequences: Math.max(...streams),
      contextSize: 512,
      threads: opts.threads,
    });
    try {
      await measure(engine, Math.min(2, Math.max(...streams)), 8, promptTokens, -1); // warm: first evaluations allocate
      for (const n of streams) {
        const run = await measure(engine, n, maxTokens, promptTokens, n);
        results.set(`${batching}.${n}`, run);
        opts.log?.(`${preset} ${batching} ${n} streams: ${run.tokensPerSecond.toFixed(1)} tok/s, ITL p50 ${run.itlP50.toFixed(2)} ms p99 ${run.itlP99.toFixed(2)} ms`);
      }
    } finally {
      await engine.close();
    }
  }
  const figures: BenchFigure[] = [];
  const push = (bench: string, value: number, unit: string, baseline: number | null, baselineName?: string): void => {
    figures.push({ bench, value, unit, baseline, baselineName, ratio: baseline ? value / baseline : null });
  };
  for (const batching of modes) {
    for (const n of streams) {
      const r = results.get(`${batching}.${n}`)!;
      const base = batching === "context-per-request" ? null : (results.get(`context-per-request.${n}`) ?? null);
      const name = `engine_batch.${preset}.${batching}.${n}streams`;
      push(`${name}.decode_tok_s`, r.tokensPerSecond, "tok/s", base?.tokensPerSecond ?? null, base ? "one context per request, same streams" : undefined);
      const one = results.get(`${batching}.1`);
      if (one && n > 1) push(`${name}.vs_1stream`, r.tokensPerSecond, "tok/s", one.tokensPerSecond, `${batching}, 1 stream`);
      push(`${name}.itl_p50`, r.itlP50, "ms", base?.itlP50 ?? null, base ? "one context per request" : undefined);
      push(`${name}.itl_p99`, r.itlP99, "ms", base?.itlP99 ?? null, base ? "one context per request" : undefined);
    }
  }
  return figures;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const preset = (process.argv[2] ?? "small") as ModelPreset;
  const figures = await runEngineBatchBench({ preset, log: (l) => process.stderr.write(`bench: ${l}\n`) });
  for (const f of figures) {
    process.stdout.write(`${f.bench}\t${f.value.toFixed(2)} ${f.unit}\t${f.baseline === null ? "-" : `${f.baseline.toFixed(2)} (${f.baselineName})`}\t${f.ratio === null ? "" : `${f.ratio.toFixed(2)}x`}\n`);
  }
}
