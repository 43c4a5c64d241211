// TCP data-plane throughput on loopback for 256 KiB / 1 MiB / 4 MiB chunks, next to a bare node:net
// socket pushing the same bytes and iperf3 single-stream, measured in interleaved rounds of the same
// run (best round of each reported). The receiver runs in a child process (bench/tcp-bench-receiver.ts).
// Run: npx tsx bench/tcp-bench.ts [GiB] [--variants]

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { TcpSenderTransport, type TcpSenderOptions } from "../src/transport/tcp/tcp-sender.js";
import type { TcpReceiveMode } from "../src/transport/tcp/tcp-receiver-connection.js";
import type { SlotWrite } from "../src/transport/transport.js";
import type { BenchFigure } from "./bench-figure.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const CHUNKS = [256 * KiB, 1 * MiB, 4 * MiB];
/** Each writeAll is one "request" of this many chunks; this many requests are in flight at once. */
const CHUNKS_PER_REQUEST = 16;
const REQUESTS_IN_FLIGHT = 4;
const BENCH_TOKEN = Buffer.from("benchtok", "latin1");
/**
 * The bare-pool baseline: a bare socket moving distinct bytes (a 64 MiB source) into a 256 MiB pool
 * that keeps them, the memory traffic a whole KV transfer has, next to the cache-hot bare socket.
 */
const BARE_SOURCE_BYTES = 64 * MiB;
const BARE_POOL_BYTES = 256 * MiB;

export interface TcpBenchOptions {
  /** Bytes pushed per measurement; at least 1 GiB for reported figures. Default 1 GiB. */
  totalBytes?: number;
  /** Interleaved rounds per configuration; the best is reported. Default 3. */
  repeats?: number;
  /** Also measure receive mode, connection count, frame size and placement alternatives. */
  variants?: boolean;
  /** Progress lines go here (default: nowhere). */
  log?: (line: string) => void;
}

interface Child {
  proc: ChildProcess;
  port: number;
}

function sizeName(bytes: number): string {
  return bytes >= MiB ? `${bytes / MiB}MiB` : `${bytes / KiB}KiB`;
}

async function startReceiver(args: string[]): Promise<Child> {
  const self = fileURLToPath(import.meta.url);
  const fromSource = self.endsWith(".ts");
  const script = path.join(path.dirname(self), fromSource ? "tcp-bench-receiver.ts" : "tcp-bench-receiver.js");
  const proc = spawn(process.execPath, [...(fromSource ? ["--import", "tsx"] : []), script, ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: proc.stdout! });
  const first = await Promise.race([
    once(lines, "line") as Promise<[string]>,
    once(proc, "exit").then(() => {
      throw new Error(`bench receiver ${args.join(" ")} exited before listening`);
    }),
  ]);
  lines.close();
  return { proc, port: (JSON.parse(first[0]) as { port: number }).port };
}

