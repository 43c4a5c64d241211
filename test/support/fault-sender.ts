// A sender process for fault tests and the soak: pushes requests with shared prefixes through the
// real KvSender to a decode node, cancels some mid-push, leaves some committed and never consumed,
// verifies some byte for byte, and reports every outcome. Being a process of its own, it can be
// killed with SIGKILL or frozen with SIGSTOP by the test that started it.
//   node --import tsx test/support/fault-sender.ts '<FaultSenderConfig as JSON>'
// It prints one line per event on stdout: `FAULT_SENDER {"event": "ready" | "progress" | "done", ...}`.

import { createHash } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { KvbridgeError, toKvbridgeError } from "../../src/errors/kvbridge-error.js";
import { InspectClient } from "../../src/wire/inspect-client.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";
import { KvSender, type PushChunk } from "../../src/transfer/sender.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import type { SenderTransport, TransportKind } from "../../src/transport/transport.js";
import { ucxAvailability, UcxSenderTransport } from "../../src/transport/ucx/index.js";
import { RedirectedTcpTransport } from "./fault-redirect.js";
import { spawnScript, type RunningProcess } from "./processes.js";

export interface FaultSenderConfig {
  /** The decode node's gRPC address. */
  target: string;
  transport: "tcp" | "ucx" | "auto";
  /** Dial the TCP data plane here instead of the receiver's offer (a FaultProxy in front of it). */
  redirectTcp?: { host: string; port: number };
  /** Key namespace: processes with the same run share prefixes (and dedup against each other). */
  run: string;
  /** Request id prefix, unique per process. */
  idPrefix: string;
  /** Requests to start; 0 = until durationMs or SIGTERM. */
  requests: number;
  /** Stop starting requests after this long; 0 = no limit. */
  durationMs: number;
  concurrency: number;
  chunksMin: number;
  chunksMax: number;
  chunkBytes: number;
  /** Distinct shared prefixes, each `prefixChunks` chunks; a request starts with one of them. */
  prefixes: number;
  prefixChunks: number;
  /** Fraction of pushes cancelled (AbortSignal) after a random 0..cancelMaxMs. */
  cancelRate: number;
  cancelMaxMs: number;
  /** Fraction of committed requests never released: the receiver's hold must give their pins back. */
  abandonRate: number;
  /** Fraction of committed requests checked byte for byte (AwaitReady + ChecksumKeys). */
  verifyRate: number;
  /** KvSender fault injection: pause between Alloc and the writes. */
  faultDelayMs?: number;
  rpcTimeoutMs?: number;
  ackTimeoutMs?: number;
  /** A push not settled after this long counts as stuck. */
  stuckMs: number;
  /** Progress line every this many ms; 0 = none. */
  reportMs: number;
  /** Seed for the choices (chunk counts, prefixes, cancels). */
  seed: number;
}

export interface FaultSenderCounts {
  started: number;
  ok: number;
  cancelled: number;
  /** Failed pushes by error code; KV_FAILED counts commits whose deduped chunk lost its writer. */
  failed: Record<string, number>;
  abandoned: number;
  verified: number;
  /** Verified chunks whose bytes differed: data corruption, always a bug. */
  corrupt: number;
  bytes: number;
  deduped: number;
  /** Pushes that did not settle within stuckMs (they may settle later; counted once). */
  stuck: number;
  inFlight: number;
  maxSettleMs: number;
  /** First few error messages, for the report. */
  errors: string[];
  transports: string[];
}

export const DEFAULT_FAULT_SENDER: Omit<FaultSenderConfig, "target" | "run" | "idPrefix"> = {
  transport: "tcp",
  requests: 0,
  durationMs: 0,
  concurrency: 4,
  chunksMin: 2,
  chunksMax: 6,
  chunkBytes: 64 * 1024,
  prefixes: 4,
  prefixChunks: 2,
  cancelRate: 0,
  cancelMaxMs: 20,
  abandonRate: 0,
  verifyRate: 0,
  stuckMs: 30_000,
  reportMs: 500,
  seed: 1,
};

const LINE = "FAULT_SENDER ";

/** Chunk content: a 32-byte pattern from its key, repeated; equal keys give equal bytes everywhere. */
function fill(buf: Buffer, key: string): void {
  buf.fill(createHash("sha256").update(key).digest());
}

function sha256Of(key: string, size: number): string {
  const b = Buffer.allocUnsafe(size);
  fill(b, key);
  return createHash("sha256").update(b).digest("hex");
}

