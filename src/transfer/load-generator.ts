// `kvbridge send`: a transfer load generator for validating a fabric (what ucx_perftest is to UCX).
// Pushes synthetic chunks through the real sender, optionally verifies every chunk's bytes on the
// receiver (AwaitReady + ChecksumKeys), releases what it pushed (batched Release), and reports
// bytes, seconds, GB/s and dedup hits.

import * as grpc from "@grpc/grpc-js";
import { createHash, randomBytes } from "node:crypto";
import { ABORT_TIMEOUT_MS, RPC_TIMEOUT_MS } from "../config/defaults.js";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import { InspectClient } from "../wire/inspect-client.js";
import { ReceiverClient } from "../wire/receiver-client.js";
import { ReleaseBatcher } from "./release-batcher.js";
import type { KvSender, PushChunk } from "./sender.js";

/** How long verification waits for a pushed request's keys to be READY: a push already committed them, so this only bounds a stuck node. */
const VERIFY_WAIT_MS = 30_000;

export interface LoadOptions {
  target: string;
  requests: number;
  chunks: number;
  chunkBytes: number;
  concurrency: number;
  /** Fraction (0..1) of each request's leading chunks that are the same for every request. */
  sharedPrefix: number;
  verify: boolean;
  credentials?: grpc.ChannelCredentials;
  signal?: AbortSignal;
}

export interface LoadResult {
  /** Payload bytes moved (deduped chunks excluded). */
  bytes: number;
  /** From the first Alloc to the last Commit. */
  seconds: number;
  gbps: number;
  dedup_hits: number;
  requests_ok: number;
  requests_failed: number;
  chunks_verified: number;
  transport: string;
  errors: string[];
}

/** Content of a chunk: a 32-byte pattern from its key, repeated; equal keys give equal bytes. */
function fillFromKey(buf: Buffer, key: string): void {
  buf.fill(createHash("sha256").update(key).digest());
}

export async function runLoad(sender: KvSender, o: LoadOptions): Promise<LoadResult> {
  const run = randomBytes(6).toString("hex");
  const shared = Math.min(o.chunks, Math.round(o.chunks * o.sharedPrefix));
  // Shared-prefix chunks are identical across requests: made once. Private chunks use per-worker
  // staging buffers refilled per request, so the generator's memory stays bounded.
  const sharedChunks: PushChunk[] = Array.from({ length: shared }, (_, i) => {
    const key = `${run}-shared-${i}`;
    const data = Buffer.allocUnsafe(o.chunkBytes);
    fillFromKey(data, key);
    return { key, data };
  });
  const sharedSums = sharedChunks.map((c) => createHash("sha256").update(c.data).digest("hex"));

  const creds = o.credentials ?? grpc.credentials.createInsecure();
  const inspect = o.verify ? new InspectClient(o.target, creds) : undefined;
  // Pushed requests are consumed (released) like a decode node would, so the pool never fills up;
  // releases that pile up while one Release call is in flight go together in the next.
  const control = new ReceiverClient(o.target, creds);
  let releaser: ReleaseBatcher | undefined;
  const release = (requestId: string): Promise<void> => {
    releaser ??= new ReleaseBatcher(control, RPC_TIMEOUT_MS, (sender.negotiated(o.target)?.protocolVersion ?? 1) >= 2);
    return releaser.release(requestId);
  };

  let next = 0;
  let bytes = 0;
  let dedup = 0;
  let ok = 0;
  let failed = 0;
  let verified = 0;
  let first = Infinity;
  let last = 0;
  const transports = new Set<string>();
  const errors: string[] = [];

  const workerCount = Math.max(1, Math.min(o.concurrency, o.requests));
  // Every worker's staging buffers are allocated and filled before the first push starts the clock,
  // so no worker's first touch of fresh memory is timed with the transfers of the others. Unverified
  // runs fill once: the receiver never checks the bytes, and making them per request would time the
  // generator's memory fills along with the transfer (verified runs refill per request, as before).
  const stagingOf = Array.from({ length: workerCount }, (_, w) =>
    Array.from({ length: o.chunks - shared }, (_, i) => {
      const data = Buffer.allocUnsafe(o.chunkBytes);
      fillFromKey(data, `${run}-w${w}-c${shared + i}`);
      return data;
    }),
  );

  let workers = 0;
  const worker = async (): Promise<void> => {
    const staging = stagingOf[workers++]!;
    for (;;) {
      if (o.signal?.aborted) return;
      const r = next++;
      if (r >= o.requests) return;
      const requestId = `${run}-req-${r}`;
      const chunks: PushChunk[] = [...sharedChunks];
      staging.forEach((data, i) => {
        const key = `${run}-r${r}-c${shared + i}`;
        if (o.verify) fillFromKey(data, key);
        chunks.push({ key, data });
      });
      try {
        const start = performance.now();
        first = Math.min(first, start);
        const res = await sender.push(o.target, requestId, chunks, { signal: o.signal });
        last = Math.max(last, performance.now());
        bytes += res.bytesSent;
        dedup += res.deduped;
        transports.add(res.transport);
        // Read-modify-write of a shared counter only after the await, never across it.
        if (inspect) {
          const n = await verifyRequest(inspect, requestId, chunks, sharedSums);
          verified += n;
        } else await release(requestId);
        ok++;
      } catch (err) {
        failed++;
        if (errors.length < 10) errors.push(`${requestId}: ${toKvbridgeError(err).message}`);
      }
    }
  };

  const verifyRequest = async (inspect: InspectClient, requestId: string, chunks: PushChunk[], known: string[]): Promise<number> => {
    const aw = await control.awaitReady({ requestId, timeoutMs: VERIFY_WAIT_MS }, { timeoutMs: VERIFY_WAIT_MS + RPC_TIMEOUT_MS });
    if (!aw.allReady) {
      await control.abort({ requestId, reason: "verify: keys not ready" }, { timeoutMs: ABORT_TIMEOUT_MS }).catch(() => undefined);
      throw new KvbridgeError("KV_FAILED", `verify ${requestId}: keys not READY (${aw.states.join(",")})`);
    }
    const sums = await inspect.checksumKeys({ keys: chunks.map((c) => c.key) }, { timeoutMs: VERIFY_WAIT_MS });
    sums.checksums.forEach((s, i) => {
      const expected = known[i] ?? createHash("sha256").update(chunks[i]!.data).digest("hex");
      if (s.state !== "ready" || s.sha256 !== expected) {
        throw new KvbridgeError("INTERNAL", `verify ${requestId}: chunk ${s.key} is ${s.state} with sha256 ${s.sha256 || "-"}, expected ${expected}`);
      }
    });
    await release(requestId);
    return chunks.length;
  };

  try {
    await Promise.all(Array.from({ length: workerCount }, worker));
  } finally {
    inspect?.close();
    control.close();
  }
  const seconds = last > first ? (last - first) / 1000 : 0;
  return {
    bytes,
    seconds,
    gbps: seconds > 0 ? bytes / seconds / 1e9 : 0,
    dedup_hits: dedup,
    requests_ok: ok,
    requests_failed: failed,
    chunks_verified: verified,
    transport: [...transports].join(",") || "none",
    errors,
  };
}
