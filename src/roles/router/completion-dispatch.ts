// One completion's path through the nodes: reserve a prefill node, Plan on it (on another prefill
// node when that one is unreachable, too slow or leaves rotation), ask every prefill node in rotation
// how much of the prompt its prefix cache holds (CachedPrefix) and every decode node its prefix match
// (MatchPrefix), move the prefill reservation to the node caching the longest prefix (a conversation's
// next turn goes where its previous turns were evaluated), reserve the decode node, Prefill (which
// pushes the KV), then Generate. A
// prompt the prefill node refuses (INVALID_ARGUMENT: too long, over the context) is answered at once
// and never sent on. When the decode node leaves rotation (frozen, partitioned, gone) its Prefill and
// Generate end at once; a generation that fails on its decode node before any text reached the
// client is tried once more on another decode node in rotation (prefilled again), one that fails
// after it ends with the error (no text is repeated or skipped). A request for a model goes only to
// nodes serving it (their model lists, routing-policy.ts), with the model named in every call; the
// decode node's model is loaded (LoadModel without options: answered at once when it is) and its
// fingerprint checked against the Plan's before the Prefill, and a Prefill or Generate refused
// INCOMPATIBLE fingerprint_mismatch (an idle model evicted in between) loads it again and tries once
// more. The routing decisions are
// routing-policy.ts's; this file only orders the calls and releases what it reserved however the
// request ends.
import type { Logger } from "pino";
import { KvbridgeError, toKvbridgeError } from "../../errors/kvbridge-error.js";
import type { CachedPrefixRequest } from "../../wire/generated/kvbridge/v1/CachedPrefixRequest.js";
import type { GenerateRequest } from "../../wire/generated/kvbridge/v1/GenerateRequest.js";
import type { LoadModelRequest } from "../../wire/generated/kvbridge/v1/LoadModelRequest.js";
import type { MatchPrefixRequest } from "../../wire/generated/kvbridge/v1/MatchPrefixRequest.js";
import type { ModelInfo__Output } from "../../wire/generated/kvbridge/v1/ModelInfo.js";
import type { PlanRequest } from "../../wire/generated/kvbridge/v1/PlanRequest.js";
import type { PlanResponse__Output } from "../../wire/generated/kvbridge/v1/PlanResponse.js";
import type { PrefillRequest } from "../../wire/generated/kvbridge/v1/PrefillRequest.js";
import type { PrefillResponse__Output } from "../../wire/generated/kvbridge/v1/PrefillResponse.js";
import type { RenderChatRequest } from "../../wire/generated/kvbridge/v1/RenderChatRequest.js";
import type { RenderChatResponse__Output } from "../../wire/generated/kvbridge/v1/RenderChatResponse.js";
import type { CallOptions } from "../../wire/unary-call.js";
import type { ConsumeOptions, GenerateOutcome } from "./generate-stream.js";
import type { CompletionInput } from "./openai-api.js";
import { candidates, nodeState, reserveDecode, reservePrefill, reservePrefillForPrefix, servingTargets, type CachedPrefixAnswer, type NodeStates, type PrefixAnswer, type Reservation } from "./routing-policy.js";

/** The calls the router makes on its nodes (UpstreamClients over gRPC). */
export interface Upstream {
  plan(target: string, req: PlanRequest, opts: CallOptions): Promise<PlanResponse__Output>;
  /** A chat as the prompt text of the node's model, by its chat template. Absent: the chat's builtin-format prompt is sent as is. */
  renderChat?(target: string, req: RenderChatRequest, opts: CallOptions): Promise<RenderChatResponse__Output>;
  matchPrefix(target: string, req: MatchPrefixRequest, opts: CallOptions): Promise<number>;
  /** How many leading chunk keys a prefill node's prefix cache holds. Absent: the Prefill stays on the Plan's node. */
  cachedPrefix?(target: string, req: CachedPrefixRequest, opts: CallOptions): Promise<number>;
  prefill(target: string, req: PrefillRequest, opts: CallOptions): Promise<PrefillResponse__Output>;
  generate(target: string, req: GenerateRequest, deadlineMs: number, o: Omit<ConsumeOptions, "what">): Promise<GenerateOutcome>;
  /** Ensures the model is loaded on a node (no options: answered at once when it is); its state after. Absent: never asked. */
  loadModel?(target: string, req: LoadModelRequest, opts: CallOptions): Promise<ModelInfo__Output>;
  /** Told the node's rotation signal before each call (a node back in rotation gets a fresh channel). */
  freshen?(target: string, rotation: AbortSignal | undefined): void;
}