/** xorshift32: choices reproducible from the seed, and cheap. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

async function runSender(cfg: FaultSenderConfig): Promise<void> {
  const emit = (event: string, body: object = {}): void => {
    process.stdout.write(`${LINE}${JSON.stringify({ event, ...body })}\n`);
  };
  const transports: Partial<Record<TransportKind, SenderTransport>> = {};
  const tcp = new TcpSenderTransport({ connections: 2, ackTimeoutMs: cfg.ackTimeoutMs ?? 15_000, connectTimeoutMs: 5_000 });
  transports.tcp = cfg.redirectTcp ? new RedirectedTcpTransport(tcp, cfg.redirectTcp) : tcp;
  if (cfg.transport !== "tcp") {
    const avail = ucxAvailability();
    if (avail.available) transports.ucx = UcxSenderTransport.create();
    else if (cfg.transport === "ucx") throw new KvbridgeError("UNAVAILABLE", `UCX asked for but unavailable here: ${avail.reason}`);
  }
  const sender = new KvSender({
    fingerprint: "",
    transports,
    preference: cfg.transport,
    senderId: cfg.idPrefix,
    rpcTimeoutMs: cfg.rpcTimeoutMs ?? 10_000,
    faultDelayBeforeWriteMs: cfg.faultDelayMs,
  });
  const control = new ReceiverClient(cfg.target);
  const inspect = new InspectClient(cfg.target);

  const c: FaultSenderCounts = {
    started: 0, ok: 0, cancelled: 0, failed: {}, abandoned: 0, verified: 0, corrupt: 0, bytes: 0, deduped: 0,
    stuck: 0, inFlight: 0, maxSettleMs: 0, errors: [], transports: [],
  };
  const fail = (code: string, message: string): void => {
    c.failed[code] = (c.failed[code] ?? 0) + 1;
    if (c.errors.length < 8) c.errors.push(`${code}: ${message}`.slice(0, 300));
  };
  const transportsSeen = new Set<string>();
  const random = rng(cfg.seed);
  const startedAt = Date.now();
  let stopping = false;
  process.once("SIGTERM", () => {
    stopping = true;
  });
  const timer = cfg.reportMs > 0 ? setInterval(() => emit("progress", { ...c, transports: [...transportsSeen] }), cfg.reportMs) : undefined;

  // Shared prefixes: keys and bytes are the same in every process of the run.
  const prefixes: PushChunk[][] = Array.from({ length: cfg.prefixes }, (_, p) =>
    Array.from({ length: cfg.prefixChunks }, (_, i) => {
      const key = `${cfg.run}-p${p}-c${i}`;
      const data = Buffer.allocUnsafe(cfg.chunkBytes);
      fill(data, key);
      return { key, data };
    }),
  );
  let next = 0;
  const more = (): boolean =>
    !stopping && (cfg.requests === 0 || next < cfg.requests) && (cfg.durationMs === 0 || Date.now() - startedAt < cfg.durationMs);

  const worker = async (): Promise<void> => {
    const staging = Array.from({ length: cfg.chunksMax }, () => Buffer.allocUnsafe(cfg.chunkBytes));
    while (more()) {
      const r = next++;
      const requestId = `${cfg.idPrefix}-${r}`;
      const total = cfg.chunksMin + Math.floor(random() * (cfg.chunksMax - cfg.chunksMin + 1));
      const prefix = cfg.prefixes > 0 ? prefixes[Math.floor(random() * cfg.prefixes)]! : [];
      const chunks: PushChunk[] = prefix.slice(0, total);
      for (let i = chunks.length; i < total; i++) {
        const key = `${cfg.run}-${requestId}-c${i}`;
        const data = staging[i]!;
        fill(data, key);
        chunks.push({ key, data });
      }
      const cancel = random() < cfg.cancelRate ? random() * cfg.cancelMaxMs : -1;
      const abandon = random() < cfg.abandonRate;
      const verify = !abandon && random() < cfg.verifyRate;
      const ac = new AbortController();
      const cancelTimer = cancel >= 0 ? setTimeout(() => ac.abort(), cancel) : undefined;
      c.started++;
      c.inFlight++;
      const t0 = Date.now();
      let settled = false;
      const watchdog = setTimeout(() => {
        if (!settled) c.stuck++;
      }, cfg.stuckMs);
      try {
        const res = await sender.push(cfg.target, requestId, chunks, { signal: ac.signal });
        c.bytes += res.bytesSent;
        c.deduped += res.deduped;
        transportsSeen.add(res.transport);
        if (abandon) {
          c.abandoned++;
          c.ok++;
        } else {
          // Released even when the check fails, so a failed check strands nothing either.
          const checked = verify ? await verifyChunks(requestId, chunks).then(() => undefined, (e: unknown) => e) : undefined;
          await control.release({ requestId }, { timeoutMs: 10_000 });
          if (checked !== undefined) throw checked;
          if (res.commit.failed > 0) fail("KV_FAILED", `${requestId}: ${res.commit.failed} deduped chunk(s) lost their writer`);
          else c.ok++;
        }
      } catch (err) {
        const e = toKvbridgeError(err);
        if (e.code === "CANCELLED" && ac.signal.aborted) c.cancelled++;
        else fail(e.code, `${requestId}: ${e.message}`);
      } finally {
        settled = true;
        clearTimeout(watchdog);
        if (cancelTimer) clearTimeout(cancelTimer);
        c.inFlight--;
        c.maxSettleMs = Math.max(c.maxSettleMs, Date.now() - t0);
      }
    }
  };

  const verifyChunks = async (requestId: string, chunks: PushChunk[]): Promise<void> => {
    const aw = await control.awaitReady({ requestId, timeoutMs: 10_000 }, { timeoutMs: 12_000 });
    if (!aw.allReady) {
      // A deduped chunk whose writer failed: not corruption, the request is reported KV_FAILED.
      throw new KvbridgeError("KV_FAILED", `${requestId}: keys not READY (${aw.states.join(",")})`);
    }
    const sums = await inspect.checksumKeys({ keys: chunks.map((x) => x.key) }, { timeoutMs: 10_000 });
    sums.checksums.forEach((s, i) => {
      const chunk = chunks[i]!;
      // The request pins its keys until Release, so each must be READY with exactly its bytes.
      if (s.state !== "ready" || s.sha256 !== sha256Of(chunk.key, chunk.data.length)) {
        c.corrupt++;
        if (c.errors.length < 8) c.errors.push(`CORRUPT: ${requestId} chunk ${s.key} is ${s.state} sha256 ${s.sha256}`);
      }
    });
    c.verified += chunks.length;
  };

  emit("ready", { pid: process.pid });
  try {
    await Promise.all(Array.from({ length: cfg.concurrency }, () => worker()));
  } finally {
    if (timer) clearInterval(timer);
    await sender.close();
    control.close();
    inspect.close();
    await Promise.all(Object.values(transports).map((t) => t.close()));
  }
  emit("done", { ...c, transports: [...transportsSeen], ms: Date.now() - startedAt });
}

export interface FaultSenderProcess {
  proc: RunningProcess;
  pid: number;
  /** The latest counts (progress or done); undefined before the first report. */
  latest(): FaultSenderCounts | undefined;
  /** Resolves with the final counts once the process printed them (rejects if it exits without). */
  done(timeoutMs?: number): Promise<FaultSenderCounts>;
  /** Resolves once `pred(latest counts)` holds; rejects after timeoutMs. */
  waitFor(pred: (c: FaultSenderCounts) => boolean, timeoutMs?: number): Promise<FaultSenderCounts>;
}

