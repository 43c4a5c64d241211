// Time to first token and total time, disaggregated (prefill node -> KV transfer -> decode node, all
// over loopback gRPC and the data plane) against one process evaluating and decoding the same prompt,
// for 512, 2k and 8k-token prompts, plus bytes moved and transfer time; then the same with a 90%
// shared prefix (dedup on). Both sides use the same engine settings.

import type { GenerateEvent__Output } from "../src/wire/generated/kvbridge/v1/GenerateEvent.js";
import type { PrefillResponse__Output } from "../src/wire/generated/kvbridge/v1/PrefillResponse.js";
import { LlamaEngine, ensureDefaultModel } from "../src/engine/index.js";
import { startDecodeRole } from "../src/roles/decode-role.js";
import { startPrefillNode } from "../src/roles/prefill-role.js";
import { silentLogger } from "../src/observability/logger.js";
import { DecodeClient } from "../src/wire/decode-client.js";
import { PrefillClient } from "../src/wire/prefill-client.js";
import { TcpSenderTransport } from "../src/transport/tcp/tcp-sender.js";
import type { BenchFigure } from "./bench-figure.js";

const WORDS = "kv cache prefill decode chunk transfer node router token layer head pool slot lease commit the a of to and in".split(" ");

/** Text of about `tokens` tokens for the byte-level model (one token per byte, plus BOS). */
function textOf(tokens: number, seed: number): string {
  let x = seed;
  let s = "";
  while (s.length < tokens - 1) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += WORDS[x % WORDS.length] + " ";
  }
  return s.slice(0, tokens - 1);
}

export async function runEngineBench(opts: { sizes?: number[]; maxTokens?: number; threads?: number } = {}): Promise<BenchFigure[]> {
  const sizes = opts.sizes ?? [512, 2048, 8192];
  const maxTokens = opts.maxTokens ?? 16;
  const modelPath = await ensureDefaultModel();
  const engineOpts = { modelPath, threads: opts.threads, maxSequences: 1 };
  const [single, prefillEngine, decodeEngine] = await Promise.all([LlamaEngine.open(engineOpts), LlamaEngine.open(engineOpts), LlamaEngine.open(engineOpts)]);
  const log = silentLogger();
  const slotBytes = Math.ceil(decodeEngine.maxChunkBytes / 4096) * 4096;
  const decode = await startDecodeRole({
    listen: { host: "127.0.0.1", port: 0 },
    dataListen: { host: "127.0.0.1", port: 0 },
    poolSlots: 512,
    slotBytes,
    leaseMs: 60_000,
    quarantineMs: 1_000,
    transport: "tcp",
    lockMemory: "auto",
    logger: log,
    engine: Promise.resolve(decodeEngine),
    recomputePolicy: "recompute",
    kvWaitMs: 60_000,
  });
  await decode.engineReady;
  const tcp = new TcpSenderTransport({ connections: 2 });
  const prefill = await startPrefillNode({ listen: { host: "127.0.0.1", port: 0 }, engine: prefillEngine, transports: { tcp }, transport: "tcp", logger: log });
  const pc = new PrefillClient(prefill.grpcAddress);
  const dc = new DecodeClient(decode.grpcAddress);
  const figures: BenchFigure[] = [];
  let seq = 0;

  const singleRun = async (prompt: string): Promise<{ ttft: number; total: number }> => {
    const t0 = performance.now();
    let ttft = 0;
    await single.generateLocal({ tokens: single.tokenize(prompt), maxTokens, onToken: () => (ttft ||= performance.now() - t0) });
    return { ttft, total: performance.now() - t0 };
  };
  const pdRun = async (prompt: string): Promise<{ ttft: number; total: number; pre: PrefillResponse__Output }> => {
    const requestId = `bench-${seq++}`;
    const t0 = performance.now();
    const pre = await pc.prefill({ requestId, prompt, decodeTarget: decode.grpcAddress }, { timeoutMs: 600_000 });
    let ttft = 0;
    await new Promise<void>((resolve, reject) => {
      const call = dc.generate({ requestId, prompt, maxTokens }, 600_000);
      call.on("data", (ev: GenerateEvent__Output) => {
        if (!ev.done) ttft ||= performance.now() - t0;
      });
      call.on("error", reject);
      call.on("end", () => resolve());
    });
    return { ttft, total: performance.now() - t0, pre };
  };
  const push = (name: string, value: number, unit: string, baseline: number | null, baselineName?: string): void => {
    figures.push({ bench: name, value, unit, baseline, baselineName, ratio: baseline ? value / baseline : null });
  };

  try {
    // Warm both paths once (first evaluation pays one-time allocation costs).
    await singleRun(textOf(64, 999));
    await pdRun(textOf(64, 998));
    for (const n of sizes) {
      const prompt = textOf(n, n);
      const s = await singleRun(prompt);
      const d = await pdRun(prompt);
      push(`pd.ttft.${n}tok`, d.ttft, "ms", s.ttft, "single-process TTFT");
      push(`pd.total.${n}tok`, d.total, "ms", s.total, "single-process total");
      push(`pd.bytes_moved.${n}tok`, Number(d.pre.bytesSent), "bytes", null);
      push(`pd.transfer_ms.${n}tok`, d.pre.transferMs, "ms", d.pre.evalMs, "prefill evaluation");
      // 90% shared prefix: a first request warms the decode node's cache, the second dedups it.
      const shared = prompt.slice(0, Math.floor(prompt.length * 0.9));
      await pdRun(shared + textOf(n - shared.length, n + 1));
      const other = shared + textOf(n - shared.length, n + 2);
      const s2 = await singleRun(other);
      const d2 = await pdRun(other);
      push(`pd.shared90.ttft.${n}tok`, d2.ttft, "ms", s2.ttft, "single-process TTFT");
      push(`pd.shared90.bytes_moved.${n}tok`, Number(d2.pre.bytesSent), "bytes", Number(d.pre.bytesSent), "no-dedup bytes");
    }
  } finally {
    pc.close();
    dc.close();
    await prefill.close();
    await tcp.close();
    await decode.close();
    await Promise.all([single.close(), prefillEngine.close(), decodeEngine.close()]);
  }
  return figures;
}
