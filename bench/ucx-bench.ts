// UCX data-plane put throughput through UcxSenderTransport for 256 KiB / 1 MiB / 4 MiB chunks over
// shared memory and tcp, next to ucx_perftest (ucp_put_bw, same UCX_TLS, server and client processes
// on loopback) and host memcpy (Buffer.copy) as the ceiling, in interleaved rounds of one run (best
// round of each reported). The receiver runs in a child process (bench/ucx-bench-receiver.ts).
//
// Three figures per transport and size:
//  - ucx.<t>.<size>: every chunk goes to the same remote address from the same source buffer, and
//    that source lives in UCX-allocated memory, exactly what ucx_perftest ucp_put_bw does (both
//    ends cache-resident): the transport-overhead comparison, judged against ucx_perftest.
//  - ucx.<t>.<size>.heap_source: the same, from an ordinary Node Buffer: judged against memcpy
//    (Buffer.copy) between the same kind of buffers.
//  - ucx.<t>.<size>.sweep: chunks walk a 256 MiB pool from a 64 MiB ring of Node Buffers, as KV
//    chunks do: judged against memcpy walking the same way.
// runUcxWholeRequestBench: whole requests through `kvbridge send`'s path over UCX shared memory,
// against a memcpy sweep of the same distinct bytes and the TCP data plane, in the same run.
// Run: npx tsx bench/ucx-bench.ts [GiB] [--variants] [--whole-requests]
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { allocateUcxPool } from "../src/memory/ucx-pool.js";
import { ucxAvailability, UcxSenderTransport, type UcxSenderChannel } from "../src/transport/ucx/index.js";
import type { SlotWrite } from "../src/transport/transport.js";
import type { BenchFigure } from "./bench-figure.js";
import { freePort } from "./tcp-bench.js";
import { measureTransfer, tcpTransport } from "./transfer-bench.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const GB = 1e9;
const POOL_BYTES = 256 * MiB;
const SOURCE_RING_BYTES = 64 * MiB;
/** Each writeAll is one "request" of this many chunks; this many requests are in flight at once. */
const CHUNKS_PER_REQUEST = 16;
const REQUESTS_IN_FLIGHT = 4;

export type UcxBenchTransport = "shm" | "tcp";

export interface UcxBenchOptions {
  /** Bytes pushed per measurement; at least 1 GiB for reported figures. Default 1 GiB. */
  totalBytes?: number;
  /** Interleaved rounds per configuration; the best is reported. Default 2. */
  repeats?: number;
  sizes?: number[];
  transports?: UcxBenchTransport[];
  /** Also measure shared memory into a libc mmap pool (UCX 1.13's software-emulated put). */
  variants?: boolean;
  /** Progress lines go here (default: nowhere). */
  log?: (line: string) => void;
}

const TLS: Record<UcxBenchTransport, string> = { shm: "posix,cma,self", tcp: "tcp,self" };

function sizeName(bytes: number): string {
  return bytes >= MiB ? `${bytes / MiB}MiB` : `${bytes / KiB}KiB`;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

function figure(bench: string, bytesPerSecond: number, baseline: number | null, baselineName: string): BenchFigure {
  return {
    bench,
    value: round3(bytesPerSecond / GB),
    unit: "GB/s",
    baseline: baseline === null ? null : round3(baseline / GB),
    baselineName,
    ratio: baseline === null ? null : round3(bytesPerSecond / baseline),
  };
}

interface Receiver {
  proc: ChildProcess;
  offer: { kind: "ucx"; workerAddress: Buffer; rkey: Buffer; baseAddress: bigint };
}

async function startReceiver(allocator: "ucx" | "mmap", tls: string): Promise<Receiver> {
  const self = fileURLToPath(import.meta.url);
  const fromSource = self.endsWith(".ts");
  const script = path.join(path.dirname(self), fromSource ? "ucx-bench-receiver.ts" : "ucx-bench-receiver.js");
  const proc = spawn(process.execPath, [...(fromSource ? ["--import", "tsx"] : []), script, String(POOL_BYTES / (4 * MiB)), String(4 * MiB), allocator, tls], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: proc.stdout! });
  const line = await Promise.race([
    new Promise<string>((resolve) => lines.on("line", (l) => l.startsWith("UCX_BENCH_OFFER ") && resolve(l))),
    once(proc, "exit").then(() => {
      throw new Error(`bench receiver (${allocator}, ${tls}) exited before its offer`);
    }),
  ]);
  const o = JSON.parse(line.slice("UCX_BENCH_OFFER ".length)) as { workerAddress: string; rkey: string; baseAddress: string };
  return {
    proc,
    offer: { kind: "ucx", workerAddress: Buffer.from(o.workerAddress, "base64"), rkey: Buffer.from(o.rkey, "base64"), baseAddress: BigInt(o.baseAddress) },
  };
}

