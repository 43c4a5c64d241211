// One completion's path through the nodes: reserve a prefill node, Plan on it (on another prefill
// node when that one is unreachable, too slow or leaves rotation), ask every decode node in rotation
// for its prefix match, reserve the decode node, Prefill (which pushes the KV), then Generate. A
// prompt the prefill node refuses (INVALID_ARGUMENT: too long, over the context) is answered at once
// and never sent on. The routing decisions are routing-policy.ts's; this file only orders the calls
// and releases what it reserved however the request ends.
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
import { candidates, nodeState, reserveDecode, reservePrefill, type NodeStates, type PrefixAnswer, type Reservation } from "./routing-policy.js";

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
  /** Fires when a node leaves rotation (node-health.ts); its Plan and Prefill calls then end at once. */
  rotationSignal?(target: string): AbortSignal | undefined;
}

/** The client's signal and the node's rotation signal as one; dispose() unhooks it. */
function nodeCallSignal(client: AbortSignal, rotation: AbortSignal | undefined): { signal: AbortSignal; dispose(): void } {
  if (!rotation) return { signal: client, dispose: () => undefined };
  const ac = new AbortController();
  const abort = (): void => ac.abort();
  if (client.aborted || rotation.aborted) ac.abort();
  client.addEventListener("abort", abort, { once: true });
  rotation.addEventListener("abort", abort, { once: true });
  return {
    signal: ac.signal,
    dispose() {
      client.removeEventListener("abort", abort);
      rotation.removeEventListener("abort", abort);
    },
  };
}

/**
 * One call on a reserved node, cancelled when the client leaves or the node leaves rotation (then
 * UNAVAILABLE, not CANCELLED). A node in rotation is waited for while its channel reconnects; a
 * last-resort node is not (the call fails at once if it is still down).
 */
async function onNode<T>(d: Dispatcher, node: Reservation, client: AbortSignal, what: string, call: (signal: AbortSignal, waitForReady: boolean) => Promise<T>): Promise<T> {
  const target = node.target;
  const rotation = node.inRotation ? d.rotationSignal?.(target) : undefined;
  const linked = nodeCallSignal(client, rotation);
  try {
    return await call(linked.signal, node.inRotation);
  } catch (err) {
    const e = toKvbridgeError(err);
    if (!client.aborted && rotation?.aborted && e.code === "CANCELLED") {
      throw new KvbridgeError("UNAVAILABLE", `${what} on ${target}: the node left rotation (its health check failed) before answering`, { cause: e });
    }
    throw e;
  } finally {
    linked.dispose();
  }
}

/** Plan again on another prefill node after these: the node, not the prompt, was at fault. */
function planRetryable(e: KvbridgeError): boolean {
  return e.code === "UNAVAILABLE" || e.code === "DEADLINE_EXCEEDED";
}

/** The prefill node refused the prompt itself (too long, over the context): no other node or step can help. */
function promptRefused(e: KvbridgeError): boolean {
  return e.code === "INVALID_ARGUMENT";
}

function noPrefill(d: Dispatcher): KvbridgeError {
  const targets = d.prefillTargets();
  return new KvbridgeError("UNAVAILABLE", targets.length === 0 ? "no prefill node is known; check --prefill / --prefill-dns" : `no prefill node is in rotation (${targets.join(", ")}: unreachable or not serving)`);
}


function noDecode(d: Dispatcher): KvbridgeError {
  const targets = d.decodeTargets();
  return new KvbridgeError("UNAVAILABLE", targets.length === 0 ? "no decode node is known; check --decode / --decode-dns" : `no decode node is in rotation (${targets.join(", ")}: unreachable or not serving)`);
}

export async function dispatchCompletion(d: Dispatcher, input: CompletionInput, requestId: string, signal: AbortSignal, onText: (text: string) => void): Promise<GenerateOutcome> {
  const rlog = d.log.child({ requestId });
  const startedAt = performance.now();
  // Reserved before Plan is sent: simultaneous requests each see the others' prefill choices.
  // No decode node in rotation: refused before any prefill node spends work on it.
  if (candidates(d.nodes, d.decodeTargets()).length === 0) throw noDecode(d);
  const first = reservePrefill(d.nodes, d.prefillTargets());
  if (!first) throw noPrefill(d);
  let pre: Reservation = first;
  try {
    let plan: PlanResponse__Output | undefined;
    const failed = new Set<string>();
    while (!plan) {
      const target: string = pre.target;
      try {
        plan = await onNode(d, pre, signal, "Plan", (s, waitForReady) => d.upstream.plan(target, { prompt: input.prompt }, { timeoutMs: d.timeouts.planMs, signal: s, waitForReady }));
      } catch (err) {
        const e = toKvbridgeError(err);
        pre.release();
        if (signal.aborted || !planRetryable(e)) throw e;
        failed.add(target);
        const next = reservePrefill(d.nodes, d.prefillTargets(), failed);
        if (!next) throw e;
        rlog.warn({ prefill: target, err: e.message, code: e.code, next: next.target }, "Plan failed; trying another prefill node");
        pre = next;
      }
    }
    d.onPlan?.(plan);
    const keys = plan.keys;
    const decodeTargets = candidates(d.nodes, d.decodeTargets());
    if (decodeTargets.length === 0) throw noDecode(d);
    const answers: PrefixAnswer[] = await Promise.all(
      decodeTargets.map((target) =>
        d.upstream.matchPrefix(target, keys, { timeoutMs: d.timeouts.matchPrefixMs, signal, waitForReady: nodeState(d.nodes, target).reachable }).then(
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
      const prefillNode: Reservation = pre;
      const prefillTarget = prefillNode.target;
      rlog.info({ prefill: prefillTarget, decode: dec.target, promptTokens: plan.promptTokens, chunks: keys.length, prefixMatched: chosen.matched }, "routing");
      try {
        const res = await onNode(d, prefillNode, signal, "Prefill", (s, waitForReady) =>
          d.upstream.prefill(prefillTarget, { requestId, prompt: input.prompt, decodeTarget: dec.target }, { timeoutMs: d.timeouts.prefillMs, signal: s, waitForReady }),
        );
        rlog.info({ bytes: res.bytesSent, deduped: res.chunksDeduped, transport: res.transport, evalMs: Math.round(res.evalMs), transferMs: Math.round(res.transferMs) }, "prefilled");
      } catch (err) {
        const e = toKvbridgeError(err);
        if (signal.aborted || e.code === "CANCELLED" || promptRefused(e)) throw e;
        // The decode node decides: recompute the missing KV locally (default) or fail clearly.
        rlog.warn({ err: e.message, code: e.code }, "prefill failed; the decode node applies its recompute policy");
      } finally {
        pre.release();
      }
      // A decode node that left rotation meanwhile (frozen, gone) would only hold the client until the idle bound.
      if (dec.inRotation && d.rotationSignal?.(dec.target)?.aborted) throw new KvbridgeError("UNAVAILABLE", `decode node ${dec.target} left rotation (its health check failed) before generating`);
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
