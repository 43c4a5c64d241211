// `npm run bench`: every benchmark, each figure next to a baseline measured in the same run.
// Prints a table, or with --json one JSON object per figure. --only a,b selects benches
// (tcp, transfer, ucx, alloc, store, engine, engine-batch, decode-loop, prefix-reuse, models, stall; pd and recovery run only when named, pd with --quick for a short run); --gib N sets the bytes per throughput figure (default 1).

import { runAllocBench } from "./alloc-bench.js";
import { runStoreBench } from "./store-bench.js";
import type { BenchFigure } from "./bench-figure.js";
import { runEngineBatchBench } from "./engine-batch-bench.js";
import { runEngineBench } from "./engine-bench.js";
import { runDecodeLoopStallBench } from "./decode-loop-stall-bench.js";
import { runGoodputBench } from "./goodput-bench.js";
import { runModelLoadBench } from "./model-load-bench.js";
import { runPdIsolationBench } from "./pd-isolation-bench.js";
import { runPrefixReuseBench } from "./prefix-reuse-bench.js";
import { runRecoveryBench } from "./recovery-bench.js";
import { runStallBench } from "./stall-bench.js";
import { runTcpBench } from "./tcp-bench.js";
import { runUcxBench, runUcxWholeRequestBench } from "./ucx-bench.js";
import { ucxAvailability } from "../src/transport/ucx/index.js";
import { measureTransfer, tcpTransport } from "./transfer-bench.js";

const args = process.argv.slice(2);
const json = args.includes("--json");
const onlyArg = args[args.indexOf("--only") + 1];
const only = args.includes("--only") && onlyArg ? new Set(onlyArg.split(",")) : null;
const gibArg = args.includes("--gib") ? Number(args[args.indexOf("--gib") + 1]) : 1;
const totalBytes = Math.round((Number.isFinite(gibArg) && gibArg > 0 ? gibArg : 1) * 1024 ** 3);
const want = (name: string): boolean => !only || only.has(name);
const progress = (line: string): void => {
  process.stderr.write(`bench: ${line}\n`);
};

const figures: BenchFigure[] = [];
const emit = (f: BenchFigure[]): void => {
  for (const x of f) {
    figures.push(x);
    if (json) process.stdout.write(JSON.stringify({ bench: x.bench, value: x.value, unit: x.unit, baseline: x.baseline, ratio: x.ratio, baselineName: x.baselineName }) + "\n");
  }
};

