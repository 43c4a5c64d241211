// Whether one caller's huge prompt stalls everyone else on a prefill node: the latency of a small
// Plan + Prefill (a ~256-token prompt pushed to a real decode node over TCP) while 1 MiB prompts
// keep arriving at the same node (two at a time, Plan and Prefill, each refused prompt_too_long),
// against the same small request's latency on the idle node, measured in the same run (target: at
// most 2x). Next to it: what one 256 KiB prompt would cost the event loop if it were tokenized there,
// against what its refusal costs now.

import { LlamaEngine, ensureDefaultModel } from "../src/engine/index.js";
import { silentLogger } from "../src/observability/logger.js";
import { startDecodeRole } from "../src/roles/decode-role.js";
import { startPrefillRole } from "../src/roles/prefill-role.js";
import { TcpSenderTransport } from "../src/transport/tcp/tcp-sender.js";
import { PrefillClient } from "../src/wire/prefill-client.js";
import type { BenchFigure } from "./bench-figure.js";

const WORDS = "kv cache prefill decode chunk transfer node router token layer head pool slot lease commit the a of to and in".split(" ");

function textOf(chars: number, seed: number): string {
  let x = seed;
  let s = "";
  while (s.length < chars) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += WORDS[x % WORDS.length] + " ";
  }
  return s.slice(0, chars);
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export async function runStallBench(opts: { runs?: number; log?: (line: string) => void } = {}): Promise<BenchFigure[]> {
  const runs = opts.runs ?? 20;
  const modelPath = await ensureDefaultModel();
  const [prefillEngine, decodeEngine] = await Promise.all([LlamaEngine.open({ modelPath, maxSequences: 2 }), LlamaEngine.open({ modelPath, maxSequences: 1 })]);
  const log = silentLogger();
  const decode = await startDecodeRole({
    listen: { host: "127.0.0.1", port: 0 },
    dataListen: { host: "127.0.0.1", port: 0 },
    poolSlots: 256,
    slotBytes: Math.ceil(decodeEngine.maxChunkBytes / 4096) * 4096,
    leaseMs: 60_000,
    quarantineMs: 1_000,
    transport: "tcp",
    lockMemory: false,
    logger: log,
    engine: Promise.resolve(decodeEngine),
  });
  await decode.engineReady;
  const tcp = new TcpSenderTransport({ connections: 2 });
  const prefill = await startPrefillRole({ listen: { host: "127.0.0.1", port: 0 }, engine: prefillEngine, transports: { tcp }, transport: "tcp", logger: log });
  const small = new PrefillClient(prefill.grpcAddress);
  const hostile = new PrefillClient(prefill.grpcAddress);
  const T = { timeoutMs: 120_000 };
  let seq = 0;
  const figures: BenchFigure[] = [];

  const smallRequest = async (): Promise<number> => {
    const requestId = `stall-${seq++}`;
    const prompt = textOf(255, seq);
    const t0 = performance.now();
    await small.plan({ prompt }, T);
    await small.prefill({ requestId, prompt, decodeTarget: decode.grpcAddress }, T);
    const ms = performance.now() - t0;
    decode.receiver.release(requestId);
    return ms;
  };
  const series = async (): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < runs; i++) out.push(await smallRequest());
    return out;
  };

  try {
    await smallRequest(); // warm: first evaluation and first connection pay one-time costs
    opts.log?.("stall: small Plan + Prefill on an idle prefill node");
    const idle = await series();

    opts.log?.("stall: the same while 1 MiB prompts arrive two at a time");
    const big = textOf(1 << 20, 7);
    let stop = false;
    const refusals: number[] = [];
    const unexpected: string[] = [];
    const hostileLoop = async (which: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const t0 = performance.now();
        const call = (i + which) % 2 === 0 ? hostile.plan({ prompt: big }, T) : hostile.prefill({ requestId: `big-${which}-${i}`, prompt: big, decodeTarget: decode.grpcAddress }, T);
        const err = await call.then(
          () => undefined,
          (e: unknown) => e as { details?: { reason?: string } },
        );
        if (err?.details?.reason === "prompt_too_long") refusals.push(performance.now() - t0);
        else unexpected.push(err ? String(err) : "a 1 MiB prompt was accepted");
      }
    };
    const loops = [hostileLoop(0), hostileLoop(1)];
    await new Promise((r) => setTimeout(r, 200));
    const loaded = await series();
    stop = true;
    await Promise.all(loops);
    if (unexpected.length > 0) throw new Error(`1 MiB prompts were not refused prompt_too_long: ${unexpected[0]}`);

    const push = (bench: string, value: number, unit: string, baseline: number | null, baselineName?: string): void => {
      figures.push({ bench, value, unit, baseline, baselineName, ratio: baseline ? value / baseline : null });
    };
    push("stall.plan_prefill.p50", percentile(loaded, 50), "ms", percentile(idle, 50), "idle node, same request");
    push("stall.plan_prefill.p90", percentile(loaded, 90), "ms", percentile(idle, 90), "idle node, same request");
    push("stall.refusal_1MiB.p50", percentile(refusals, 50), "ms", null);
    push("stall.refusals_1MiB_during_run", refusals.length, "count", null);

    opts.log?.("stall: what a 256 KiB prompt costs the event loop tokenized there, against its refusal now");
    const quarter = textOf(256 * 1024, 9);
    let t0 = performance.now();
    await prefillEngine.tokenizePrompt(quarter).catch(() => undefined);
    const refused = performance.now() - t0;
    t0 = performance.now();
    prefillEngine.tokenize(quarter);
    push("stall.event_loop_blocked.256KiB_tokenized_inline", performance.now() - t0, "ms", refused, "tokenizePrompt refusal of the same prompt");
  } finally {
    small.close();
    hostile.close();
    await prefill.close();
    await tcp.close();
    await decode.close();
    await prefillEngine.close();
  }
  return figures;
}
