// Goodput as DistServe measures it: the highest request rate at which at least 90 % of requests meet
// both a time-to-first-token SLO and an inter-token-latency SLO, PD against colocated, on the same
// cores, in the same run. Workload (seeded, the same requests at each rate for both deployments):
// --requests requests per rate arriving as a Poisson process; 75 % short prompts (64-512 tokens), 25 % long ones (1024-2048 tokens); 32-96
// output tokens each. A request meets the SLOs when it succeeds, its first token arrives within
// --slo-ttft of its send time, and the 99th percentile of its inter-token gaps is within --slo-itl.
// The same requests at every rate, only their arrival times scaled; requests still unanswered
// --drain seconds after the last arrival are cancelled and count as misses. Rates: a fixed ladder
// (--rates; --quick: 8 requests at 0.5, 1, 2 req/s; goodput is the highest rate met with every
// lower one met), or, without it (60 requests per rate),
// doubling from 0.25 req/s until attainment drops below the target, then bisection between the
// last rate that met it and the first that did not.
// Deployments as in pd-isolation-bench.ts: PD (router + prefill node on core 0 + decode node and
// router on core 1, taskset) and colocated (one decode node on cores 0-1 evaluating every prompt).
// Standalone: node --import tsx bench/goodput-bench.ts [--quick] [--rates 0.5,1,2] [--slo-ttft 2000]
//   [--slo-itl 100] [--requests 60] [--drain 20] [--model medium|<gguf>] [--pd-router URL --colocated-decode HOST:PORT]
//   [--kvbridge-root DIR]
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DecodeClient } from "../src/wire/decode-client.js";
import type { BenchFigure } from "./bench-figure.js";
import { resolveModel } from "./pd-isolation-bench.js";
import {
  decodeDriver,
  gaps,
  machineLoad,
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

export interface GoodputOptions {
  quick?: boolean;
  model?: string;
  /** Fixed rates (req/s); default: the doubling-then-bisection search. */
  rates?: number[];
  sloTtftMs?: number;
  sloItlMs?: number;
  /** Fraction of requests that must meet both SLOs (default 0.9). */
  attainment?: number;
  /** Requests per rate (the same ones at every rate). */
  requests?: number;
  /** Seconds after the last arrival before unanswered requests are cancelled. */
  drainS?: number;
  seed?: number;
  pdRouterUrl?: string;
  colocatedDecode?: string;
  colocatedThreads?: number;
  log?: (line: string) => void;
}

interface RequestSpec {
  at: number;
  promptTokens: number;
  maxTokens: number;
  long: boolean;
  seed: number;
}

interface RateResult {
  rate: number;
  requests: number;
  met: number;
  attainment: number;
  ttftP90: number;
  itlP99: number;
  failed: number;
}

/** mulberry32: a small seeded PRNG, so both deployments get the same arrivals. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` requests arriving as a Poisson process at `rate`: the same prompts, output lengths and
 * unit-rate gaps at every rate (drawn from `seed` alone), the gaps scaled by 1/rate, so rates differ
 * in arrival times only.
 */
export function workload(rate: number, count: number, seed: number, longTokens: [number, number], shortTokens: [number, number] = [64, 512]): RequestSpec[] {
  const rnd = prng(seed);
  const out: RequestSpec[] = [];
  const between = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  let t = 0;
  for (let i = 0; i < count; i++) {
    t += -Math.log(1 - rnd());
    const long = rnd() < 0.25;
    // A distinct prompt per request and per rate: no run finds another's KV cached.
    out.push({ at: (t / rate) * 1000, long, promptTokens: long ? between(...longTokens) : between(...shortTokens), maxTokens: between(32, 96), seed: seed * 1_000_000 + Math.round(rate * 1000) * 1000 + i });
  }
  return out;
}

async function runRate(driver: Driver, specs: RequestSpec[], o: { drainS: number; sloTtftMs: number; sloItlMs: number }): Promise<Omit<RateResult, "rate">> {
  const cancel = new AbortController();
  const start = performance.now();
  const ttfts: number[] = [];
  const itls: number[] = [];
  let met = 0;
  let failed = 0;
  const one = async (s: RequestSpec): Promise<void> => {
    const wait = start + s.at - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t = await driver(promptOf(s.promptTokens, s.seed), s.maxTokens, cancel.signal);
    // Cancelled at the bound: a miss, whatever arrived.
    const ok = t.ok && !cancel.signal.aborted && t.arrivals.length > 0;
    if (!ok) {
      failed++;
      return;
    }
    const ttft = t.arrivals[0]! - t.sentAt;
    const itl = percentile(gaps(t.arrivals), 99);
    ttfts.push(ttft);
    if (Number.isFinite(itl)) itls.push(itl);
    if (ttft <= o.sloTtftMs && (!Number.isFinite(itl) || itl <= o.sloItlMs)) met++;
  };
  const all = Promise.all(specs.map(one));
  const lastAt = specs.length ? specs[specs.length - 1]!.at : 0;
  const bound = setTimeout(() => cancel.abort(), lastAt + o.drainS * 1000);
  await all;
  clearTimeout(bound);
  return {
    requests: specs.length,
    met,
    attainment: specs.length ? met / specs.length : 0,
    ttftP90: percentile(ttfts, 90),
    itlP99: percentile(itls, 99),
    failed,
  };
}

export async function runGoodputBench(opts: GoodputOptions = {}): Promise<BenchFigure[]> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`bench: ${l}\n`));
  const model = await resolveModel(opts.model);
  const sloTtftMs = opts.sloTtftMs ?? 2000;
  const sloItlMs = opts.sloItlMs ?? 100;
  const target = opts.attainment ?? 0.9;
  const requests = opts.requests ?? (opts.quick ? 8 : 60);
  const drainS = opts.drainS ?? (opts.quick ? 10 : 20);
  const seed = opts.seed ?? 1;
  const fixed = opts.rates ?? (opts.quick ? [0.5, 1, 2] : undefined);
  const longTokens: [number, number] = model.medium ? [512, 1024] : [1024, 2048];
  const base: DeploymentOptions = {
    model: model.path,
    threads: 1,
    maxSequences: 16,
    slotBytes: model.medium ? "4MiB" : "512KiB",
    poolSlots: model.medium ? 320 : 1024,
    cpus: { prefill: "0", decode: "1", router: "1" },
  };
  const results: Record<"pd" | "colocated", { rates: RateResult[]; goodput: number; describe: string; load: number }> = {} as never;

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
        log(`goodput: starting ${name} nodes`);
        dep = name === "pd" ? await startPd(base) : await startColocated({ ...base, colocatedThreads: opts.colocatedThreads ?? 1, colocatedCpus: "0-1" });
        describe = dep.describe;
        if (dep.routerUrl) driver = routerDriver(dep.routerUrl);
        else {
          client = new DecodeClient(dep.decodeAddress);
          driver = decodeDriver(client);
        }
      }
      const warm = await driver(promptOf(600, 7), 8);
      if (!warm.ok) throw new Error(`${name}: warm-up generation failed: ${warm.error}`);
      const rates: RateResult[] = [];
      const measure = async (rate: number): Promise<RateResult> => {
        const specs = workload(rate, requests, seed, longTokens);
        const r = { rate, ...(await runRate(driver, specs, { drainS, sloTtftMs, sloItlMs })) };
        rates.push(r);
        log(
          `goodput ${name}: ${rate.toFixed(3)} req/s: ${(r.attainment * 100).toFixed(0)} % of ${r.requests} met TTFT <= ${sloTtftMs} ms and ITL p99 <= ${sloItlMs} ms ` +
            `(TTFT p90 ${r.ttftP90.toFixed(0)} ms, ITL p99 ${r.itlP99.toFixed(0)} ms, ${r.failed} failed or cut); load ${os.loadavg()[0]!.toFixed(2)}`,
        );
        return r;
      };
      let goodput = 0;
      if (fixed) {
        // Every rate of the ladder runs (the attainment curve is reported); goodput is the highest
        // rate met with every lower rate met too.
        let missed = false;
        for (const rate of fixed) {
          const met = (await measure(rate)).attainment >= target;
          missed ||= !met;
          if (!missed) goodput = rate;
        }
      } else {
        let lo = 0;
        let hi = 0;
        for (let rate = 0.25; rate <= 16; rate *= 2) {
          if ((await measure(rate)).attainment >= target) lo = rate;
          else {
            hi = rate;
            break;
          }
        }
        if (hi === 0) hi = Number.POSITIVE_INFINITY;
        for (let i = 0; i < 3 && Number.isFinite(hi); i++) {
          const mid = lo > 0 ? (lo + hi) / 2 : hi / 2;
          if ((await measure(mid)).attainment >= target) lo = mid;
          else hi = mid;
        }
        goodput = lo;
      }
      results[name] = { rates, goodput, describe, load: os.loadavg()[0]! };
      log(`goodput ${name}: ${goodput.toFixed(3)} req/s (${describe}); load: ${machineLoad()}`);
    } finally {
      client?.close();
      await dep?.close();
    }
  }

  const pd = results.pd;
  const co = results.colocated;
  const p = `pd.goodput.${model.label}`;
  const coName = `colocated (${co.describe})`;
  const figures: BenchFigure[] = [
    { bench: `${p}rps`, value: pd.goodput, unit: "req/s", baseline: co.goodput, baselineName: `${coName}; SLO TTFT <= ${sloTtftMs} ms, ITL p99 <= ${sloItlMs} ms, ${target * 100} %`, ratio: co.goodput > 0 ? pd.goodput / co.goodput : null },
  ];
  // Attainment at each rate both deployments ran.
  for (const r of pd.rates) {
    const c = co.rates.find((x) => x.rate === r.rate);
    if (!c) continue;
    const rate = Number(r.rate.toFixed(3));
    figures.push(
      { bench: `${p}attainment.${rate}rps`, value: r.attainment * 100, unit: "%", baseline: c.attainment * 100, baselineName: coName, ratio: c.attainment > 0 ? r.attainment / c.attainment : null },
      { bench: `${p}ttft_p90.${rate}rps`, value: r.ttftP90, unit: "ms", baseline: c.ttftP90, baselineName: coName, ratio: c.ttftP90 > 0 ? r.ttftP90 / c.ttftP90 : null },
      { bench: `${p}itl_p99.${rate}rps`, value: r.itlP99, unit: "ms", baseline: c.itlP99, baselineName: coName, ratio: c.itlP99 > 0 ? r.itlP99 / c.itlP99 : null },
    );
  }
  figures.push({ bench: `${p}load_1min`, value: pd.load, unit: "load", baseline: co.load, baselineName: "1-minute load average after the colocated run", ratio: null });
  return figures;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (n: string): string | undefined => (process.argv.includes(n) ? process.argv[process.argv.indexOf(n) + 1] : undefined);
  const num = (n: string): number | undefined => (arg(n) ? Number(arg(n)) : undefined);
  if (arg("--kvbridge-root")) setKvbridgeRoot(arg("--kvbridge-root")!);
  process.stderr.write(`bench: load before: ${machineLoad()} (${os.cpus().length} cpus)\n`);
  const figures = await runGoodputBench({
    quick: process.argv.includes("--quick"),
    model: arg("--model"),
    rates: arg("--rates")?.split(",").map(Number),
    sloTtftMs: num("--slo-ttft"),
    sloItlMs: num("--slo-itl"),
    requests: num("--requests"),
    drainS: num("--drain"),
    seed: num("--seed"),
    pdRouterUrl: arg("--pd-router"),
    colocatedDecode: arg("--colocated-decode"),
    colocatedThreads: num("--colocated-threads"),
  });
  for (const f of figures) process.stdout.write(JSON.stringify(f) + "\n");
  process.stderr.write(`bench: load after: ${machineLoad()}\n`);
}
