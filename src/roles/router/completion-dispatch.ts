// One completion's path through the nodes: reserve a prefill node, Plan on it (on another prefill
// node when that one is unreachable, too slow or leaves rotation), ask every decode node in rotation
// for its prefix match, reserve the decode node, Prefill (which pushes the KV), then Generate. A
// prompt the prefill node refuses (INVALID_ARGUMENT: too long, over the context) is answered at once
// and never sent on. When the decode node leaves rotation (frozen, partitioned, gone) its Prefill and
// Generate end at once; a generation that fails on its decode node before any text reached the
// client is tried once more on another decode node in rotation (prefilled again), one that fails
// after it ends with the error (no text is repeated or skipped). The routing decisions are
// routing-policy.ts's; this file only orders the calls and releases what it reserved however the
// request ends.
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
  /** Told the node's rotation signal before each call (a node back in rotation gets a fresh channel). */
  freshen?(target: string, rotation: AbortSignal | undefined): void;
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
  /** Fires when a node leaves rotation (node-health.ts); its calls (and Prefills writing to it) then end at once. */
  rotationSignal?(target: string): AbortSignal | undefined;
}

/** What a request's caller learns besides its text. */
export interface DispatchHooks {
  /** The Generate call was sent (the request is running, no longer waiting). */
  onGenerateStarted?(): void;
}

/** The client's signal and the nodes' rotation signals as one; dispose() unhooks it. */
function nodeCallSignal(client: AbortSignal, rotations: readonly AbortSignal[]): { signal: AbortSignal; dispose(): void } {
  if (rotations.length === 0) return { signal: client, dispose: () => undefined };
  const ac = new AbortController();
  const abort = (): void => ac.abort();
  const all = [client, ...rotations];
  if (all.some((s) => s.aborted)) ac.abort();
  for (const s of all) s.addEventListener("abort", abort, { once: true });
  return {
    signal: ac.signal,
    dispose() {
      for (const s of all) s.removeEventListener("abort", abort);
    },
  };
}

/** The node's rotation signal when it was chosen in rotation (a last-resort node has none to lose). */
function rotationOf(d: Dispatcher, node: Reservation): AbortSignal | undefined {
  return node.inRotation ? d.rotationSignal?.(node.target) : undefined;
}

/**
 * One call on a reserved node, cancelled when the client leaves, the node leaves rotation or (a
 * Prefill) the decode node it writes to does (then UNAVAILABLE naming the node, not CANCELLED). A
 * node in rotation is waited for while its channel reconnects; a last-resort node is not (the call
 * fails at once if it is still down).
 */
async function onNode<T>(d: Dispatcher, node: Reservation, client: AbortSignal, what: string, call: (signal: AbortSignal, waitForReady: boolean) => Promise<T>, also?: Reservation): Promise<T> {
  const watched = [node, ...(also ? [also] : [])].map((n) => ({ target: n.target, rotation: rotationOf(d, n) }));
  d.upstream.freshen?.(node.target, d.rotationSignal?.(node.target));
  const linked = nodeCallSignal(client, watched.flatMap((w) => (w.rotation ? [w.rotation] : [])));
  try {
    return await call(linked.signal, node.inRotation);
  } catch (err) {
    const e = toKvbridgeError(err);
    const left = watched.find((w) => w.rotation?.aborted);
    if (!client.aborted && left && e.code === "CANCELLED") {
      throw new KvbridgeError("UNAVAILABLE", `${what} on ${node.target}: ${left.target === node.target ? "the node" : `its decode node ${left.target}`} left rotation (its health check failed) before ${what} ended`, { cause: e });
    }
    throw e;
  } finally {
    linked.dispose();
  }
}

/** A failure of the decode node (not of the prompt or the client): worth one more try elsewhere before any text was sent. */
class DecodeFailed extends Error {
  constructor(readonly error: KvbridgeError) {
    super(error.message);
  }
}

/**
 * Failures a decode node's own trouble explains (gone, draining, a broken stream), worth one more
 * try elsewhere. Not a node that stopped answering (health "timeout": frozen or partitioned) or went
 * silent past the idle bound: the request already waited that long for the verdict, and a prefill
 * and generation elsewhere would add as much again; the client is told at once instead.
 */