async function stopReceiver(child: Child): Promise<void> {
  const exited = once(child.proc, "exit");
  child.proc.stdin!.end();
  const timer = setTimeout(() => child.proc.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Pushes `bytes` through one configuration and returns bytes/s. */
type Runner = (bytes: number) => Promise<number>;

interface Subject {
  run: Runner;
  close(): Promise<void>;
}

/** kvbridge TCP data plane: bytes sent as requests of CHUNKS_PER_REQUEST chunks, REQUESTS_IN_FLIGHT at once. */
async function kvbridgeSubject(port: number, chunk: number, sender: TcpSenderOptions): Promise<Subject> {
  const transport = new TcpSenderTransport({ ackTimeoutMs: 30_000, ...sender });
  const channel = await transport.connect({ kind: "tcp", host: "127.0.0.1", port }, AbortSignal.timeout(10_000));
  const data = randomBytes(chunk);
  let runs = 0;
  const run: Runner = async (bytes) => {
    const chunks = Math.ceil(bytes / chunk);
    const id = runs++;
    let next = 0;
    const signal = AbortSignal.timeout(600_000);
    const lane = async (lane: number): Promise<void> => {
      for (let r = 0; next < chunks; r++) {
        const n = Math.min(CHUNKS_PER_REQUEST, chunks - next);
        next += n;
        const writes: SlotWrite[] = Array.from({ length: n }, (_, i) => {
          const slot = lane * CHUNKS_PER_REQUEST + i;
          return { slot, poolOffset: slot * chunk, token: BENCH_TOKEN, data };
        });
        await channel.writeAll(`bench-${id}-${lane}-${r}`, writes, signal);
      }
    };
    const started = process.hrtime.bigint();
    await Promise.all(Array.from({ length: REQUESTS_IN_FLIGHT }, (_, l) => lane(l)));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return (chunks * chunk) / seconds;
  };
  return { run, close: () => transport.close() };
}

/**
 * A bare node:net socket pushing chunks with backpressure. By default one chunk sent again and again
 * to a peer that discards it (the cache-hot ceiling); with `sourceBytes`, successive chunks of a
 * source that large, as a sender of real KV reads distinct memory.
 */
async function bareSubject(port: number, chunk: number, sourceBytes = chunk): Promise<Subject> {
  const socket = net.connect({ host: "127.0.0.1", port, noDelay: true });
  await once(socket, "connect");
  const source = randomBytes(Math.max(chunk, Math.floor(sourceBytes / chunk) * chunk));
  const perSource = source.length / chunk;
  const run: Runner = async (bytes) => {
    const chunks = Math.ceil(bytes / chunk);
    const header = Buffer.alloc(8);
    header.writeBigUInt64LE(BigInt(chunks * chunk));
    const done = once(socket, "data");
    const started = process.hrtime.bigint();
    socket.write(header);
    for (let i = 0; i < chunks; i++) {
      const at = (i % perSource) * chunk;
      if (!socket.write(source.subarray(at, at + chunk))) await once(socket, "drain");
    }
    await done;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return (chunks * chunk) / seconds;
  };
  return {
    run,
    close: async () => {
      socket.destroy();
    },
  };
}

/** A loopback port that was free a moment ago (for tools that take a fixed port). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** iperf3 single-stream loopback, receiver-side rate. Returns bytes/s, or null when iperf3 cannot run. */
async function measureIperf3(totalBytes: number): Promise<number | null> {
  const port = await freePort();
  // --forceflush: iperf3 block-buffers stdout into a pipe, hiding its "Server listening" line.
  const server = spawn("iperf3", ["-s", "-1", "--forceflush", "-p", String(port)], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    const started = await Promise.race([
      new Promise<boolean>((resolve) => {
        server.stdout!.on("data", (b: Buffer) => {
          if (b.toString().includes("Server listening")) resolve(true);
        });
      }),
      once(server, "error").then(() => false),
      once(server, "exit").then(() => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000).unref()),
    ]);
    if (!started) return null;
    const client = spawn("iperf3", ["-c", "127.0.0.1", "-p", String(port), "-n", String(totalBytes), "-J"], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    client.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    const [code] = (await once(client, "exit")) as [number | null];
    if (code !== 0) return null;
    const report = JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } } };
    const bps = report.end?.sum_received?.bits_per_second;
    return typeof bps === "number" ? bps / 8 : null;
  } finally {
    server.kill("SIGKILL");
  }
}

const GB = 1e9;
const round = (x: number): number => Math.round(x * 1000) / 1000;

function figure(bench: string, value: number, baseline: number | null, baselineName?: string): BenchFigure {
  return {
    bench,
    value: round(value / GB),
    unit: "GB/s",
    baseline: baseline === null ? null : round(baseline / GB),
    ...(baselineName ? { baselineName } : {}),
    ratio: baseline === null ? null : round(value / baseline),
  };
}