export interface DispatchTimeouts {
  /** Plan tokenizes the prompt on the prefill node. */
  planMs: number;
  /**
   * Every decode node (MatchPrefix) and every prefill node (CachedPrefix) is asked at once; a decode
   * node that does not answer in time is passed over, a prefill node counts as caching nothing.
   */
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
  /** Called with a model's state as a node answered a LoadModel (the model directory records it). */
  onModelInfo?(target: string, info: ModelInfo__Output): void;
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
  return e.code === "UNAVAILABLE" || e.code === "INTERNAL" || fingerprintMismatch(e);
}

/** The decode node does not hold the model whose KV it was sent (evicted in between): load it again and retry. */
function fingerprintMismatch(e: KvbridgeError): boolean {
  return e.code === "INCOMPATIBLE" && e.details.reason === "fingerprint_mismatch";
}

/** Plan again on another prefill node after these: the node, not the prompt, was at fault. */
function planRetryable(e: KvbridgeError): boolean {
  return e.code === "UNAVAILABLE" || e.code === "DEADLINE_EXCEEDED";
}

/** The prefill node refused the prompt itself (too long, over the context): no other node or step can help. */
function promptRefused(e: KvbridgeError): boolean {
  return e.code === "INVALID_ARGUMENT";
}

function noPrefill(d: Dispatcher, model: string | undefined): KvbridgeError {
  const targets = d.prefillTargets();
  if (targets.length === 0) return new KvbridgeError("UNAVAILABLE", "no prefill node is known; check --prefill / --prefill-dns");
  const serving = servingTargets(d.nodes, targets, model);
  if (serving.length === 0) return new KvbridgeError("UNAVAILABLE", `no prefill node serves model ${JSON.stringify(model)}`);
  return new KvbridgeError("UNAVAILABLE", `no prefill node${model === undefined ? "" : ` of model ${JSON.stringify(model)}`} is in rotation (${serving.join(", ")}: unreachable or not serving)`);
}

function noDecode(d: Dispatcher, model: string | undefined, fingerprint?: string): KvbridgeError {
  const targets = d.decodeTargets();
  if (targets.length === 0) return new KvbridgeError("UNAVAILABLE", "no decode node is known; check --decode / --decode-dns");
  const serving = servingTargets(d.nodes, targets, model);
  if (serving.length === 0) return new KvbridgeError("UNAVAILABLE", `no decode node serves model ${JSON.stringify(model)}`);
  if (fingerprint !== undefined && servingTargets(d.nodes, targets, model, fingerprint).length === 0) {
    return new KvbridgeError("UNAVAILABLE", `no decode node runs model ${JSON.stringify(model)} with the prefill node's fingerprint ${fingerprint}; the router never pairs different models`, {
      details: { reason: "fingerprint_mismatch", param: "model" },
    });
  }
  return new KvbridgeError("UNAVAILABLE", `no decode node${model === undefined ? "" : ` of model ${JSON.stringify(model)}`} is in rotation (${serving.join(", ")}: unreachable or not serving)`);
}

/**
 * One completion through the nodes. `model`: the model id (model-directory.ts resolved the request's
 * name); only nodes serving it are used and every call names it. Undefined: every node, each with
 * its default model.
 */
