// The long fuzz run (npm run fuzz): the fuzzers of test/fuzz at scale, within a time budget, printing
// what ran and what was found. Phases: the gRPC API and the TCP data port of an in-process decode node
// (pool compared byte by byte), the same against a `kvbridge decode --no-engine` process, and the
// engine services (Decode, Prefill) of a real prefill + decode pair on the project's model.
//
//   npm run fuzz                               # 10 minutes, fresh seed
//   npm run fuzz -- --budget-s 120 --seed 42   # shorter, replayable
//   npm run fuzz -- --no-engine                # skip the engine phase (no model load)
//   npm run fuzz -- --phases tcp,engine        # only some phases (grpc, tcp, process, engine)
//
// Exit code 0: no finding; 1: findings (each printed once, with the first input that produced it).
import { Command } from "commander";
import { startDecodeProcess } from "../test/support/decode-process.js";
import { GrpcFuzzer } from "../test/support/fuzz-grpc.js";
import { decodeProcessArgs, startFuzzNode } from "../test/support/fuzz-node.js";
import { FuzzTally, fuzzSeed } from "../test/support/fuzz-tally.js";
import { TcpFuzzer } from "../test/support/fuzz-tcp.js";
import { TcpReceiverDataPlane } from "../src/transport/tcp/tcp-receiver.js";
import { atBaseline, nodeClients } from "../test/support/node-clients.js";
import { startPdCluster } from "../test/support/pd-cluster.js";
import { AdminClient } from "../src/wire/admin-client.js";
import { PrefillClient } from "../src/wire/prefill-client.js";
import { ADMIN_TOKEN_METADATA_KEY } from "../src/services/admin-service.js";
import * as grpc from "@grpc/grpc-js";

interface PhaseResult {
  phase: string;
  inputs: number;
  detail: string;
  findings: number;
  seconds: number;
}

const program = new Command("fuzz")
  .description("long fuzz run of the kvbridge gRPC API and TCP data port")
  .option("--budget-s <s>", "wall-clock budget for all phases together", (v) => Number(v), 600)
  .option("--seed <n>", "seed (default: KVBRIDGE_FUZZ_SEED or a fresh one)", (v) => Number(v))
  .option("--no-engine", "skip the engine phase (Decode and Prefill on a real model)")
  .option("--phases <list>", "comma-separated phases to run: grpc, tcp, process, engine", "grpc,tcp,process,engine")
  .parse();
const opts = program.opts<{ budgetS: number; seed?: number; engine: boolean; phases: string }>();
const phases = new Set(opts.phases.split(",").map((p) => p.trim()));
for (const p of phases) if (!["grpc", "tcp", "process", "engine"].includes(p)) throw new Error(`unknown phase ${p}; use grpc, tcp, process or engine`);
if (!opts.engine) phases.delete("engine");
/** Budget fractions below are of the whole run; phases left out give their share to the others. */
const weightOf: Record<string, number> = { grpc: 0.3, tcp: 0.3, process: 0.25, engine: 0.12 };
const scale = 0.97 / [...phases].reduce((n, p) => n + weightOf[p]!, 0);
const seed = opts.seed ?? fuzzSeed();
const budgetMs = opts.budgetS * 1000;
const started = Date.now();
const results: PhaseResult[] = [];
const tallies: Array<[string, FuzzTally]> = [];

/** A phase's share of the budget, but never past the end of it. */
function share(fraction: number): number {
  return Math.max(1_000, Math.min(budgetMs * fraction * scale, budgetMs - (Date.now() - started) - 5_000));
}

async function phase(name: string, run: (tally: FuzzTally) => Promise<string>): Promise<void> {
  const tally = new FuzzTally(seed);
  tallies.push([name, tally]);
  const t0 = Date.now();
  process.stdout.write(`\n== ${name} (seed ${seed})\n`);
  let detail: string;
  try {
    detail = await run(tally);
  } catch (err) {
    tally.finding(`phase crashed: ${err instanceof Error ? err.message : String(err)}`, err instanceof Error ? (err.stack ?? "") : "");
    detail = "crashed";
  }
  const r = { phase: name, inputs: tally.inputs, detail, findings: tally.findings.length, seconds: Math.round((Date.now() - t0) / 100) / 10 };
  results.push(r);
  process.stdout.write(`${tally.report(name)}\n  ${detail}\n`);
}

