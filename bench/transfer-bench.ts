// End-to-end transfer throughput through kvbridge: a real `kvbridge decode --no-engine` process and
// the real sender (Hello, Alloc, writes, Commit on the data plane or over gRPC, batched Release) over
// TCP or UCX, for 256 KiB, 1 MiB and 4 MiB chunks over >= 1 GiB each. Baselines come from the
// transport benches of the same run. `protocol: 1` measures the sender as protocol 1 speaks it
// (gRPC Commit, one Release per request), for a before/after in the same minutes.

import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../src/observability/logger.js";
import { runLoad } from "../src/transfer/load-generator.js";
import { KvSender } from "../src/transfer/sender.js";
import { TcpSenderTransport } from "../src/transport/tcp/tcp-sender.js";
import type { SenderTransport, TransportKind } from "../src/transport/transport.js";

const KiB = 1024;
const MiB = 1024 * KiB;
export const TRANSFER_CHUNKS = [256 * KiB, MiB, 4 * MiB];
const SERVING_TIMEOUT_MS = 60_000;

export async function startBenchDecode(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ grpc: string; stop: () => Promise<void> }> {
  const self = fileURLToPath(import.meta.url);
  const fromSource = self.endsWith(".ts");
  const cli = path.resolve(path.dirname(self), fromSource ? "../src/cli/kvbridge.ts" : "../src/cli/kvbridge.js");
  const proc = spawn(process.execPath, [...(fromSource ? ["--import", "tsx"] : []), cli, "decode", "--no-engine", "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  const lines = createInterface({ input: proc.stderr! });
  // The node's "decode node serving" line (info level) carries its address; a bounded wait, so a node
  // that never gets there fails the bench with its last lines instead of hanging it.
  const last: string[] = [];
  const grpcAddr = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`bench decode node not serving after ${SERVING_TIMEOUT_MS / 1000} s; its last lines:\n${last.join("\n")}`));
    }, SERVING_TIMEOUT_MS);
    lines.on("line", (l) => {
      last.push(l);
      if (last.length > 20) last.shift();
      if (l.includes("decode node serving")) {
        clearTimeout(timer);
        resolve((JSON.parse(l) as { grpc: string }).grpc);
      }
    });
    proc.once("exit", (c) => {
      clearTimeout(timer);
      reject(new Error(`bench decode node exited (${c}) before serving; its last lines:\n${last.join("\n")}`));
    });
  });
  return {
    grpc: grpcAddr,
    async stop() {
      proc.kill("SIGTERM");
      await once(proc, "exit");
    },
  };
}

/**
 * How requests are cut: 16 chunks each (a 2k-token prompt of the project's model at 128 tokens per
 * chunk is 16 chunks of 256 KiB), or a fixed request size (64 MiB is 512 tokens of an 8B-class model
 * at 128 KiB per token), which spreads the control plane's calls over more bytes.
 */
export type RequestShape = { chunksPerRequest: number } | { requestBytes: number };

/** GB/s through kvbridge's sender for each chunk size, `totalBytes` each. */
export async function measureTransfer(
  kind: TransportKind,
  transport: SenderTransport,
  totalBytes: number,
  decodeArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
  shape: RequestShape = { chunksPerRequest: 16 },
  o: { chunkSizes?: readonly number[]; protocol?: 1 } = {},
): Promise<Array<{ chunk: number; gbps: number; bytes: number }>> {
  const out: Array<{ chunk: number; gbps: number; bytes: number }> = [];
  const concurrency = 4;
  for (const chunk of o.chunkSizes ?? TRANSFER_CHUNKS) {
    const chunksPerRequest = "chunksPerRequest" in shape ? shape.chunksPerRequest : Math.max(1, Math.round(shape.requestBytes / chunk));
    const slots = chunksPerRequest * concurrency * 2;
    const node = await startBenchDecode(["--pool-slots", String(slots), "--slot-bytes", String(chunk), "--transport", kind, "--lock-memory", "auto", ...decodeArgs], env);
    const transports: Partial<Record<TransportKind, SenderTransport>> = { [kind]: transport };
    const sender = new KvSender({ fingerprint: "", transports, preference: kind, logger: silentLogger(), protocol: o.protocol ?? "auto" });
    try {
      const requests = Math.ceil(totalBytes / (chunk * chunksPerRequest));
      // Warm-up: connections, handshakes, first-touch of the pool pages.
      await runLoad(sender, { target: node.grpc, requests: concurrency * 2, chunks: chunksPerRequest, chunkBytes: chunk, concurrency, sharedPrefix: 0, verify: false });
      const r = await runLoad(sender, { target: node.grpc, requests, chunks: chunksPerRequest, chunkBytes: chunk, concurrency, sharedPrefix: 0, verify: false });
      if (r.requests_failed > 0) throw new Error(`transfer bench: ${r.requests_failed} requests failed: ${r.errors.join("; ")}`);
      out.push({ chunk, gbps: r.gbps, bytes: r.bytes });
    } finally {
      await sender.close();
      await node.stop();
    }
  }
  return out;
}

export function tcpTransport(): SenderTransport {
  return new TcpSenderTransport({ connections: 2 });
}
