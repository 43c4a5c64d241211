// Consuming a decode node's Generate stream: text forwarded as it arrives, the final event's counts
// kept, the caller's signal cancelling the call, and a bound on silence (a frozen node ends the
// stream with a clear error instead of holding the client until the whole-generation deadline).
// Log-probabilities (from any event) are gathered in order; the last event gives the seed and the
// model's fingerprint.
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { fromServiceError } from "../../wire/error-status.js";
import type { GenerateStream } from "../../wire/decode-client.js";
import type { GenerateEvent__Output } from "../../wire/generated/kvbridge/v1/GenerateEvent.js";
import type { TokenLogprob__Output } from "../../wire/generated/kvbridge/v1/TokenLogprob.js";

export interface GenerateOutcome {
  text: string;
  /** "length", "stop" or "eos", as the decode node said. */
  finishReason: string;
  promptTokens: number;
  completionTokens: number;
  /** Seconds from `startedAt` to the first event, null when no token came. */
  ttft: number | null;
  /** Milliseconds from the Generate call to its last event. */
  decodeMs: number;
  /** Milliseconds between consecutive events that carried text (inter-token latency). */
  itlMs: number[];
  /** Milliseconds from the request's start to its (last) Prefill call (dispatch fills it in). */
  queueMs: number;
  /** Milliseconds its Prefill call took (dispatch fills it in). */
  prefillMs: number;
  /** Per generated token, when the request asked for log-probabilities (empty otherwise). */
  logprobs?: TokenLogprob__Output[];
  /** The seed a sampled request ran with; absent when greedy. */
  seed?: number;
  /** The fingerprint of the model that generated (its engine's), when the decode node said. */
  fingerprint?: string;
}

export interface ConsumeOptions {
  signal: AbortSignal;
  /** Longest silence between two events before the stream is given up (DEADLINE_EXCEEDED). */
  idleMs: number;
  /** performance.now() when the request started (time to first token is measured from it). */
  startedAt: number;
  onText(text: string): void;
  /** Names the call in errors ("Generate on 10.0.0.7:50061"). */
  what: string;
}

export function consumeGenerate(call: GenerateStream, o: ConsumeOptions): Promise<GenerateOutcome> {
  return new Promise<GenerateOutcome>((resolve, reject) => {
    let text = "";
    let ttft: number | null = null;
    const calledAt = performance.now();
    let lastEventAt = calledAt;
    let lastTextAt: number | undefined;
    const itlMs: number[] = [];
    let last: GenerateEvent__Output | undefined;
    const logprobs: TokenLogprob__Output[] = [];
    let settled = false;
    let idle: NodeJS.Timeout | undefined;
    const settle = (err: KvbridgeError | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      o.signal.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else if (!last) reject(new KvbridgeError("UNAVAILABLE", `${o.what}: the decode node ended the stream without finishing`));
      else {
        const { finishReason, promptTokens, completionTokens, seed, fingerprint } = last;
        resolve({
          text,
          finishReason,
          promptTokens,
          completionTokens,
          ttft,
          decodeMs: lastEventAt - calledAt,
          itlMs,
          queueMs: 0,
          prefillMs: 0,
          logprobs,
          ...(seed !== undefined && seed !== null ? { seed: Number(seed) } : {}),
          ...(fingerprint ? { fingerprint } : {}),
        });
      }
    };
    const armIdle = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        settle(new KvbridgeError("DEADLINE_EXCEEDED", `${o.what}: no token from the decode node for ${o.idleMs} ms; it may be frozen or overloaded`));
        call.cancel();
      }, o.idleMs);
    };
    const onAbort = (): void => {
      settle(new KvbridgeError("CANCELLED", `${o.what}: cancelled by the client`));
      call.cancel();
    };
    if (o.signal.aborted) {
      onAbort();
      return;
    }
    o.signal.addEventListener("abort", onAbort, { once: true });
    armIdle();
    call.on("data", (ev: GenerateEvent__Output) => {
      if (settled) return;
      armIdle();
      const now = (lastEventAt = performance.now());
      if (ttft === null && !ev.done) ttft = (now - o.startedAt) / 1000;
      if (ev.text) {
        if (lastTextAt !== undefined) itlMs.push(now - lastTextAt);
        lastTextAt = now;
        text += ev.text;
        o.onText(ev.text);
      }
      if (ev.logprobs?.length) logprobs.push(...ev.logprobs);
      if (ev.done) last = ev;
    });
    call.on("error", (err: unknown) => settle(fromServiceError(err, o.what)));
    call.on("end", () => settle(undefined));
  });
}
