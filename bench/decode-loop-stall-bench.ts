// The decode node's event loop while a request's prefix KV is checked and loaded: every stream on
// the node waits for the loop, so one long synchronous step is an inter-token gap for all of them.
// For 4096- and 8192-token prompts, engine.generate is run from the prefill's chunks (1 token out)
// while perf_hooks.monitorEventLoopDelay watches the loop: max and p99 delay, first (cold) call and
// warm calls, next to the loop's delay on the same machine with nothing running (the floor: on a
// shared 2-core machine the scheduler alone makes gaps of several ms). Baseline, same run: the longest synchronous step of checking every chunk and building
// the whole sequence state in one buffer (checkPrefixChunk on each chunk, then
// assembleSequenceState), which is what generate did on the event loop before it wrote the state
// file from views and checked chunks with yields between them.
//
//   npx tsx bench/decode-loop-stall-bench.ts   (or npm run bench -- --only decode-loop; also in --only engine)

import os from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { LlamaEngine, ensureDefaultModel } from "../src/engine/index.js";
import { assembleSequenceState } from "../src/engine/kv-state-layout.js";
import { decodeChunk } from "../src/engine/kv-chunk-format.js";
import type { BenchFigure } from "./bench-figure.js";

const WORDS = "kv cache prefill decode chunk transfer node router token layer head pool slot lease commit the a of to and in".split(" ");

function textOf(tokens: number, seed: number): string {
  let x = seed;
  let s = "";
  while (s.length < tokens - 1) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += WORDS[x % WORDS.length] + " ";
  }
  return s.slice(0, tokens - 1);
}

interface LoopDelay {
  maxMs: number;
  p99Ms: number;
}

async function watchLoop<T>(body: () => Promise<T>): Promise<LoopDelay> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  try {
    await body();
  } finally {
    h.disable();
  }
  // The histogram counts the timer's own 1 ms period in every sample: subtract it.
  return { maxMs: Math.max(0, h.max / 1e6 - 1), p99Ms: Math.max(0, h.percentile(99) / 1e6 - 1) };
}

export async function runDecodeLoopStallBench(opts: { sizes?: number[]; runs?: number; log?: (line: string) => void } = {}): Promise<BenchFigure[]> {
  const sizes = opts.sizes ?? [4096, 8192];
  const runs = opts.runs ?? 8;
  const log = opts.log ?? (() => undefined);
  const engine = await LlamaEngine.open({ modelPath: await ensureDefaultModel(), maxSequences: 1 });
  const figures: BenchFigure[] = [];
  try {
    for (const size of sizes) {
      const tokens = engine.tokenize(textOf(size, size)).slice(0, size);
      const { chunks } = await engine.prefill(tokens);
      engine.clearPrefixCache();
      const prefix = chunks.map((c) => c.bytes);
      const keys = engine.chunkKeys(tokens);
      // The old path's check: every chunk's header, checksum and key, back to back.
      const checkChunk = (b: Buffer, i: number, k: string[]) => {
        const c = decodeChunk(b, `chunk ${i}`);
        if (c.key !== k[i] || c.index !== i) throw new Error(`chunk ${i} does not match`);
        return c.part;
      };
      const delays: LoopDelay[] = [];
      let recomputed = -1;
      const t0 = performance.now();
      for (let r = 0; r < runs; r++) delays.push(await watchLoop(async () => (recomputed = (await engine.generate({ tokens, prefix, maxTokens: 1 })).recomputedTokens)));
      const generateMs = (performance.now() - t0) / runs;
      // The old path's one synchronous step, timed the same number of times.
      const syncMs: number[] = [];
      for (let r = 0; r < runs; r++) {
        const t0 = performance.now();
        const parts = prefix.map((b, i) => checkChunk(b, i, keys));
        const state = assembleSequenceState(engine.compatibility.kvLayout, tokens.slice(0, tokens.length - 1), parts);
        syncMs.push(performance.now() - t0);
        void state.length;
      }
      // The floor: the same time with the loop idle.
      const floor = await watchLoop(() => new Promise((r) => setTimeout(r, Math.max(200, generateMs * runs))));
      const warm = delays.slice(1);
      const maxAll = Math.max(...delays.map((d) => d.maxMs));
      const maxWarm = Math.max(...warm.map((d) => d.maxMs));
      const p99 = Math.max(...delays.map((d) => d.p99Ms));
      const oldMax = Math.max(...syncMs);
      const oldWarm = Math.max(...syncMs.slice(1));
      const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const typical = median(delays.map((d) => d.maxMs));
      const oldTypical = median(syncMs);
      log(
        `${size} tokens (${prefix.length} chunks, ${recomputed} recomputed, generate ${generateMs.toFixed(0)} ms): loop delay max ${maxAll.toFixed(1)} ms (first call ${delays[0]!.maxMs.toFixed(1)}, warm max ${maxWarm.toFixed(1)}, median call ${typical.toFixed(1)}), p99 ${p99.toFixed(1)} ms; ` +
          `idle floor max ${floor.maxMs.toFixed(1)} p99 ${floor.p99Ms.toFixed(1)} ms; one-step check + assemble ${syncMs.map((m) => m.toFixed(1)).join(" / ")} ms; load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
      );
      figures.push(
        { bench: `decode-loop.stall_max.${size}`, value: maxAll, unit: "ms", baseline: oldMax, baselineName: "checksum every chunk + assemble the state in one synchronous step", ratio: oldMax > 0 ? maxAll / oldMax : null },
        { bench: `decode-loop.stall_max_warm.${size}`, value: maxWarm, unit: "ms", baseline: oldWarm, baselineName: "the same one-step check + assemble, warm calls", ratio: oldWarm > 0 ? maxWarm / oldWarm : null },
        { bench: `decode-loop.stall_max_median_call.${size}`, value: typical, unit: "ms", baseline: oldTypical, baselineName: "the one-step check + assemble, median call", ratio: oldTypical > 0 ? typical / oldTypical : null },
        { bench: `decode-loop.stall_p99.${size}`, value: p99, unit: "ms", baseline: floor.p99Ms, baselineName: "the idle loop's p99 delay, same machine, same time", ratio: floor.p99Ms > 0 ? p99 / floor.p99Ms : null },
        { bench: `decode-loop.idle_floor_max.${size}`, value: floor.maxMs, unit: "ms", baseline: null, ratio: null },
      );
    }
  } finally {
    await engine.close();
  }
  return figures;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await runDecodeLoopStallBench({ log: (l) => process.stderr.write(`bench: ${l}\n`) });
  for (const f of figures) process.stdout.write(JSON.stringify(f) + "\n");
}