export async function runTcpBench(opts: TcpBenchOptions = {}): Promise<BenchFigure[]> {
  const totalBytes = opts.totalBytes ?? GiB;
  const repeats = opts.repeats ?? 3;
  const log = opts.log ?? (() => {});
  const figures: BenchFigure[] = [];
  // iperf3 runs inside each block's rounds, so every ratio compares numbers taken minutes apart at most.
  const iperfAvailable = (await measureIperf3(64 * MiB)) !== null;
  if (!iperfAvailable) log("iperf3 unavailable: no iperf3 baseline");
  let iperfBest: number | null = null;

  for (const chunk of CHUNKS) {
    const name = sizeName(chunk);
    const slots = String(CHUNKS_PER_REQUEST * REQUESTS_IN_FLIGHT);
    const children: Child[] = [];
    const subjects: Array<[string, Subject]> = [];
    try {
      const bareChild = await startReceiver(["bare"]);
      children.push(bareChild);
      const barePoolChild = await startReceiver(["bare-pool", String(BARE_POOL_BYTES)]);
      children.push(barePoolChild);
      const zeroCopy = await startReceiver(["kvbridge", String(chunk), slots, "zero-copy"]);
      children.push(zeroCopy);
      subjects.push(["bare", await bareSubject(bareChild.port, chunk)]);
      subjects.push(["bare-pool", await bareSubject(barePoolChild.port, chunk, BARE_SOURCE_BYTES)]);
      subjects.push(["kvbridge", await kvbridgeSubject(zeroCopy.port, chunk, {})]);
      if (iperfAvailable) {
        subjects.push(["iperf3", { run: async (bytes) => (await measureIperf3(bytes)) ?? 0, close: async () => {} }]);
      }
      if (opts.variants) {
        const copy = await startReceiver(["kvbridge", String(chunk), slots, "copy"]);
        children.push(copy);
        subjects.push(["copy-receive", await kvbridgeSubject(copy.port, chunk, {})]);
        const variants: Array<[string, TcpSenderOptions]> = [
          ["connections-1", { connections: 1 }],
          ["connections-4", { connections: 4 }],
          ["pin", { placement: "pin" }],
          ["frame-256KiB", { frameBytes: 256 * KiB }],
          ["frame-4MiB", { frameBytes: 4 * MiB }],
        ];
        for (const [label, sender] of variants) subjects.push([label, await kvbridgeSubject(zeroCopy.port, chunk, sender)]);
      }
      // Warm-up (JIT, TCP windows), then interleaved rounds; the best round of each is reported,
      // the one least disturbed by other work on the machine.
      for (const [label, subject] of subjects) if (label !== "iperf3") await subject.run(Math.min(totalBytes, 128 * MiB));
      const best = new Map<string, number>();
      for (let r = 0; r < repeats; r++) {
        for (const [label, subject] of subjects) {
          const v = await subject.run(totalBytes);
          best.set(label, Math.max(best.get(label) ?? 0, v));
          log(`${name} round ${r + 1}: ${label} ${(v / GB).toFixed(3)} GB/s`);
        }
      }
      const bare = best.get("bare")!;
      const ours = best.get("kvbridge")!;
      const iperf = best.get("iperf3") || null;
      if (iperf !== null) iperfBest = Math.max(iperfBest ?? 0, iperf);
      figures.push(figure(`tcp.throughput.${name}`, ours, bare, "bare node:net socket"));
      if (iperf !== null) figures.push(figure(`tcp.throughput.${name}.vs-iperf3`, ours, iperf, "iperf3 single stream"));
      figures.push(figure(`tcp.bare-node-net.${name}`, bare, iperf, "iperf3 single stream"));
      figures.push(figure(`tcp.bare-node-net-pool.${name}`, best.get("bare-pool")!, bare, "bare node:net socket"));
      for (const [label] of subjects.filter(([l]) => !["bare", "bare-pool", "kvbridge", "iperf3"].includes(l))) {
        figures.push(figure(`tcp.variant.${label}.${name}`, best.get(label)!, ours, "kvbridge tcp defaults"));
      }
    } finally {
      for (const [, subject] of subjects) await subject.close();
      for (const child of children) await stopReceiver(child);
    }
  }
  if (iperfBest !== null) figures.unshift(figure("tcp.iperf3.single-stream", iperfBest, null));
  return figures;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const gib = Number(process.argv.slice(2).find((a) => !a.startsWith("--")) ?? "1");
  const figures = await runTcpBench({
    totalBytes: Math.round(gib * GiB),
    variants: process.argv.includes("--variants"),
    log: (l) => process.stderr.write(l + "\n"),
  });
  process.stdout.write(JSON.stringify(figures, null, 2) + "\n");
}