export async function dispatchCompletion(
  d: Dispatcher,
  input: CompletionInput,
  requestId: string,
  signal: AbortSignal,
  onText: (text: string) => void,
  hooks: DispatchHooks = {},
  model?: string,
): Promise<GenerateOutcome> {
  const rlog = d.log.child({ requestId, ...(model === undefined ? {} : { model }) });
  const startedAt = performance.now();
  const prefillTargets = (): string[] => servingTargets(d.nodes, d.prefillTargets(), model);
  // Reserved before Plan is sent: simultaneous requests each see the others' prefill choices.
  // No decode node in rotation: refused before any prefill node spends work on it.
  if (candidates(d.nodes, servingTargets(d.nodes, d.decodeTargets(), model)).length === 0) throw noDecode(d, model);
  const first = reservePrefill(d.nodes, prefillTargets());
  if (!first) throw noPrefill(d, model);
  let pre: Reservation = first;
  try {
    let plan: PlanResponse__Output | undefined;
    const failed = new Set<string>();
    while (!plan) {
      const target: string = pre.target;
      try {
        plan = await onNode(d, pre, signal, "Plan", async (s, waitForReady) => {
          const opts = { timeoutMs: d.timeouts.planMs, signal: s, waitForReady };
          // A chat's prompt is the text of this node's model's own chat template (RenderChat).
          const render = d.upstream.renderChat;
          if (input.messages && render) input = { ...input, prompt: (await render.call(d.upstream, target, { model: model ?? "", messages: input.messages }, opts)).prompt };
          return d.upstream.plan(target, { prompt: input.prompt, model: model ?? "" }, opts);
        });
      } catch (err) {
        const e = toKvbridgeError(err);
        pre.release();
        if (signal.aborted || !planRetryable(e)) throw e;
        failed.add(target);
        const next = reservePrefill(d.nodes, prefillTargets(), failed);
        if (!next) throw e;
        rlog.warn({ prefill: target, err: e.message, code: e.code, next: next.target }, "Plan failed; trying another prefill node");
        pre = next;
      }
    }
    d.onPlan?.(plan);
    const keys = plan.keys;
    // Only decode nodes whose fingerprint for the model is the Plan's (or not known yet: not resident).
    const fingerprint = model === undefined || !plan.fingerprint ? undefined : plan.fingerprint;
    const decodeTargets = candidates(d.nodes, servingTargets(d.nodes, d.decodeTargets(), model, fingerprint));
    if (decodeTargets.length === 0) throw noDecode(d, model, fingerprint);
    const matching: Promise<PrefixAnswer[]> = Promise.all(
      decodeTargets.map((target) => {
        d.upstream.freshen?.(target, d.rotationSignal?.(target));
        return d.upstream.matchPrefix(target, { keys, model: model ?? "" }, { timeoutMs: d.timeouts.matchPrefixMs, signal, waitForReady: nodeState(d.nodes, target).reachable }).then(
          (matched): PrefixAnswer => ({ target, matched }),
          (err: unknown): PrefixAnswer => {
            rlog.debug({ decode: target, err: toKvbridgeError(err).message }, "decode node passed over");
            return { target, matched: undefined };
          },
        );
      }),
    );
    const [answers, cachedAnswers] = await Promise.all([matching, askCachedPrefix(d, pre.target, failed, keys, model, fingerprint, signal, rlog)]);
    if (signal.aborted) throw new KvbridgeError("CANCELLED", "client went away");
    // Decided and reserved in this tick, from the answers and the loads as they are now: the Prefill's
    // node (the Plan's reservation moves when another node caches more of the prompt), then the decode node.
    const onPrefill = reservePrefillForPrefix(d.nodes, pre, cachedAnswers)!;
    pre = onPrefill.reservation;
    const chosen = reserveDecode(d.nodes, answers);
    if (!chosen) throw new KvbridgeError("UNAVAILABLE", `no decode node answered (${decodeTargets.join(", ")})`);
    let textSent = false;
    const forward = (text: string): void => {
      textSent = true;
      onText(text);
    };
    const planned = { promptTokens: plan.promptTokens, chunks: keys.length };
    const served: ServedModel | undefined = model === undefined ? undefined : { id: model, fingerprint };
    let attempt: Attempt = { decode: chosen.reservation, matched: chosen.matched, prefill: pre, cached: onPrefill.cached, planned, model: served };
    for (let retry = 0; ; retry++) {
      try {
        // A retry has a request id of its own: the first attempt's push may still be ending on the prefill node.
        return await onDecode(d, input, retry === 0 ? requestId : `${requestId}-retry${retry}`, signal, rlog, startedAt, attempt, retry, forward, hooks);
      } catch (err) {
        if (!(err instanceof DecodeFailed)) throw err;
        const e = err.error;
        if (signal.aborted || textSent || retry >= 1 || !decodeRetryable(e, rotationOf(d, attempt.decode))) throw e;
        // Another decode node in rotation (its prefix match as it answered), decided and reserved in this tick.
        // A fingerprint mismatch is retried on the same node too (its model is loaded again first).
        const failedTarget = attempt.decode.target;
        const others = answers.filter((a) => (a.target !== failedTarget || fingerprintMismatch(e)) && nodeState(d.nodes, a.target).reachable);
        const next = reserveDecode(d.nodes, others);
        if (!next) throw e;
        // The prefill node by the same prefix answers (the first attempt's reservation is released by now).
        const again = reservePrefillForPrefix(d.nodes, undefined, cachedAnswers);
        const prefill = again?.reservation ?? reservePrefill(d.nodes, prefillTargets());
        if (!prefill) {
          next.reservation.release();
          throw e;
        }
        rlog.warn({ decode: failedTarget, err: e.message, code: e.code, next: next.reservation.target }, "generation failed on its decode node before any text was sent; trying another decode node");
        attempt = { decode: next.reservation, matched: next.matched, prefill, cached: again?.cached ?? 0, planned, model: served };
        pre = prefill;
      }
    }
  } finally {
    pre.release();
  }
}

/**
 * Every prefill node in rotation serving the model (with the Plan's fingerprint, or not resident), but
 * those Plan failed on, asked at once how many of the keys it caches; a failure or a late answer
 * counts as 0. The Plan's node is always among them. Not asked when it is the only one (or the
 * upstream cannot ask): it is the answer.
 */
