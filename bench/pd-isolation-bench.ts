// Decode isolated from prefill: a steady set of streaming decodes (4 streams, long max_tokens,
// restarted when one ends) while long prompts (4k-8k tokens) keep arriving, one after the other.
// Measured from the client: the inter-token latency of the streams (gaps between consecutive
// arrivals of one stream, p50/p99) and their aggregate tokens/s, plus the long prompts completed.
//   PD: router + prefill node + decode node processes; prefill pinned to core 0, decode and router
//       to core 1 (taskset -c); streams and long prompts through the router (OpenAI SSE).
//   colocated (baseline, same run, same cores): one decode node pinned to cores 0-1 with 2 engine
//       threads, streams and long prompts on its Generate (no KV arrives, so it evaluates every
//       prompt itself, its recompute path).
// The same workload without long prompts ("quiet") is measured first in each deployment.
// Standalone: node --import tsx bench/pd-isolation-bench.ts [--quick] [--model medium|<gguf>]
//   [--pd-router URL --colocated-decode HOST:PORT] (measure running deployments instead of starting them)
//   [--kvbridge-root DIR] (start the nodes from another checkout, e.g. one commit unpacked)
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DecodeClient } from "../src/wire/decode-client.js";
import type { BenchFigure } from "./bench-figure.js";
import {
  decodeDriver,
  gaps,
  machineLoad,
  mediumModelPath,
  percentile,
  promptOf,
  routerDriver,
  setKvbridgeRoot,
  startColocated,
  startPd,
  type Deployment,
  type DeploymentOptions,
  type Driver,
} from "./pd-processes.js";

export interface IsolationOptions {
  quick?: boolean;
  /** "small" (the project's model, default), "medium" (make-model --preset medium) or a GGUF path. */
  model?: string;
  streams?: number;
  /** max_tokens of each stream (restarted when it ends). */
  streamMaxTokens?: number;
  /** Sizes of the arriving long prompts, in tokens, used in turn. */
  longTokens?: number[];
  /** Seconds measured with long prompts arriving; the quiet phase lasts a third of it. */
  windowS?: number;
  /** Measure deployments that already run instead of starting them. */
  pdRouterUrl?: string;
  colocatedDecode?: string;
  /** Engine threads of the colocated decode node (default 1: see docs/benchmarks.md). */
  colocatedThreads?: number;
  log?: (line: string) => void;
}

interface PhaseResult {
  itl: number[];
  tokens: number;
  seconds: number;
  longDone: number;
  longFailed: number;
  streamErrors: string[];
}

/**
 * `streams` generations kept running for `windowS`; with `long`, long prompts sent one after the
 * other meanwhile (max_tokens 1). Only gaps whose both ends fall in the window count.
 */
async function phase(driver: Driver, o: { streams: number; maxTokens: number; windowS: number; long?: number[]; seed: number }): Promise<PhaseResult> {
  const stop = new AbortController();
  const r: PhaseResult = { itl: [], tokens: 0, seconds: o.windowS, longDone: 0, longFailed: 0, streamErrors: [] };
  let begin = Number.POSITIVE_INFINITY;
  let seed = o.seed;
  const streamLoop = async (i: number): Promise<void> => {
    while (!stop.signal.aborted) {
      const t = await driver(promptOf(64, seed++ * 31 + i), o.maxTokens, stop.signal);
      const inWindow = t.arrivals.filter((a) => a >= begin);
      r.tokens += inWindow.length;
      r.itl.push(...gaps(inWindow));
      if (!t.ok) {
        r.streamErrors.push(t.error ?? "failed");
        if (r.streamErrors.length > 20) throw new Error(`streams keep failing: ${r.streamErrors.slice(-3).join("; ")}`);
      }
    }
  };
  const longLoop = async (sizes: number[]): Promise<void> => {
    for (let k = 0; !stop.signal.aborted; k++) {
      const t = await driver(promptOf(sizes[k % sizes.length]!, 1_000_000 + seed++), 1, stop.signal);
      if (stop.signal.aborted) return;
      if (t.ok) r.longDone++;
      else r.longFailed++;
    }
  };
  const loops = Array.from({ length: o.streams }, (_, i) => streamLoop(i));
  // Streams first, so every one is decoding before anything is measured.
  await new Promise((res) => setTimeout(res, 1500));
  if (o.long) loops.push(longLoop(o.long));
  // With long prompts, measure from when the first one is being evaluated.
  await new Promise((res) => setTimeout(res, o.long ? 500 : 0));
  begin = performance.now();
  await new Promise((res) => setTimeout(res, o.windowS * 1000));
  const end = performance.now();
  r.seconds = (end - begin) / 1000;
  stop.abort();
  await Promise.all(loops);
  return r;
}