if (want("tcp") || want("transfer")) {
  progress("tcp data plane vs bare node:net and iperf3");
  const tcp = await runTcpBench({ totalBytes, log: progress });
  emit(tcp);
  if (want("transfer")) {
    progress("end-to-end transfers through kvbridge (Alloc + writes + Commit) over TCP");
    const bare = new Map(tcp.filter((f) => f.bench.startsWith("tcp.throughput.") && f.baselineName?.includes("node:net")).map((f) => [f.bench.split(".").pop()!, f.baseline!] as const));
    const barePool = new Map(tcp.filter((f) => f.bench.startsWith("tcp.bare-node-net-pool.")).map((f) => [f.bench.split(".").pop()!, f.value] as const));
    const iperf = tcp.find((f) => f.baselineName?.includes("iperf3"))?.baseline ?? null;
    const t = tcpTransport();
    try {
      // 16 chunks per request, then 64 MiB requests (the control plane's three calls per request
      // spread over more bytes).
      for (const [suffix, shape] of [["", { chunksPerRequest: 16 }], [".64MiB_requests", { requestBytes: 64 * 1024 ** 2 }]] as const) {
        if (suffix) progress("the same with 64 MiB requests");
        for (const r of await measureTransfer("tcp", t, totalBytes, [], {}, shape)) {
          const name = r.chunk >= 1024 ** 2 ? `${r.chunk / 1024 ** 2}MiB` : `${r.chunk / 1024}KiB`;
          const b = bare.get(name) ?? null;
          const bp = barePool.get(name) ?? null;
          emit([
            { bench: `transfer.tcp.${name}${suffix}`, value: r.gbps, unit: "GB/s", baseline: b, baselineName: "bare node:net socket", ratio: b ? r.gbps / b : null },
            { bench: `transfer.tcp.${name}${suffix}.vs_bare_pool`, value: r.gbps, unit: "GB/s", baseline: bp, baselineName: "bare node:net, distinct bytes into a pool", ratio: bp ? r.gbps / bp : null },
            { bench: `transfer.tcp.${name}${suffix}.vs_iperf3`, value: r.gbps, unit: "GB/s", baseline: iperf, baselineName: "iperf3 single stream", ratio: iperf ? r.gbps / iperf : null },
          ]);
        }
      }
    } finally {
      await t.close();
    }
  }
}
if (want("ucx")) {
  const avail = ucxAvailability();
  if (!avail.available) {
    progress(`UCX unavailable (${avail.reason}): no UCX figures`);
  } else {
    // Shared memory only: UCX over its tcp transport is never offered (its puts are emulated), so
    // its receiver refuses to start (ucx_not_direct) and it has no figure to judge.
    progress("UCX puts vs ucx_perftest ucp_put_bw and memcpy (shared memory)");
    const raw = await runUcxBench({ totalBytes, log: progress, transports: ["shm"] });
    emit(raw);
    // Whole requests through `kvbridge send`'s path over UCX shared memory, against a memcpy sweep
    // of the same distinct bytes and the TCP data plane, all in this run. (UCX over its tcp
    // transport is not offered: its puts are emulated; kvbridge's TCP data plane carries them.)
    progress("whole requests through kvbridge over UCX shared memory vs memcpy and the TCP data plane");
    emit(await runUcxWholeRequestBench({ totalBytes, log: progress }));
  }
}
if (want("alloc")) {
  progress("Alloc latency vs a bare grpc-js unary call");
  emit(await runAllocBench());
}
if (want("store")) {
  progress("the store at scale: evicting Allocs on a full pool, a sweep of many quarantined slots");
  emit(runStoreBench());
}
if (want("engine")) {
  progress("TTFT: disaggregated vs single process (512, 2k, 8k tokens)");
  emit(await runEngineBench());
}
if (want("engine") || want("decode-loop")) {
  progress("the decode node's event loop while a 4k/8k-token prefix is checked and loaded, vs checking and assembling it in one step");
  emit(await runDecodeLoopStallBench({ log: progress }));
}
if (want("engine") || want("engine-batch")) {
  progress("batched decode: aggregate tokens/s at 1, 4, 16 streams on the medium model, one context per request as the baseline");
  emit(await runEngineBatchBench({ preset: "medium", log: progress }));
}
if (want("engine") || want("prefix-reuse") || want("pd")) {
  progress("prefix reuse on prefill: a 2k-token prompt 90% seen before vs cold, and a 10-turn chat");
  emit(await runPrefixReuseBench({ log: progress }));
}
if (want("models")) {
  progress("declarative model loads: same options (a no-op) vs other options (a reload)");
  emit(await runModelLoadBench({ log: progress }));
}
if (want("stall")) {
  progress("a small Plan + Prefill while 1 MiB prompts arrive at the same prefill node, vs the idle node");
  emit(await runStallBench({ log: progress }));
}
// Minutes of streams and arrivals on pinned node processes: only when asked for (--only pd).
if (only?.has("pd")) {
  const quick = args.includes("--quick");
  progress("PD: decode ITL while long prompts arrive, PD vs colocated on the same two cores");
  emit(await runPdIsolationBench({ log: progress, quick }));
  progress("PD: goodput (TTFT <= 2 s and ITL p99 <= 100 ms for 90 % of requests), PD vs colocated");
  emit(await runGoodputBench({ log: progress, quick }));
}
// Minutes of restarts and freezes: only when asked for (--only recovery).
if (only?.has("recovery")) {
  progress("router recovery: a restarted prefill or decode node served again, after outages of several lengths");
  emit(await runRecoveryBench({ log: progress }));
}

if (!json) {
  const rows = figures.map((f) => [
    f.bench,
    `${f.value.toFixed(f.unit === "bytes" ? 0 : 3)} ${f.unit}`,
    f.baseline === null ? "-" : `${f.baseline.toFixed(f.unit === "bytes" ? 0 : 3)} (${f.baselineName ?? "baseline"})`,
    f.ratio === null ? "-" : `${f.ratio.toFixed(2)}x`,
  ]);
  const head = ["bench", "value", "baseline", "ratio"];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) process.stdout.write(r.map((c, i) => c.padEnd(w[i]!)).join("  ") + "\n");
}
