// Prefix reuse on the prefill engine, each figure against the same engine with its prefix cache
// emptied (cold), in the same run:
// - TTFT of a 2k-token prompt whose first 90 % was prefilled before (by a prompt with another
//   10 % tail), against the same prompt cold. TTFT here = the prefill engine's prefill (chunks cut)
//   + a decode engine loading every chunk and producing the first token, in one process: the
//   transfer between them is the same bytes either way and is measured by the engine bench.
// - A 10-turn chat (turn k's prompt = turn k-1's prompt + its answer + a user message): each turn's
//   prefill time with the cache as turn k-1 left it against the same turn prefilled cold.
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
  /** Measurements of each chat turn, with and without the cache (best reported); default 3. */
  chatRepeats?: number;
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
  const chatRepeats = opts.chatRepeats ?? 3;
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

    // Multi-turn chat. With reuse: the cache as the conversation leaves it (the previous turn's
    // prompt prefilled, untimed), then this turn's prompt timed. Without: an emptied cache. Best of
    // `chatRepeats` each, alternating.
    let previous: number[] | null = null;
    let tokens = tokensOf(prefill, 300, 77);
    let warmTotal = 0;
    let coldTotal = 0;
    for (let turn = 1; turn <= turns; turn++) {
      let warmMs = Infinity;
      let coldMs = Infinity;
      let cached = 0;
      let result: Awaited<ReturnType<LlamaEngine["prefill"]>> | null = null;
      for (let r = 0; r < chatRepeats; r++) {
        prefill.clearPrefixCache();
        let t = performance.now();
        await prefill.prefill(tokens);
        coldMs = Math.min(coldMs, performance.now() - t);
        prefill.clearPrefixCache();
        if (previous) await prefill.prefill(previous);
        t = performance.now();
        result = await prefill.prefill(tokens);
        warmMs = Math.min(warmMs, performance.now() - t);
        cached = result.cachedChunks;
      }
      const answer = await decode.generate({ tokens, prefix: result!.chunks.map((c) => c.bytes), maxTokens: 48 });
      fig(`prefix_reuse.${preset}.chat.turn${turn}.prefill`, warmMs, "ms", coldMs, `turn ${turn} cold (${tokens.length} tokens, ${cached} of ${result!.chunks.length} chunks cached; best of ${chatRepeats})`);
      log(`prefix reuse ${preset}: chat turn ${turn}: ${tokens.length} tokens, ${cached}/${result!.chunks.length} chunks cached, prefill ${warmMs.toFixed(0)} ms vs cold ${coldMs.toFixed(0)} ms`);
      warmTotal += warmMs;
      coldTotal += coldMs;
      previous = tokens;
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
