// The soak (`npm run soak`): thousands of requests with shared prefixes through the real sender into
// real decode processes on loopback, for a bounded time, while faults are injected: client cancels
// mid-push, sender processes killed (SIGKILL) and restarted, senders frozen past their lease
// (SIGSTOP), data connections torn mid-frame, committed requests never consumed. At the end every
// node must be back at its baseline (no leaked slot, no request left), no push may have hung, no
// verified chunk may differ, and each decode node's RSS must stay flat after warm-up. It prints the
// figures and exits non-zero on any of those failures.
//
//   npm run soak                                    # defaults: 2 decode nodes, 4 senders, 120 s
//   npm run soak -- --duration 600 --json           # longer; one JSON object on stdout
//   KVBRIDGE_SOAK_DURATION=30 npm run soak          # every flag also reads KVBRIDGE_SOAK_<FLAG>
//   npm run soak -- --pd-requests 40                # also completions through a prefill/decode/router cluster

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Stats__Output } from "../src/wire/generated/kvbridge/v1/Stats.js";
import { ucxAvailability } from "../src/transport/ucx/index.js";
import { startFaultCluster, streamCompletion, type FaultCluster } from "../test/support/fault-cluster.js";
import { FaultProxy } from "../test/support/fault-proxy.js";
import { startFaultSender, type FaultSenderCounts, type FaultSenderProcess } from "../test/support/fault-sender.js";
import { sampleText } from "../test/support/model-fixture.js";
import { atBaseline, nodeClients, type NodeClients } from "../test/support/node-clients.js";
import { spawnKvbridge, type RunningProcess } from "../test/support/processes.js";
import { freePort } from "../test/support/free-port.js";

const FLAGS = {
  duration: { type: "string", default: "120", help: "seconds of load (senders stop starting requests after it)" },
  "max-requests": { type: "string", default: "0", help: "stop each sender after this many requests; 0 = no cap" },
  decodes: { type: "string", default: "2", help: "decode node processes (no engine)" },
  senders: { type: "string", default: "4", help: "sender processes, spread over the decode nodes" },
  concurrency: { type: "string", default: "4", help: "requests in flight per sender" },
  "chunk-bytes": { type: "string", default: "16384", help: "bytes per chunk" },
  "fault-every": { type: "string", default: "3000", help: "ms between injected faults (kill, freeze, tear); 0 = none" },
  "cancel-rate": { type: "string", default: "0.05", help: "fraction of pushes cancelled mid-push by their own AbortSignal" },
  "lease-ms": { type: "string", default: "1000", help: "decode --lease-ms (short, so expiries happen)" },
  "hold-ms": { type: "string", default: "2000", help: "decode --hold-ms" },
  "quarantine-ms": { type: "string", default: "2000", help: "decode --quarantine-ms (longer than a frozen sender stays frozen past its lease)" },
  "pool-slots": { type: "string", default: "512", help: "decode --pool-slots" },
  "rss-margin-mib": { type: "string", default: "48", help: "allowed RSS growth per decode node after warm-up" },
  "pd-requests": { type: "string", default: "0", help: "completions through a prefill/decode/router cluster (the engine), some cancelled mid-stream" },
  json: { type: "boolean", default: false, help: "print one JSON object instead of the table" },
  help: { type: "boolean", default: false, help: "this text" },
} as const;

type Flag = keyof typeof FLAGS;