if (phases.has("grpc")) await phase("gRPC API, in-process decode node", async (tally) => {
  const token = "fuzz-admin-token";
  const fz = await startFuzzNode({ poolSlots: 8, slotBytes: 4096, leaseMs: 1_500, quarantineMs: 20, holdMs: 3_000, adminToken: token });
  const fuzzer = await GrpcFuzzer.open({
    targets: { KvReceiver: fz.grpcAddress, Inspect: fz.grpcAddress, Admin: fz.grpcAddress },
    services: ["KvReceiver", "Inspect", "Admin"],
    tally,
    namePrefix: `fz${seed & 0xffff}`,
    adminToken: token,
    afterInput: () => fz.invariantProblem(),
  });
  try {
    await fuzzer.runFieldLevel(1_000_000, seed, share(0.15));
    const field = tally.inputs;
    await fuzzer.runRawBytes(1_000_000, seed + 1, share(0.15));
    const stats = await fuzzer.releaseEverything(10_000);
    const metadata = new grpc.Metadata();
    metadata.set(ADMIN_TOKEN_METADATA_KEY, token);
    const admin = new AdminClient(fz.grpcAddress);
    await admin.evict({ allUnpinned: true }, { timeoutMs: 5_000, metadata }).finally(() => admin.close());
    const pool = fz.pool();
    let changed = 0;
    for (let i = 0; i < pool.length; i++) if (pool[i] !== fz.patternAt(i)) changed++;
    if (changed > 0) tally.finding("the gRPC API changed pool bytes", `${changed} bytes differ from the pattern`);
    if (stats.activeRequests !== 0 || stats.slotsWriting !== 0 || stats.slotsReserved !== 0 || stats.slotsQuarantined !== 0) tally.finding("pool not at baseline after the gRPC fuzz", JSON.stringify(stats));
    const inv = fz.invariantProblem();
    if (inv) tally.finding(inv, "end of the gRPC fuzz");
    return `${field} field-level + ${tally.inputs - field} byte-level inputs; pool at baseline: ${stats.activeRequests === 0 && stats.slotsQuarantined === 0}; pool bytes changed: ${changed}`;
  } finally {
    fuzzer.close();
    await fz.close();
  }
});

if (phases.has("tcp")) await phase("TCP data port, in-process decode node", async (tally) => {
  const fz = await startFuzzNode({ poolSlots: 16, slotBytes: 4096, leaseMs: 60_000, quarantineMs: 0 });
  const tcp = fz.node.dataPlanes.find((d): d is TcpReceiverDataPlane => d instanceof TcpReceiverDataPlane);
  if (!tcp) throw new Error("fuzz node: no TCP data plane");
  const fuzzer = await TcpFuzzer.open({
    target: { grpcAddress: fz.grpcAddress, dataPort: fz.dataPort, pool: fz.pool, patternAt: fz.patternAt, invariantProblem: fz.invariantProblem, openConnections: () => tcp.connectionCount },
    tally,
    namePrefix: `tz${seed & 0xffff}`,
  });
  try {
    await fuzzer.run(1_000_000, seed + 2, share(0.3));
    await fuzzer.releaseAll();
    fuzzer.checkPool("end of the TCP fuzz");
    return JSON.stringify(fuzzer.counts);
  } finally {
    fuzzer.close();
    await fz.close();
  }
});