function deploymentOptions(model: string | undefined, medium: boolean, maxSequences: number): DeploymentOptions {
  return {
    model,
    threads: 1,
    maxSequences,
    slotBytes: medium ? "4MiB" : "512KiB",
    poolSlots: medium ? 320 : 1024,
    cpus: { prefill: "0", decode: "1", router: "1" },
  };
}

export async function resolveModel(name: string | undefined): Promise<{ path: string | undefined; label: string; medium: boolean }> {
  if (!name || name === "small") return { path: undefined, label: "", medium: false };
  if (name === "medium") return { path: await mediumModelPath(), label: "medium.", medium: true };
  return { path: name, label: `${path.basename(name).replace(/\.gguf$/i, "")}.`, medium: false };
}

export async function runPdIsolationBench(opts: IsolationOptions = {}): Promise<BenchFigure[]> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`bench: ${l}\n`));
  const model = await resolveModel(opts.model);
  const streams = opts.streams ?? 4;
  const windowS = opts.windowS ?? (opts.quick ? 20 : 60);
  const longTokens = opts.longTokens ?? (model.medium ? [1024, 2048] : opts.quick ? [4096] : [4096, 8192]);
  const maxTokens = opts.streamMaxTokens ?? 1024;
  const base = deploymentOptions(model.path, model.medium, streams + 4);
  const results: Record<"pd" | "colocated", { quiet: PhaseResult; loaded: PhaseResult; load: number; describe: string }> = {} as never;

  for (const name of ["pd", "colocated"] as const) {
    let dep: Deployment | undefined;
    let client: DecodeClient | undefined;
    try {
      let driver: Driver;
      let describe: string;
      if (name === "pd" && opts.pdRouterUrl) {
        driver = routerDriver(opts.pdRouterUrl);
        describe = `PD router ${opts.pdRouterUrl}`;
      } else if (name === "colocated" && opts.colocatedDecode) {
        client = new DecodeClient(opts.colocatedDecode);
        driver = decodeDriver(client);
        describe = `colocated decode node ${opts.colocatedDecode}`;
      } else {
        log(`isolation: starting ${name} nodes`);
        dep = name === "pd" ? await startPd(base) : await startColocated({ ...base, colocatedThreads: opts.colocatedThreads ?? 1, colocatedCpus: "0-1" });
        describe = dep.describe;
        if (dep.routerUrl) driver = routerDriver(dep.routerUrl);
        else {
          client = new DecodeClient(dep.decodeAddress);
          driver = decodeDriver(client);
        }
      }
      // Warm: first evaluations pay one-time allocations.
      const warm = await driver(promptOf(600, 7), 8);
      if (!warm.ok) throw new Error(`${name}: warm-up generation failed: ${warm.error}`);
      const quietS = Math.max(5, Math.round(windowS / 3));
      log(`isolation ${name}: ${streams} streams alone, ${quietS} s (${describe})`);
      const quiet = await phase(driver, { streams, maxTokens, windowS: quietS, seed: 1 });
      log(`isolation ${name}: ${streams} streams while ${longTokens.join("/")}-token prompts keep arriving, ${windowS} s`);
      const loaded = await phase(driver, { streams, maxTokens, windowS, long: longTokens, seed: 100_000 });
      const load = os.loadavg()[0]!;
      results[name] = { quiet, loaded, load, describe };
      log(
        `isolation ${name}: ITL p50 ${percentile(loaded.itl, 50).toFixed(1)} ms, p99 ${percentile(loaded.itl, 99).toFixed(1)} ms, p99.9 ${percentile(loaded.itl, 99.9).toFixed(1)} ms, ` +
          `${(loaded.tokens / loaded.seconds).toFixed(1)} tok/s, ${loaded.longDone} long prompts done (${loaded.longFailed} failed); ` +
          `quiet ITL p50 ${percentile(quiet.itl, 50).toFixed(1)} p99 ${percentile(quiet.itl, 99).toFixed(1)} ms; ${loaded.streamErrors.length + quiet.streamErrors.length} stream errors; load: ${machineLoad()}`,
      );
      for (const e of [...quiet.streamErrors, ...loaded.streamErrors].slice(0, 3)) log(`isolation ${name}: stream error: ${e}`);
    } finally {
      client?.close();
      await dep?.close();
    }
  }

  const pd = results.pd;
  const co = results.colocated;
  const p = `pd.isolation.${model.label}`;
  const fig = (bench: string, value: number, unit: string, baseline: number, baselineName: string): BenchFigure => ({
    bench,
    value,
    unit,
    baseline,
    baselineName,
    ratio: baseline > 0 && Number.isFinite(value) ? value / baseline : null,
  });
  const coName = `colocated (${co.describe})`;
  return [
    fig(`${p}itl_p99`, percentile(pd.loaded.itl, 99), "ms", percentile(co.loaded.itl, 99), coName),
    fig(`${p}itl_p999`, percentile(pd.loaded.itl, 99.9), "ms", percentile(co.loaded.itl, 99.9), coName),
    fig(`${p}itl_max`, Math.max(...pd.loaded.itl), "ms", Math.max(...co.loaded.itl), coName),
    fig(`${p}itl_p50`, percentile(pd.loaded.itl, 50), "ms", percentile(co.loaded.itl, 50), coName),
    fig(`${p}tokens_per_s`, pd.loaded.tokens / pd.loaded.seconds, "tok/s", co.loaded.tokens / co.loaded.seconds, coName),
    fig(`${p}long_prompts_per_min`, (pd.loaded.longDone * 60) / pd.loaded.seconds, "req/min", (co.loaded.longDone * 60) / co.loaded.seconds, coName),
    fig(`${p}quiet.itl_p99`, percentile(pd.quiet.itl, 99), "ms", percentile(co.quiet.itl, 99), `${coName}, no long prompts`),
    fig(`${p}quiet.tokens_per_s`, pd.quiet.tokens / pd.quiet.seconds, "tok/s", co.quiet.tokens / co.quiet.seconds, `${coName}, no long prompts`),
    fig(`${p}load_1min`, pd.load, "load", co.load, "1-minute load average after the colocated run"),
  ];
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (n: string): string | undefined => (process.argv.includes(n) ? process.argv[process.argv.indexOf(n) + 1] : undefined);
  if (arg("--kvbridge-root")) setKvbridgeRoot(arg("--kvbridge-root")!);
  process.stderr.write(`bench: load before: ${machineLoad()} (${os.cpus().length} cpus)\n`);
  const figures = await runPdIsolationBench({
    quick: process.argv.includes("--quick"),
    model: arg("--model"),
    windowS: arg("--window") ? Number(arg("--window")) : undefined,
    longTokens: arg("--long")?.split(",").map(Number),
    streams: arg("--streams") ? Number(arg("--streams")) : undefined,
    pdRouterUrl: arg("--pd-router"),
    colocatedDecode: arg("--colocated-decode"),
    colocatedThreads: arg("--colocated-threads") ? Number(arg("--colocated-threads")) : undefined,
  });
  for (const f of figures) process.stdout.write(JSON.stringify(f) + "\n");
  process.stderr.write(`bench: load after: ${machineLoad()}\n`);
}