function options(): { [K in Flag]: (typeof FLAGS)[K]["type"] extends "boolean" ? boolean : number } {
  const { values } = parseArgs({
    options: Object.fromEntries(Object.entries(FLAGS).map(([k, v]) => [k, { type: v.type }])) as Record<Flag, { type: "string" | "boolean" }>,
    strict: true,
  });
  const out: Record<string, number | boolean> = {};
  for (const [name, spec] of Object.entries(FLAGS) as Array<[Flag, (typeof FLAGS)[Flag]]>) {
    const env = process.env[`KVBRIDGE_SOAK_${name.toUpperCase().replace(/-/g, "_")}`];
    const raw = values[name] ?? env ?? spec.default;
    if (spec.type === "boolean") {
      out[name] = raw === true || raw === "true" || raw === "1";
      continue;
    }
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${String(raw)}`);
    out[name] = n;
  }
  return out as ReturnType<typeof options>;
}


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rssMiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

interface DecodeNode {
  name: string;
  proc: RunningProcess;
  grpc: string;
  dataPort: number;
  clients: NodeClients;
  proxy: FaultProxy;
  rss: Array<{ t: number; mib: number }>;
}

type SenderKind = "tcp" | "tcp-torn" | "ucx";

interface SenderSlot {
  name: string;
  kind: SenderKind;
  node: DecodeNode;
  proc: FaultSenderProcess | undefined;
  generation: number;
  /** Final counts of every finished or killed process of this slot. */
  finished: FaultSenderCounts[];
  killedInFlight: number;
  frozen: boolean;
}

async function startDecode(name: string, o: ReturnType<typeof options>): Promise<DecodeNode> {
  const [grpcPort, dataPort] = [await freePort(), await freePort()];
  const grpc = `127.0.0.1:${grpcPort}`;
  // warn: one line per lease expiry, not one per request (the soak makes tens of thousands).
  const proc = spawnKvbridge([
    "decode", "--no-engine", "--listen", grpc, "--data-listen", `127.0.0.1:${dataPort}`, "--node-id", name,
    "--pool-slots", String(o["pool-slots"]), "--slot-bytes", String(Math.max(o["chunk-bytes"], 4096)),
    "--lease-ms", String(o["lease-ms"]), "--hold-ms", String(o["hold-ms"]), "--quarantine-ms", String(o["quarantine-ms"]),
    "--log-level", "warn",
  ]);
  const clients = nodeClients(grpc);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const s = await clients.stats().catch(() => undefined);
    if (s?.serving) break;
    if (Date.now() > deadline || proc.child.exitCode !== null) throw new Error(`decode node ${name} did not come up:\n${proc.lines.slice(-20).join("\n")}`);
    await sleep(100);
  }
  const proxy = await FaultProxy.start(dataPort);
  return { name, proc, grpc, dataPort, clients, proxy, rss: [] };
}

function sum(counts: FaultSenderCounts[]): FaultSenderCounts {
  const t: FaultSenderCounts = {
    started: 0, ok: 0, cancelled: 0, failed: {}, abandoned: 0, verified: 0, corrupt: 0, bytes: 0, deduped: 0, stuck: 0, inFlight: 0, maxSettleMs: 0, errors: [], transports: [],
  };
  for (const c of counts) {
    t.started += c.started;
    t.ok += c.ok;
    t.cancelled += c.cancelled;
    t.abandoned += c.abandoned;
    t.verified += c.verified;
    t.corrupt += c.corrupt;
    t.bytes += c.bytes;
    t.deduped += c.deduped;
    t.stuck += c.stuck;
    t.inFlight += c.inFlight;
    t.maxSettleMs = Math.max(t.maxSettleMs, c.maxSettleMs);
    for (const [k, v] of Object.entries(c.failed)) t.failed[k] = (t.failed[k] ?? 0) + v;
    for (const e of c.errors) if (t.errors.length < 12) t.errors.push(e);
    for (const x of c.transports) if (!t.transports.includes(x)) t.transports.push(x);
  }
  return t;
}

interface PdFigures {
  requests: number;
  ok: number;
  cancelled: number;
  failed: Record<string, number>;
  baseline: boolean;
}

/** Completions through a real cluster with the engine; every fourth is abandoned mid-stream by its client. */
async function runPd(n: number, deadlineAt: number): Promise<PdFigures> {
  const fig: PdFigures = { requests: 0, ok: 0, cancelled: 0, failed: {}, baseline: false };
  let cluster: FaultCluster | undefined;
  try {
    cluster = await startFaultCluster({ decodeArgs: ["--lease-ms", "2000", "--quarantine-ms", "300", "--hold-ms", "3000"] });
    const clients = nodeClients(cluster.decodeGrpc);
    for (let i = 0; i < n && Date.now() < deadlineAt; i++) {
      fig.requests++;
      // Shared prefixes: four prompts' worth of text, each request adds its own tail.
      const prompt = `${sampleText(120, 1 + (i % 4))} ${sampleText(20, 100 + i)}`;
      const stream = streamCompletion(cluster.url, { prompt, max_tokens: 24 });
      if (i % 4 === 3) {
        await Promise.race([stream.firstText, sleep(20_000)]);
        stream.abort();
        await stream.ended;
        fig.cancelled++;
        continue;
      }
      const ended = await stream.ended;
      const last = ended.events.at(-1);
      if (ended.status === 200 && last === "[DONE]") fig.ok++;
      else {
        const code = ended.transportError ? "transport" : String(ended.status);
        fig.failed[code] = (fig.failed[code] ?? 0) + 1;
      }
    }
    const s = await clients.waitForStats(atBaseline, 15_000);
    fig.baseline = atBaseline(s);
    clients.close();
  } finally {
    await cluster?.stop();
  }
  return fig;
}

async function main(): Promise<void> {
  const o = options();
  if (o.help) {
    process.stdout.write("npm run soak -- [flags]   (every flag also reads KVBRIDGE_SOAK_<FLAG>)\n");
    for (const [k, v] of Object.entries(FLAGS)) process.stdout.write(`  --${k.padEnd(16)} ${v.help}${v.type === "string" ? ` (default ${v.default})` : ""}\n`);
    return;
  }
  const say = (msg: string): void => {
    if (!o.json) process.stderr.write(`soak: ${msg}\n`);
  };
  const ucx = ucxAvailability().available;
  const durationMs = o.duration * 1000;
  const run = randomBytes(4).toString("hex");
  const nodes: DecodeNode[] = [];
  const slots: SenderSlot[] = [];
  const faults: Record<string, number> = { "sender killed": 0, "sender frozen past its lease": 0, "data connections torn": 0 };
  let exitCode = 0;
  let pdFigures: PdFigures | undefined;

  try {
    for (let i = 0; i < o.decodes; i++) nodes.push(await startDecode(`soak-decode-${i}`, o));
    const kinds: SenderKind[] = ["tcp-torn", ucx ? "ucx" : "tcp", "tcp"];
    for (let i = 0; i < o.senders; i++) {
      const node = nodes[i % nodes.length]!;
      slots.push({ name: `s${i}`, kind: kinds[i % kinds.length]!, node, proc: undefined, generation: 0, finished: [], killedInFlight: 0, frozen: false });
    }
    const startedAt = Date.now();
    const endAt = startedAt + durationMs;
    const launch = async (slot: SenderSlot): Promise<void> => {
      const left = endAt - Date.now();
      if (left <= 500) {
        slot.proc = undefined;
        return;
      }
      slot.generation++;
      slot.proc = await startFaultSender({
        target: slot.node.grpc,
        transport: slot.kind === "ucx" ? "ucx" : "tcp",
        redirectTcp: slot.kind === "tcp-torn" ? { host: "127.0.0.1", port: slot.node.proxy.port } : undefined,
        // One key space per decode node: its senders share (and dedup) the same prefixes.
        run: `${run}-${slot.node.name}`,
        idPrefix: `${run}-${slot.name}-g${slot.generation}`,
        requests: o["max-requests"],
        durationMs: left,
        concurrency: o.concurrency,
        chunksMin: 2,
        chunksMax: 8,
        chunkBytes: o["chunk-bytes"],
        prefixes: 8,
        prefixChunks: 2,
        cancelRate: o["cancel-rate"],
        cancelMaxMs: 10,
        abandonRate: 0.01,
        verifyRate: 0.02,
        rpcTimeoutMs: 5_000,
        ackTimeoutMs: 5_000,
        // A short pause between each Alloc and its writes: a push spends it holding allocations, so a
        // freeze lands on some (its lease must then expire) instead of only on committed requests.
        faultDelayMs: 5,
        stuckMs: 20_000,
        reportMs: 250,
        seed: 1 + slot.generation * 7919 + Number(slot.name.slice(1)),
      });
    };
    await Promise.all(slots.map(launch));
    say(`${nodes.length} decode node(s), ${slots.length} sender(s) (${slots.map((s) => `${s.name}:${s.kind}->${s.node.name}`).join(", ")}), ${o.duration} s`);

    // RSS of every decode node, once a second.
    const rssTimer = setInterval(() => {
      for (const n of nodes) {
        const mib = n.proc.child.pid ? rssMiB(n.proc.child.pid) : undefined;
        if (mib !== undefined) n.rss.push({ t: Date.now() - startedAt, mib });
      }
    }, 1_000);

    const pd = o["pd-requests"] > 0 ? runPd(o["pd-requests"], endAt) : undefined;

    // The fault injector: one fault every fault-every ms, in turn.
    let turn = 0;
    const launching: Array<Promise<void>> = [];
    while (Date.now() < endAt - 1_000) {
      await sleep(o["fault-every"] > 0 ? Math.min(o["fault-every"], endAt - Date.now()) : endAt - Date.now());
      if (o["fault-every"] === 0 || Date.now() >= endAt - 1_000) break;
      const kind = turn++ % 3;
      const live = slots.filter((s) => s.proc && !s.frozen);
      if (live.length === 0) continue;
      const victim = live[turn % live.length]!;
      if (kind === 0) {
        const last = victim.proc!.latest();
        await victim.proc!.proc.kill9();
        if (last) {
          victim.finished.push(last);
          victim.killedInFlight += last.inFlight;
        }
        faults["sender killed"]!++;
        // Relaunched in the background: starting a process takes seconds on a loaded machine, and the
        // injector keeps its cadence meanwhile (the slot has no process, so it is nobody's victim).
        victim.proc = undefined;
        const relaunch = launch(victim);
        relaunch.catch(() => undefined); // awaited (and its failure reported) after the load phase
        launching.push(relaunch);
      } else if (kind === 1) {
        const p = victim.proc!;
        victim.frozen = true;
        p.proc.child.kill("SIGSTOP");
        faults["sender frozen past its lease"]!++;
        // Thawed after its lease ran out but before the quarantine of its slots ends: a UCX put it
        // posts after the thaw may still land, and must meet a quarantined slot (docs/reliability.md).
        void sleep(o["lease-ms"] + Math.min(300, o["quarantine-ms"] / 2)).then(() => {
          p.proc.child.kill("SIGCONT");
          victim.frozen = false;
        });
      } else {
        let torn = 0;
        for (const n of nodes) torn += n.proxy.cutAll();
        if (torn > 0) faults["data connections torn"]!++;
      }
    }

    // Every sender stops starting requests at endAt and prints its final counts.
    await Promise.all(launching);
    for (const s of slots) {
      if (!s.proc) continue;
      s.proc.proc.child.kill("SIGCONT");
      try {
        s.finished.push(await s.proc.done(30_000 + Math.max(0, endAt - Date.now())));
      } catch {
        // No final line within the bound: its in-flight pushes are stuck by definition.
        const last = s.proc.latest();
        if (last) s.finished.push({ ...last, stuck: last.stuck + Math.max(1, last.inFlight) });
        await s.proc.proc.kill9();
      }
    }
    const loadMs = Date.now() - startedAt;
    if (pd) pdFigures = await pd;

    // Leftovers: committed-but-never-consumed requests give their pins back after hold-ms, aborted
    // and expired writes come back after quarantine-ms. Then every node must be at baseline.
    const settleMs = o["hold-ms"] + o["quarantine-ms"] + o["lease-ms"] + 5_000;
    const finalStats: Stats__Output[] = await Promise.all(nodes.map((n) => n.clients.waitForStats(atBaseline, settleMs)));
    clearInterval(rssTimer);

    const totals = sum(slots.flatMap((s) => s.finished));
    const killedInFlight = slots.reduce((a, s) => a + s.killedInFlight, 0);
    const failedTotal = Object.values(totals.failed).reduce((a, b) => a + b, 0);
    const warmup = Math.min(15_000, durationMs * 0.25);
    const nodeFigures = nodes.map((n, i) => {
      const s = finalStats[i]!;
      const after = n.rss.filter((x) => x.t >= warmup && x.t <= loadMs);
      // Medians of the first and the last quarter after warm-up: the trend, not one GC's sawtooth.
      const q = Math.max(1, Math.floor(after.length / 4));
      const start = median(after.slice(0, q).map((x) => x.mib)) ?? n.rss[0]?.mib ?? 0;
      const end = median(after.slice(-q).map((x) => x.mib)) ?? start;
      const max = Math.max(start, ...after.map((x) => x.mib));
      return {
        node: n.name,
        baseline: atBaseline(s),
        leakedSlots: s.slotsTotal - s.slotsFree - s.slotsReady,
        requestsLeft: s.activeRequests,
        slotsTotal: s.slotsTotal,
        committed: Number(s.requestsCommitted),
        aborted: Number(s.requestsAborted),
        leasesExpired: Number(s.leasesExpired),
        dedupHits: Number(s.dedupHits),
        bytesReceived: Number(s.bytesReceived),
        rssMiB: { start: round1(start), end: round1(end), max: round1(max), growth: round1(end - start) },
        /** One sample every 10 s, for plots and eyeballs. */
        rssEvery10s: n.rss.filter((_, k) => k % 10 === 0).map((x) => round1(x.mib)),
      };
    });
    const rssOk = nodeFigures.every((n) => n.rssMiB.growth <= o["rss-margin-mib"]);
    const leaks = nodeFigures.reduce((a, n) => a + n.leakedSlots + n.requestsLeft, 0);
    const summary = {
      seconds: round1(loadMs / 1000),
      decodes: nodes.length,
      senders: slots.map((s) => `${s.name}:${s.kind}->${s.node.name} (${s.generation} process${s.generation === 1 ? "" : "es"})`),
      requests: {
        started: totals.started,
        ok: totals.ok,
        cancelled: totals.cancelled,
        failed: failedTotal,
        failedByReason: totals.failed,
        abandoned: totals.abandoned,
        killedInFlight,
        stuck: totals.stuck,
        maxSettleMs: totals.maxSettleMs,
      },
      ratePerSecond: round1(totals.started / (loadMs / 1000)),
      bytes: totals.bytes,
      mibPerSecond: round1(totals.bytes / 2 ** 20 / (loadMs / 1000)),
      dedupedChunks: totals.deduped,
      verifiedChunks: totals.verified,
      corruptChunks: totals.corrupt,
      faults,
      nodes: nodeFigures,
      leaks,
      rssMarginMiB: o["rss-margin-mib"],
      pd: pdFigures,
      errors: totals.errors,
    };
    const problems: string[] = [];
    if (leaks > 0) problems.push(`${leaks} leaked slot(s) or request(s) left on decode nodes`);
    if (totals.stuck > 0) problems.push(`${totals.stuck} push(es) did not settle within 20 s`);
    if (totals.corrupt > 0) problems.push(`${totals.corrupt} verified chunk(s) differed from what was sent`);
    if (!rssOk) problems.push(`decode RSS grew more than ${o["rss-margin-mib"]} MiB after warm-up`);
    if (totals.ok === 0) problems.push("no request succeeded");
    if (pdFigures && (!pdFigures.baseline || pdFigures.ok === 0)) problems.push("the prefill/decode cluster did not complete requests or did not return to baseline");
    if (o.json) process.stdout.write(JSON.stringify({ ...summary, ok: problems.length === 0, problems }) + "\n");
    else printTable(summary, problems);
    exitCode = problems.length === 0 ? 0 : 1;
  } catch (err) {
    process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    exitCode = 2;
  } finally {
    for (const s of slots) {
      s.proc?.proc.child.kill("SIGCONT");
      await s.proc?.proc.kill9();
    }
    for (const n of nodes) {
      n.clients.close();
      await n.proxy.close();
      await n.proc.stop();
    }
  }
  process.exit(exitCode);
}

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function printTable(s: Record<string, unknown> & { requests: Record<string, unknown>; nodes: Array<Record<string, unknown>> }, problems: string[]): void {
  const out = (k: string, v: unknown): void => {
    process.stdout.write(`${k.padEnd(24)} ${typeof v === "string" ? v : JSON.stringify(v)}\n`);
  };
  out("seconds", s.seconds);
  out("senders", (s.senders as string[]).join(", "));
  for (const [k, v] of Object.entries(s.requests)) out(`requests ${k}`, v);
  out("rate (requests/s)", s.ratePerSecond);
  out("bytes moved", `${String(s.bytes)} (${String(s.mibPerSecond)} MiB/s)`);
  out("deduped chunks", s.dedupedChunks);
  out("verified chunks", `${String(s.verifiedChunks)} (${String(s.corruptChunks)} corrupt)`);
  out("faults injected", s.faults);
  for (const n of s.nodes) out(`node ${String(n.node)}`, n);
  out("leaks", s.leaks);
  if (s.pd) out("pd cluster", s.pd);
  for (const e of s.errors as string[]) out("error sample", e);
  out("result", problems.length === 0 ? "PASS" : `FAIL: ${problems.join("; ")}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(2);
});