if (phases.has("process")) await phase("gRPC API and TCP data port, decode process", async (tally) => {
  const proc = await startDecodeProcess(decodeProcessArgs({ poolSlots: 16, slotBytes: 4096, leaseMs: 20_000, quarantineMs: 0, holdMs: 20_000 }), { KVBRIDGE_ADMIN_TOKEN: "" });
  try {
    const g = await GrpcFuzzer.open({ targets: { KvReceiver: proc.grpc, Inspect: proc.grpc, Admin: proc.grpc }, services: ["KvReceiver", "Inspect", "Admin"], tally, namePrefix: `pf${seed & 0xffff}` });
    try {
      await g.runFieldLevel(1_000_000, seed + 3, share(0.08));
      await g.runRawBytes(1_000_000, seed + 4, share(0.07));
      await g.releaseEverything(10_000);
    } finally {
      g.close();
    }
    const grpcInputs = tally.inputs;
    const t = await TcpFuzzer.open({ target: { grpcAddress: proc.grpc, dataPort: proc.dataPort }, tally, namePrefix: `pt${seed & 0xffff}` });
    try {
      await t.run(1_000_000, seed + 5, share(0.1));
      await t.releaseAll();
    } finally {
      t.close();
    }
    const clients = nodeClients(proc.grpc);
    const s = await clients.waitForStats(atBaseline, 25_000).finally(() => clients.close());
    if (!atBaseline(s)) tally.finding("decode process not at baseline after the fuzz", JSON.stringify(s));
    if (proc.proc.child.exitCode !== null) tally.finding("decode process exited during the fuzz", proc.proc.lines.slice(-5).join("\n"));
    const exit = await proc.proc.stop(15_000);
    if (exit.code !== 0) tally.finding("decode process did not exit cleanly on SIGTERM", JSON.stringify(exit));
    return `${grpcInputs} gRPC inputs, then TCP ${JSON.stringify(t.counts)}; at baseline: ${atBaseline(s)}; exit ${JSON.stringify(exit)}`;
  } finally {
    await proc.proc.kill9();
  }
});

if (phases.has("engine")) {
  await phase("Decode and Prefill, engine-backed prefill + decode processes", async (tally) => {
    const cluster = await startPdCluster({ decodeArgs: ["--lease-ms", "5000", "--quarantine-ms", "50", "--hold-ms", "5000", "--kv-wait-ms", "200"] });
    try {
      const prefill = new PrefillClient(cluster.prefillGrpc);
      const plan = await prefill.plan({ prompt: "kv cache" }, { timeoutMs: 30_000 }).finally(() => prefill.close());
      const fuzzer = await GrpcFuzzer.open(
        {
          targets: { KvReceiver: cluster.decodeGrpc, Inspect: cluster.decodeGrpc, Decode: cluster.decodeGrpc, Prefill: cluster.prefillGrpc },
          services: ["Decode", "Prefill"],
          tally,
          namePrefix: `ef${seed & 0xffff}`,
          // Generation and prefill do real work: a hostile max_tokens may run into this, which is allowed.
          deadlines: { waitingMs: 3_000 },
        },
        plan.fingerprint,
      );
      try {
        await fuzzer.runFieldLevel(300, seed + 6, share(0.07));
        const field = tally.inputs;
        await fuzzer.runRawBytes(200, seed + 7, share(0.05));
        const stats = await fuzzer.releaseEverything(15_000);
        if (stats.activeRequests !== 0 || stats.slotsWriting !== 0 || stats.slotsReserved !== 0) tally.finding("engine decode node not at baseline after the fuzz", JSON.stringify(stats));
        for (const [name, p] of [["prefill", cluster.prefill], ["decode", cluster.decode]] as const) {
          if (p.child.exitCode !== null) tally.finding(`${name} process exited during the fuzz`, p.lines.slice(-5).join("\n"));
        }
        return `${field} field-level + ${tally.inputs - field} byte-level inputs on Decode.{Generate,MatchPrefix} and Prefill.{Plan,Prefill}`;
      } finally {
        fuzzer.close();
      }
    } finally {
      await cluster.stop();
    }
  });
}

const total = results.reduce((n, r) => n + r.inputs, 0);
const findings = results.reduce((n, r) => n + r.findings, 0);
process.stdout.write(`\n== summary: ${total} inputs in ${Math.round((Date.now() - started) / 1000)} s, seed ${seed}, ${findings} finding(s)\n`);
for (const r of results) process.stdout.write(`  ${r.phase}: ${r.inputs} inputs, ${r.findings} finding(s), ${r.seconds} s\n`);
for (const [name, t] of tallies) for (const f of t.findings) process.stdout.write(`  [${name}] x${f.count} ${f.signature}\n    ${f.example}\n`);
process.exit(findings > 0 ? 1 : 0);