async function stopReceiver(r: Receiver): Promise<void> {
  const exited = once(r.proc, "exit");
  r.proc.stdin!.end();
  const timer = setTimeout(() => r.proc.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

type Shape = "same" | "sweep";

/** A ring of distinct source chunks (sweep) or one chunk reused (same). */
function sources(chunk: number, shape: Shape): Buffer[] {
  if (shape === "same") return [randomBytes(chunk)];
  return Array.from({ length: Math.max(1, Math.floor(SOURCE_RING_BYTES / chunk)) }, () => randomBytes(chunk));
}

/** Pushes `bytes` through the channel as requests of CHUNKS_PER_REQUEST chunks, REQUESTS_IN_FLIGHT at once; bytes/s. */
async function measureChannel(channel: UcxSenderChannel, chunk: number, bytes: number, shape: Shape, src: Buffer[]): Promise<number> {
  const chunks = Math.ceil(bytes / chunk);
  const slotsInPool = POOL_BYTES / chunk;
  let next = 0;
  const signal = AbortSignal.timeout(600_000);
  const lane = async (lane: number): Promise<void> => {
    for (let r = 0; next < chunks; r++) {
      const first = next;
      const n = Math.min(CHUNKS_PER_REQUEST, chunks - next);
      next += n;
      const writes: SlotWrite[] = Array.from({ length: n }, (_, i) => {
        const k = first + i;
        const slot = shape === "same" ? 0 : k % slotsInPool;
        return { slot, poolOffset: slot * chunk, token: Buffer.alloc(8), data: src[k % src.length]! };
      });
      await channel.writeAll(`bench-${lane}-${r}`, writes, signal);
    }
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: REQUESTS_IN_FLIGHT }, (_, l) => lane(l)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return (chunks * chunk) / seconds;
}

/** Buffer.copy of the same chunks the same way (one core, this process); bytes/s. */
function measureMemcpy(chunk: number, bytes: number, shape: Shape, src: Buffer[], pool: Buffer): number {
  const chunks = Math.ceil(bytes / chunk);
  const slotsInPool = pool.length / chunk;
  const started = process.hrtime.bigint();
  for (let k = 0; k < chunks; k++) {
    const slot = shape === "same" ? 0 : k % slotsInPool;
    src[k % src.length]!.copy(pool, slot * chunk);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return (chunks * chunk) / seconds;
}


/** ucx_perftest -t ucp_put_bw between two processes on loopback; bytes/s, or null when it cannot run. */
async function measurePerftest(tls: string, chunk: number, bytes: number): Promise<number | null> {
  const port = await freePort();
  const env = { ...process.env, UCX_TLS: tls };
  const server = spawn("ucx_perftest", ["-p", String(port)], { env, stdio: ["ignore", "ignore", "ignore"] });
  const serverGone = once(server, "exit").then(() => true);
  void once(server, "error").catch(() => {});
  try {
    const iterations = Math.ceil(bytes / chunk);
    const args = ["127.0.0.1", "-p", String(port), "-t", "ucp_put_bw", "-s", String(chunk), "-n", String(iterations), "-w", String(Math.min(100, iterations)), "-f"];
    // The server's "Waiting for connection" sits in its stdout buffer when piped, so instead the
    // client retries while the server is still starting (connection refused).
    for (let attempt = 0; attempt < 50; attempt++) {
      const client = spawn("ucx_perftest", args, { env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      client.stdout!.on("data", (b: Buffer) => (out += b.toString()));
      client.stderr!.on("data", (b: Buffer) => (out += b.toString()));
      const [code] = (await Promise.race([once(client, "exit"), once(client, "error").then(() => [-1])])) as [number | null];
      if (code === 0) {
        // -f prints one row: iterations, latency 50%/avg/overall (us), bandwidth avg/overall (MB/s, MB = 2^20), rate avg/overall.
        const row = out
          .trim()
          .split("\n")
          .map((l) => l.trim().split(/\s+/).map(Number))
          .find((f) => f.length === 8 && f.every(Number.isFinite));
        return row ? row[5]! * MiB : null;
      }
      if (!out.includes("Connection refused") || (await Promise.race([serverGone, new Promise<false>((r) => setTimeout(() => r(false), 100))]))) return null;
    }
    return null;
  } finally {
    server.kill("SIGKILL");
  }
}

interface Best {
  same: number;
  heap: number;
  sweep: number;
  perftest: number | null;
  memSame: number;
  memSweep: number;
}

/** Interleaved rounds of every subject for one chunk size; the best round of each. */
async function measureSize(
  channel: UcxSenderChannel,
  s: { name: string; tls: string; perftest: boolean },
  chunk: number,
  totalBytes: number,
  repeats: number,
  pool: Buffer,
  log: (line: string) => void,
): Promise<Best> {
  const best: Best = { same: 0, heap: 0, sweep: 0, perftest: null, memSame: 0, memSweep: 0 };
  const srcSame = sources(chunk, "same");
  const srcSweep = sources(chunk, "sweep");
  // ucx_perftest sends from memory UCX allocated; so does the figure judged against it.
  const ucxSource = allocateUcxPool({ slots: 1, slotBytes: chunk, lock: "auto", ucxConfig: { TLS: s.tls } });
  srcSame[0]!.copy(ucxSource.bytes);
  try {
    for (let r = 0; r < repeats; r++) {
      best.same = Math.max(best.same, await measureChannel(channel, chunk, totalBytes, "same", [ucxSource.bytes]));
      best.heap = Math.max(best.heap, await measureChannel(channel, chunk, totalBytes, "same", srcSame));
      best.sweep = Math.max(best.sweep, await measureChannel(channel, chunk, totalBytes, "sweep", srcSweep));
      if (s.perftest) {
        const p = await measurePerftest(s.tls, chunk, totalBytes);
        if (p !== null) best.perftest = Math.max(best.perftest ?? 0, p);
      }
      best.memSame = Math.max(best.memSame, measureMemcpy(chunk, totalBytes, "same", srcSame, pool));
      best.memSweep = Math.max(best.memSweep, measureMemcpy(chunk, totalBytes, "sweep", srcSweep, pool));
      const gb = (x: number | null): string => (x === null ? "-" : (x / GB).toFixed(2));
      log(`${s.name} ${sizeName(chunk)} round ${r + 1} (best so far, GB/s): same ${gb(best.same)} heap ${gb(best.heap)} sweep ${gb(best.sweep)} perftest ${gb(best.perftest)}`);
    }
  } finally {
    ucxSource.close();
  }
  return best;
}

export async function runUcxBench(opts: UcxBenchOptions = {}): Promise<BenchFigure[]> {
  const log = opts.log ?? (() => {});
  const avail = ucxAvailability();
  if (!avail.available) {
    log(`UCX unavailable (${avail.reason}): no UCX figures`);
    return [];
  }
  const totalBytes = opts.totalBytes ?? GiB;
  const repeats = opts.repeats ?? 2;
  const sizes = opts.sizes ?? [256 * KiB, 1 * MiB, 4 * MiB];
  // UCX over tcp is refused by the receiver (ucx_not_direct) unless asked for explicitly.
  const transports = opts.transports ?? ["shm"];
  const figures: BenchFigure[] = [];
  const pool = Buffer.alloc(POOL_BYTES);

  const setups: Array<{ name: string; tls: string; allocator: "ucx" | "mmap"; perftest: boolean }> = [];
  for (const t of transports) setups.push({ name: t, tls: TLS[t], allocator: "ucx", perftest: true });
  if (opts.variants && transports.includes("shm")) setups.push({ name: "shm-mmap-pool", tls: TLS.shm, allocator: "mmap", perftest: false });

  for (const s of setups) {
    const receiver = await startReceiver(s.allocator, s.tls);
    const sender = UcxSenderTransport.create({ ucxConfig: { TLS: s.tls } });
    try {
      const channel = (await sender.connect(receiver.offer, AbortSignal.timeout(10_000))) as UcxSenderChannel;
      for (const chunk of sizes) {
        const best = await measureSize(channel, s, chunk, totalBytes, repeats, pool, log);
        const base = `ucx.${s.name}.${sizeName(chunk)}`;
        if (s.perftest) {
          if (best.perftest === null) log(`ucx_perftest unavailable for ${s.tls}: no perftest baseline`);
          figures.push(figure(base, best.same, best.perftest, `ucx_perftest ucp_put_bw (UCX_TLS=${s.tls})`));
        }
        figures.push(figure(`${base}.heap_source`, best.heap, best.memSame, "memcpy (Buffer.copy) between Node Buffers, same slot"));
        figures.push(figure(`${base}.sweep`, best.sweep, best.memSweep, "memcpy (Buffer.copy) sweeping a 256 MiB pool"));
      }
    } finally {
      await sender.close();
      await stopReceiver(receiver);
    }
  }
  return figures;
}

// Standalone: npx tsx bench/ucx-bench.ts [GiB] [--variants]
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const gib = Number(process.argv[2]);
  const totalBytes = Number.isFinite(gib) && gib > 0 ? Math.round(gib * GiB) : GiB;
  const log = (l: string): void => void process.stderr.write(`ucx-bench: ${l}\n`);
  const figures = process.argv.includes("--whole-requests")
    ? await runUcxWholeRequestBench({ totalBytes, log })
    : await runUcxBench({ totalBytes, variants: process.argv.includes("--variants"), log });
  for (const f of figures) {
    console.log(`${f.bench.padEnd(36)} ${f.value.toFixed(2).padStart(7)} ${f.unit}  ${f.baselineName ?? ""}: ${f.baseline ?? "-"}  ratio ${f.ratio ?? "-"}`);
  }
}

/**
 * Whole requests through `kvbridge send`'s path (runLoad -> KvSender: Hello, Alloc, 16 chunks,
 * Commit on the data plane (a UCX COMMIT active message), the consumer's batched Release, 4 requests at a time, from unregistered Node Buffers) into a real
 * `kvbridge decode --no-engine` process over UCX shared memory, next to, in the same run:
 *  - a memcpy sweep (Buffer.copy) of the same distinct source bytes into a warm buffer the size of
 *    the decode node's pool: the physical limit of a one-copy transfer on one host;
 *  - the same requests over kvbridge's TCP data plane;
 *  - the same requests over UCX committed with the gRPC Commit (before the data-plane commit).
 * Figures: transfer.ucx.shm.<size>.vs_memcpy, .vs_tcp and .vs_grpc_commit.
 */
export async function runUcxWholeRequestBench(opts: { totalBytes?: number; log?: (line: string) => void } = {}): Promise<BenchFigure[]> {
  const log = opts.log ?? (() => {});
  const avail = ucxAvailability();
  if (!avail.available) {
    log(`UCX unavailable (${avail.reason}): no whole-request UCX figures`);
    return [];
  }
  const totalBytes = opts.totalBytes ?? GiB;
  const tls = TLS.shm;
  // The decode node offers TCP as well (`--transport auto`, the last --transport wins): a node
  // negotiates data_plane_commit only while it offers TCP. The sender prefers UCX.
  const both = ["--transport", "auto"];
  const ucxT = UcxSenderTransport.create({ ucxConfig: { TLS: tls } });
  let ucxRes: Awaited<ReturnType<typeof measureTransfer>>;
  try {
    ucxRes = await measureTransfer("ucx", ucxT, totalBytes, both, { UCX_TLS: tls });
  } finally {
    await ucxT.close();
  }
  // Before/after in the same run: the same requests committed with the gRPC Commit (the channel
  // without its data-plane commit), as every UCX request was before it had one.
  const grpcT = UcxSenderTransport.create({ ucxConfig: { TLS: tls }, dataPlaneCommit: false });
  let grpcRes: Awaited<ReturnType<typeof measureTransfer>>;
  try {
    grpcRes = await measureTransfer("ucx", grpcT, totalBytes, both, { UCX_TLS: tls });
  } finally {
    await grpcT.close();
  }
  const tcpT = tcpTransport();
  let tcpRes: Awaited<ReturnType<typeof measureTransfer>>;
  try {
    tcpRes = await measureTransfer("tcp", tcpT, totalBytes);
  } finally {
    await tcpT.close();
  }
  const figures: BenchFigure[] = [];
  for (const r of ucxRes) {
    // runLoad's sources: 4 workers x 16 distinct chunks; the decode node's pool: 16 x 4 x 2 slots.
    const src = Array.from({ length: 4 * CHUNKS_PER_REQUEST }, () => randomBytes(r.chunk));
    const pool = Buffer.alloc(r.chunk * CHUNKS_PER_REQUEST * 4 * 2);
    measureMemcpy(r.chunk, pool.length, "sweep", src, pool); // first touch of the destination
    const memcpy = Math.max(measureMemcpy(r.chunk, totalBytes, "sweep", src, pool), measureMemcpy(r.chunk, totalBytes, "sweep", src, pool));
    const tcp = tcpRes.find((t) => t.chunk === r.chunk)?.gbps ?? null;
    const base = `transfer.ucx.shm.${sizeName(r.chunk)}`;
    figures.push(figure(`${base}.vs_memcpy`, r.gbps * GB, memcpy, "memcpy (Buffer.copy) sweep of the same distinct source bytes into a pool-sized buffer"));
    figures.push(figure(`${base}.vs_tcp`, r.gbps * GB, tcp === null ? null : tcp * GB, "the same whole requests over the TCP data plane"));
    const grpc = grpcRes.find((t) => t.chunk === r.chunk)?.gbps ?? null;
    figures.push(figure(`${base}.vs_grpc_commit`, r.gbps * GB, grpc === null ? null : grpc * GB, "the same whole requests over UCX committed with the gRPC Commit"));
    log(
      `whole requests ${sizeName(r.chunk)}: ucx ${r.gbps.toFixed(2)} GB/s (gRPC Commit ${grpc?.toFixed(2) ?? "-"}), tcp ${tcp?.toFixed(2) ?? "-"}, memcpy sweep ${(memcpy / GB).toFixed(2)}`,
    );
  }
  return figures;
}