function decodeRetryable(e: KvbridgeError, rotation: AbortSignal | undefined): boolean {
  if (rotation?.aborted && rotation.reason === "timeout") return false;
  return e.code === "UNAVAILABLE" || e.code === "INTERNAL";
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

export async function dispatchCompletion(d: Dispatcher, input: CompletionInput, requestId: string, signal: AbortSignal, onText: (text: string) => void, hooks: DispatchHooks = {}): Promise<GenerateOutcome> {
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
      decodeTargets.map((target) => {
        d.upstream.freshen?.(target, d.rotationSignal?.(target));
        return d.upstream.matchPrefix(target, keys, { timeoutMs: d.timeouts.matchPrefixMs, signal, waitForReady: nodeState(d.nodes, target).reachable }).then(
          (matched): PrefixAnswer => ({ target, matched }),
          (err: unknown): PrefixAnswer => {
            rlog.debug({ decode: target, err: toKvbridgeError(err).message }, "decode node passed over");
            return { target, matched: undefined };
          },
        );
      }),
    );
    if (signal.aborted) throw new KvbridgeError("CANCELLED", "client went away");
    // Decided and reserved in this tick, from the answers and the loads as they are now.
    const chosen = reserveDecode(d.nodes, answers);
    if (!chosen) throw new KvbridgeError("UNAVAILABLE", `no decode node answered (${decodeTargets.join(", ")})`);
    let textSent = false;
    const forward = (text: string): void => {
      textSent = true;
      onText(text);
    };
    const planned = { promptTokens: plan.promptTokens, chunks: keys.length };
    let attempt: Attempt = { decode: chosen.reservation, matched: chosen.matched, prefill: pre, planned };
    for (let retry = 0; ; retry++) {
      try {
        // A retry has a request id of its own: the first attempt's push may still be ending on the prefill node.
        return await onDecode(d, input, retry === 0 ? requestId : `${requestId}-retry${retry}`, signal, rlog, startedAt, attempt, retry, forward, hooks);
      } catch (err) {
        if (!(err instanceof DecodeFailed)) throw err;
        const e = err.error;
        if (signal.aborted || textSent || retry >= 1 || !decodeRetryable(e, rotationOf(d, attempt.decode))) throw e;
        // Another decode node in rotation (its prefix match as it answered), decided and reserved in this tick.
        const failedTarget = attempt.decode.target;
        const others = answers.filter((a) => a.target !== failedTarget && nodeState(d.nodes, a.target).reachable);
        const next = reserveDecode(d.nodes, others);
        if (!next) throw e;
        const prefill = reservePrefill(d.nodes, d.prefillTargets());
        if (!prefill) {
          next.reservation.release();
          throw e;
        }
        rlog.warn({ decode: failedTarget, err: e.message, code: e.code, next: next.reservation.target }, "generation failed on its decode node before any text was sent; trying another decode node");
        attempt = { decode: next.reservation, matched: next.matched, prefill, planned };
        pre = prefill;
      }
    }
  } finally {
    pre.release();
  }
}

/** One try at prefilling and generating: the reserved decode and prefill nodes. */
interface Attempt {
  decode: Reservation;
  matched: number;
  prefill: Reservation;
  planned: { promptTokens: number; chunks: number };
}

/**
 * Prefill (pushing the KV to `a.decode`) and Generate on it. Failures of the decode node come out as
 * DecodeFailed; both reservations are released however it ends.
 */
async function onDecode(
  d: Dispatcher,
  input: CompletionInput,
  requestId: string,
  signal: AbortSignal,
  rlog: Logger,
  startedAt: number,
  a: Attempt,
  retry: number,
  onText: (text: string) => void,
  hooks: DispatchHooks,
): Promise<GenerateOutcome> {
  const dec = a.decode;
  const decodeLeft = (): boolean => rotationOf(d, dec)?.aborted === true;
  try {
    const prefillNode = a.prefill;
    const prefillTarget = prefillNode.target;
    rlog.info({ prefill: prefillTarget, decode: dec.target, ...a.planned, prefixMatched: a.matched, ...(retry > 0 ? { retry } : {}) }, "routing");
    const prefillAt = performance.now();
    let prefillMs = 0;
    try {
      const res = await onNode(
        d,
        prefillNode,
        signal,
        "Prefill",
        (s, waitForReady) => d.upstream.prefill(prefillTarget, { requestId, prompt: input.prompt, decodeTarget: dec.target }, { timeoutMs: d.timeouts.prefillMs, signal: s, waitForReady }),
        dec,
      );
      rlog.info({ bytes: res.bytesSent, deduped: res.chunksDeduped, transport: res.transport, evalMs: Math.round(res.evalMs), transferMs: Math.round(res.transferMs) }, "prefilled");
    } catch (err) {
      const e = toKvbridgeError(err);
      if (signal.aborted || promptRefused(e)) throw e;
      if (!decodeLeft()) {
        if (e.code === "CANCELLED") throw e;
        // The decode node decides: recompute the missing KV locally (default) or fail clearly.
        rlog.warn({ err: e.message, code: e.code }, "prefill failed; the decode node applies its recompute policy");
      }
    } finally {
      prefillMs = performance.now() - prefillAt;
      prefillNode.release();
    }
    // A decode node that left rotation meanwhile (frozen, partitioned, gone) would only hold the client.
    if (decodeLeft()) throw new DecodeFailed(new KvbridgeError("UNAVAILABLE", `decode node ${dec.target} left rotation (its health check failed) before generating`));
    hooks.onGenerateStarted?.();
    try {
      const out = await onNode(d, dec, signal, "Generate", (s) =>
        d.upstream.generate(dec.target, { requestId, prompt: input.prompt, maxTokens: input.maxTokens, stop: input.stop, ...input.decoding }, d.timeouts.generateMs, { signal: s, idleMs: d.timeouts.generateIdleMs, startedAt, onText }),
      );
      return { ...out, queueMs: prefillAt - startedAt, prefillMs };
    } catch (err) {
      const e = toKvbridgeError(err);
      if (signal.aborted || e.code === "CANCELLED") throw e;
      throw new DecodeFailed(e);
    }
  } finally {
    dec.release();
  }
}
