// One completion's path through the nodes: reserve a prefill node, Plan on it, ask every decode node
// for its prefix match, reserve the decode node, Prefill (which pushes the KV), then Generate. The
// routing decisions are routing-policy.ts's; this file only orders the calls and releases what it
// reserved however the request ends.
import type { Logger } from "pino";
import { KvbridgeError, toKvbridgeError } from "../../errors/kvbridge-error.js";
import type { GenerateRequest } from "../../wire/generated/kvbridge/v1/GenerateRequest.js";
import type { PlanRequest } from "../../wire/generated/kvbridge/v1/PlanRequest.js";
import type { PlanResponse__Output } from "../../wire/generated/kvbridge/v1/PlanResponse.js";
import type { PrefillRequest } from "../../wire/generated/kvbridge/v1/PrefillRequest.js";
import type { PrefillResponse__Output } from "../../wire/generated/kvbridge/v1/PrefillResponse.js";
import type { CallOptions } from "../../wire/unary-call.js";
import type { ConsumeOptions, GenerateOutcome } from "./generate-stream.js";
import type { CompletionInput } from "./openai-api.js";
import { reserveDecode, reservePrefill, type NodeStates, type PrefixAnswer } from "./routing-policy.js";

/** The calls the router makes on its nodes (UpstreamClients over gRPC). */
export interface Upstream {
  plan(target: string, req: PlanRequest, opts: CallOptions): Promise<PlanResponse__Output>;
  matchPrefix(target: string, keys: string[], opts: CallOptions): Promise<number>;
  prefill(target: string, req: PrefillRequest, opts: CallOptions): Promise<PrefillResponse__Output>;
  generate(target: string, req: GenerateRequest, deadlineMs: number, o: Omit<ConsumeOptions, "what">): Promise<GenerateOutcome>;
}

export interface DispatchTimeouts {
  /** Plan tokenizes the prompt on the prefill node. */
  planMs: number;
  /** Every decode node is asked at once; one that does not answer in time is passed over. */
  matchPrefixMs: number;
  /** Evaluation plus KV transfer. */
  prefillMs: number;
  /** The whole generation. */
  generateMs: number;
  /** Longest silence of a decode node in a running generation. */
  generateIdleMs: number;
}

export interface Dispatcher {
  upstream: Upstream;
  nodes: NodeStates;
  prefillTargets(): readonly string[];
  decodeTargets(): readonly string[];
  timeouts: DispatchTimeouts;
  log: Logger;
  /** Called with each Plan's answer (the router learns the model id from it). */
  onPlan?(plan: PlanResponse__Output): void;
}

export async function dispatchCompletion(d: Dispatcher, input: CompletionInput, requestId: string, signal: AbortSignal, onText: (text: string) => void): Promise<GenerateOutcome> {
  const rlog = d.log.child({ requestId });
  const startedAt = performance.now();
  // Reserved before Plan is sent: simultaneous requests each see the others' prefill choices.
  const pre = reservePrefill(d.nodes, d.prefillTargets());
  if (!pre) {
    throw new KvbridgeError("UNAVAILABLE", d.prefillTargets().length === 0 ? "no prefill node is known; check --prefill / --prefill-dns" : `no prefill node is reachable (${d.prefillTargets().join(", ")})`);
  }
  try {
    const plan = await d.upstream.plan(pre.target, { prompt: input.prompt }, { timeoutMs: d.timeouts.planMs, signal });
    d.onPlan?.(plan);
    const decodeTargets = d.decodeTargets();
    if (decodeTargets.length === 0) throw new KvbridgeError("UNAVAILABLE", "no decode node is known; check --decode / --decode-dns");
    const answers: PrefixAnswer[] = await Promise.all(
      decodeTargets.map((target) =>
        d.upstream.matchPrefix(target, plan.keys, { timeoutMs: d.timeouts.matchPrefixMs, signal }).then(
          (matched): PrefixAnswer => ({ target, matched }),
          (err: unknown): PrefixAnswer => {
            rlog.debug({ decode: target, err: toKvbridgeError(err).message }, "decode node passed over");
            return { target, matched: undefined };
          },
        ),
      ),
    );
    if (signal.aborted) throw new KvbridgeError("CANCELLED", "client went away");
    // Decided and reserved in this tick, from the answers and the loads as they are now.
    const chosen = reserveDecode(d.nodes, answers);
    if (!chosen) throw new KvbridgeError("UNAVAILABLE", `no decode node answered (${decodeTargets.join(", ")})`);
    const dec = chosen.reservation;
    try {
      rlog.info({ prefill: pre.target, decode: dec.target, promptTokens: plan.promptTokens, chunks: plan.keys.length, prefixMatched: chosen.matched }, "routing");
      try {
        const res = await d.upstream.prefill(pre.target, { requestId, prompt: input.prompt, decodeTarget: dec.target }, { timeoutMs: d.timeouts.prefillMs, signal });
        rlog.info({ bytes: res.bytesSent, deduped: res.chunksDeduped, transport: res.transport, evalMs: Math.round(res.evalMs), transferMs: Math.round(res.transferMs) }, "prefilled");
      } catch (err) {
        const e = toKvbridgeError(err);
        if (signal.aborted || e.code === "CANCELLED") throw e;
        // The decode node decides: recompute the missing KV locally (default) or fail clearly.
        rlog.warn({ err: e.message, code: e.code }, "prefill failed; the decode node applies its recompute policy");
      } finally {
        pre.release();
      }
      return await d.upstream.generate(
        dec.target,
        { requestId, prompt: input.prompt, maxTokens: input.maxTokens, stop: input.stop },
        d.timeouts.generateMs,
        { signal, idleMs: d.timeouts.generateIdleMs, startedAt, onText },
      );
    } finally {
      dec.release();
    }
  } finally {
    pre.release();
  }
}