/** Starts a sender process; resolves once it is ready to push. */
export async function startFaultSender(
  cfg: Partial<FaultSenderConfig> & Pick<FaultSenderConfig, "target" | "run" | "idPrefix">,
  env: NodeJS.ProcessEnv = {},
): Promise<FaultSenderProcess> {
  const full: FaultSenderConfig = { ...DEFAULT_FAULT_SENDER, ...cfg };
  const proc = spawnScript("test/support/fault-sender.ts", [JSON.stringify(full)], env);
  const parse = (l: string): (FaultSenderCounts & { event: string }) | undefined =>
    l.startsWith(LINE) ? (JSON.parse(l.slice(LINE.length)) as FaultSenderCounts & { event: string }) : undefined;
  const readyLine = await proc.waitForLine(/^FAULT_SENDER \{"event":"ready"/, 60_000);
  const ready = JSON.parse(readyLine.slice(LINE.length)) as { pid: number };
  const latest = (): FaultSenderCounts | undefined => {
    for (let i = proc.lines.length - 1; i >= 0; i--) {
      const p = parse(proc.lines[i]!);
      if (p && p.event !== "ready") return p;
    }
    return undefined;
  };
  return {
    proc,
    pid: ready.pid,
    latest,
    async done(timeoutMs = 60_000) {
      return parse(await proc.waitForLine(/^FAULT_SENDER \{"event":"done"/, timeoutMs))!;
    },
    async waitFor(pred, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const l = latest();
        if (l && pred(l)) return l;
        if (Date.now() > deadline) throw new Error(`fault sender: condition not met within ${timeoutMs} ms; last counts ${JSON.stringify(l)}`);
        if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error(`fault sender exited; output:\n${proc.lines.slice(-20).join("\n")}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runSender(JSON.parse(process.argv[2] ?? "{}") as FaultSenderConfig).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
