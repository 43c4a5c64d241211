// Prefix reuse on the prefill engine, each figure against the same engine with its prefix cache
// emptied (cold), in the same run:
// - TTFT of a 2k-token prompt whose first 90 % was prefilled before (by a prompt with another
//   10 % tail), against the same prompt cold. TTFT here = the prefill engine's prefill (chunks cut)
//   + a decode engine loading every chunk and producing the first token, in one process: the
//   transfer between them is the same bytes either way and is measured by the engine bench.
// - A 10-turn chat (turn k's prompt = turn k-1's prompt + its answer + a user message): each turn's
//   prefill time with the cache against the same turn prefilled cold.
// The decode output is checked equal on both paths (a figure from wrong KV would mean nothing).
// The machine's 1-minute load average is reported beside the figures.
// Run directly: node --import tsx bench/prefix-reuse-bench.ts [small|medium]

import os from "node:os";
import { LlamaEngine } from "../src/engine/index.js";
import { ensurePresetModel, type ModelPreset } from "../src/engine/model-writer.js";
import type { BenchFigure } from "./bench-figure.js";

export interface PrefixReuseBenchOptions {
  /** Generated model preset; default "small" (the default model). */
  preset?: ModelPreset;
  /** Prompt tokens of the TTFT figure; default 2048. */
  promptTokens?: number;
  /** Share of it seen before; default 0.9. */
  seenFraction?: number;
  /** Repetitions of the TTFT pair (the best of each reported: the machine is shared); default 5. */
  repeats?: number;
  /** Chat turns; default 10. */
  turns?: number;
  threads?: number;
  log?: (line: string) => void;
}

const WORDS = "kv cache prefill decode chunk transfer node router token layer head pool slot lease commit the a of to and in".split(" ");

function tokensOf(engine: LlamaEngine, n: number, seed: number): number[] {
  let x = seed;
  let s = "";
  while (s.length < n + 8) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += WORDS[x % WORDS.length] + " ";
  }
  return engine.tokenize(s).slice(0, n);
}