async function askCachedPrefix(
  d: Dispatcher,
  planned: string,
  failed: ReadonlySet<string>,
  keys: string[],
  model: string | undefined,
  fingerprint: string | undefined,
  signal: AbortSignal,
  rlog: Logger,
): Promise<CachedPrefixAnswer[]> {
  const targets = candidates(d.nodes, servingTargets(d.nodes, d.prefillTargets(), model, fingerprint)).filter((t) => t !== planned && !failed.has(t));
  const ask = d.upstream.cachedPrefix;
  if (!ask || targets.length === 0 || keys.length === 0) return [{ target: planned, chunks: 0 }];
  return Promise.all(
    [planned, ...targets].map((target) => {
      d.upstream.freshen?.(target, d.rotationSignal?.(target));
      return ask.call(d.upstream, target, { keys, model: model ?? "" }, { timeoutMs: d.timeouts.matchPrefixMs, signal, waitForReady: nodeState(d.nodes, target).reachable }).then(
        (chunks): CachedPrefixAnswer => ({ target, chunks }),
        (err: unknown): CachedPrefixAnswer => {
          rlog.debug({ prefill: target, err: toKvbridgeError(err).message }, "prefill node's cached prefix not known; counted as 0");
          return { target, chunks: 0 };
        },
      );
    }),
  );
}

/** One try at prefilling and generating: the reserved decode and prefill nodes. */
interface Attempt {
  decode: Reservation;
  matched: number;
  prefill: Reservation;
  /** Leading chunks of the prompt the prefill node said it caches. */
  cached: number;
  planned: { promptTokens: number; chunks: number };
  /** The model routed by, and the Plan's fingerprint for it; undefined: the nodes' default models. */
  model: ServedModel | undefined;
}

interface ServedModel {
  id: string;
  fingerprint: string | undefined;
}

/**
 * The decode node's model loaded (LoadModel without options: at once when it is) and running the
 * Plan's fingerprint; another fingerprint is the decode node's failure (the request may move on).
 */
async function ensureDecodeModel(d: Dispatcher, dec: Reservation, m: ServedModel, signal: AbortSignal): Promise<void> {
  const load = d.upstream.loadModel;
  if (!load) return;
  const info = await onNode(d, dec, signal, "LoadModel", (s, waitForReady) => load.call(d.upstream, dec.target, { model: m.id }, { timeoutMs: d.timeouts.prefillMs, signal: s, waitForReady })).catch((err: unknown) => {
    const e = toKvbridgeError(err);
    throw signal.aborted || e.code === "CANCELLED" ? e : new DecodeFailed(e);
  });
  d.onModelInfo?.(dec.target, info);
  if (m.fingerprint && info.fingerprint && info.fingerprint !== m.fingerprint) {
    throw new DecodeFailed(
      new KvbridgeError("UNAVAILABLE", `decode node ${dec.target} runs model ${JSON.stringify(m.id)} with fingerprint ${info.fingerprint}, the prefill node ${m.fingerprint}; the router never pairs different models`, {
        details: { reason: "fingerprint_mismatch", param: "model" },
      }),
    );
  }
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
    rlog.info({ prefill: prefillTarget, decode: dec.target, ...a.planned, prefixMatched: a.matched, prefillCached: a.cached, ...(retry > 0 ? { retry } : {}) }, "routing");
    const prefillAt = performance.now();
    let prefillMs = 0;
    const model = a.model?.id ?? "";
    try {
      if (a.model) await ensureDecodeModel(d, dec, a.model, signal);
      const prefillOnce = (): Promise<PrefillResponse__Output> =>
        onNode(
          d,
          prefillNode,
          signal,
          "Prefill",
          (s, waitForReady) => d.upstream.prefill(prefillTarget, { requestId, prompt: input.prompt, decodeTarget: dec.target, model }, { timeoutMs: d.timeouts.prefillMs, signal: s, waitForReady }),
          dec,
        );
      const res = await prefillOnce().catch(async (err: unknown) => {
        const e = toKvbridgeError(err);
        // The decode node's model was evicted between its LoadModel and the KV's arrival: once more.
        if (!a.model || signal.aborted || !fingerprintMismatch(e)) throw e;
        rlog.warn({ decode: dec.target, err: e.message }, "decode node refused the KV's fingerprint; loading its model again");
        await ensureDecodeModel(d, dec, a.model, signal);
        return prefillOnce();
      });
      rlog.info({ bytes: res.bytesSent, deduped: res.chunksDeduped, transport: res.transport, evalMs: Math.round(res.evalMs), transferMs: Math.round(res.transferMs) }, "prefilled");
    } catch (err) {
      if (err instanceof DecodeFailed) throw err;
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
        d.upstream.generate(dec.target, { requestId, model, prompt: input.prompt, maxTokens: input.maxTokens, stop: input.stop, ...input.decoding }, d.timeouts.generateMs, { signal: s, idleMs: d.timeouts.generateIdleMs, startedAt, onText }),
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