export async function runPrefixReuseBench(opts: PrefixReuseBenchOptions = {}): Promise<BenchFigure[]> {
  const preset = opts.preset ?? "small";
  const n = opts.promptTokens ?? 2048;
  const seen = Math.floor(n * (opts.seenFraction ?? 0.9));
  const repeats = opts.repeats ?? 5;
  const turns = opts.turns ?? 10;
  const log = opts.log ?? (() => undefined);
  const modelPath = await ensurePresetModel(preset);
  const [prefill, decode] = await Promise.all([
    LlamaEngine.open({ modelPath, threads: opts.threads, maxSequences: 1 }),
    LlamaEngine.open({ modelPath, threads: opts.threads, maxSequences: 1, prefixCacheBytes: 0 }),
  ]);
  const figures: BenchFigure[] = [];
  const fig = (bench: string, value: number, unit: string, baseline: number | null, baselineName?: string): void => {
    figures.push({ bench, value, unit, baseline, ...(baselineName ? { baselineName } : {}), ratio: baseline ? value / baseline : null });
  };
  const loads: number[] = [os.loadavg()[0]!];
  try {
    /** Prefill (cut chunks) then first token from every chunk on the decode engine; ms and the token. */
    const ttft = async (tokens: number[]): Promise<{ ms: number; prefillMs: number; cached: number; first: number[] }> => {
      const t0 = performance.now();
      const { chunks, cachedChunks } = await prefill.prefill(tokens);
      const prefillMs = performance.now() - t0;
      const out = await decode.generate({ tokens, prefix: chunks.map((c) => c.bytes), maxTokens: 1 });
      return { ms: performance.now() - t0, prefillMs, cached: cachedChunks, first: out.tokens };
    };

    const warmMs: number[] = [];
    const coldMs: number[] = [];
    let cachedChunks = 0;
    for (let r = 0; r < repeats; r++) {
      const tokens = tokensOf(prefill, n, 1000 + r);
      const earlier = [...tokens.slice(0, seen), ...tokensOf(prefill, n - seen + 1, 5000 + r).slice(1)];
      prefill.clearPrefixCache();
      const c = await ttft(tokens);
      prefill.clearPrefixCache();
      await prefill.prefill(earlier);
      const w = await ttft(tokens);
      if (w.first.join() !== c.first.join()) throw new Error(`prefix-reuse bench: first token differs with reuse (${w.first}) and cold (${c.first})`);
      cachedChunks = w.cached;
      coldMs.push(c.ms);
      warmMs.push(w.ms);
      log(`prefix reuse ${preset}: ${n}-token prompt, ${seen} seen: TTFT ${w.ms.toFixed(0)} ms (prefill ${w.prefillMs.toFixed(0)}, ${w.cached} chunks cached) vs cold ${c.ms.toFixed(0)} ms (prefill ${c.prefillMs.toFixed(0)})`);
    }
    loads.push(os.loadavg()[0]!);
    const name = `prefix_reuse.${preset}.${n}tok_${Math.round((seen / n) * 100)}pct_seen`;
    fig(`${name}.ttft`, Math.min(...warmMs), "ms", Math.min(...coldMs), `the same prompt cold (cache emptied), same engines; best of ${repeats} each`);
    fig(`${name}.cached_chunks`, cachedChunks, "chunks", Math.ceil(n / prefill.chunkTokens), "chunks of the prompt");

    // Multi-turn chat: per turn, prefill with the cache as the conversation left it, and cold.
    let tokens = tokensOf(prefill, 300, 77);
    let warmTotal = 0;
    let coldTotal = 0;
    prefill.clearPrefixCache();
    for (let turn = 1; turn <= turns; turn++) {
      const t0 = performance.now();
      const warm = await prefill.prefill(tokens);
      const warmMs = performance.now() - t0;
      // Cold: the same prompt on an emptied cache (which leaves this turn's chunks cached again).
      prefill.clearPrefixCache();
      const t1 = performance.now();
      await prefill.prefill(tokens);
      const coldMs = performance.now() - t1;
      const answer = await decode.generate({ tokens, prefix: warm.chunks.map((c) => c.bytes), maxTokens: 48 });
      fig(`prefix_reuse.${preset}.chat.turn${turn}.prefill`, warmMs, "ms", coldMs, `turn ${turn} cold (${tokens.length} tokens, ${warm.cachedChunks} of ${warm.chunks.length} chunks cached)`);
      log(`prefix reuse ${preset}: chat turn ${turn}: ${tokens.length} tokens, ${warm.cachedChunks}/${warm.chunks.length} chunks cached, prefill ${warmMs.toFixed(0)} ms vs cold ${coldMs.toFixed(0)} ms`);
      warmTotal += warmMs;
      coldTotal += coldMs;
      tokens = [...tokens, ...answer.tokens, ...tokensOf(prefill, 60, 300 + turn).slice(1)];
    }
    fig(`prefix_reuse.${preset}.chat.${turns}turns.prefill_total`, warmTotal, "ms", coldTotal, `${turns} turns cold`);
    loads.push(os.loadavg()[0]!);
    fig(`prefix_reuse.${preset}.machine_load_1m`, Math.max(...loads), "load", null);
    log(`prefix reuse ${preset}: 1-minute load average during the run: ${loads.map((l) => l.toFixed(1)).join(", ")} on ${os.cpus().length} CPUs`);
  } finally {
    await Promise.all([prefill.close(), decode.close()]);
  }
  return figures;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const preset = (process.argv[2] ?? "small") as ModelPreset;
  const figures = await runPrefixReuseBench({ preset, log: (l) => process.stderr.write(`bench: ${l}\n`) });
  for (const f of figures) {
    process.stdout.write(`${f.bench}\t${f.value.toFixed(2)} ${f.unit}\t${f.baseline === null ? "-" : `${f.baseline.toFixed(2)} (${f.baselineName})`}\t${f.ratio === null ? "" : `${f.ratio.toFixed(2)}x`}\n`);
  }
}
