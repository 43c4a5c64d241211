// The decode node's engine service: Generate loads a request's received KV chunks into a context
// sequence (recomputing what is missing, or failing, by policy) and streams the tokens; MatchPrefix
// tells the router how much of a prompt this node already holds. Whether the node takes the call at
// all (engine loaded, not draining) is the admission gate's decision, before these handlers.
// A READY chunk that is not a valid KV chunk of this prompt (someone wrote garbage under its key) is
// never a user's error: it is treated as missing, evicted once nobody pins it, and recomputed.
// Several models: Generate holds a lease on its request's model ("" = the node's default) while it
// runs, and KV that was sent for the request under another fingerprint is refused (INCOMPATIBLE,
// fingerprint_mismatch) and released, never used.
// Sampling, constrained output and log-probabilities travel on the request (generate-sampling.ts
// turns them into the engine's options); the last event carries the seed a sampled request used.

import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import type { NodeModels } from "../models/node-models.js";
import { toServiceError } from "../wire/error-status.js";
import type { DecodeHandlers } from "../wire/generated/kvbridge/v1/Decode.js";
import type { GenerateEvent } from "../wire/generated/kvbridge/v1/GenerateEvent.js";
import type { GenerateRequest__Output } from "../wire/generated/kvbridge/v1/GenerateRequest.js";
import type { KvReceiver } from "../transfer/receiver.js";
import { engineLogprobs, engineSamplingOf } from "./generate-sampling.js";
import { callSignal, unaryHandler } from "./unary-handler.js";

export type RecomputePolicy = "recompute" | "fail";

export interface DecodeEngineOptions {
  models: NodeModels;
  receiver: KvReceiver;
  policy: RecomputePolicy;
  /** Default bound on waiting for a request's chunks to be READY. */
  kvWaitMs: number;
  maxTokensLimit?: number;
  logger: Logger;
  /** Called whenever a Generate ends, so a drain waiting for it wakes. */
  onGenerateEnded?: () => void;
}

/** Where a Generate is: waiting for its KV (and its model), loading the KV into a sequence, decoding. */
export type GenerationPhase = "receiving" | "loading" | "decoding";

/** One Generate running now, as Inspect lists it. */
export interface GenerationView {
  requestId: string;
  phase: GenerationPhase;
  /** The model it runs on ("" until its model is resolved). */
  model: string;
  promptTokens: number;
  tokensGenerated: number;
  /** Date.now() when it started. */
  startedAt: number;
}

export interface DecodeEngineService {
  handlers: DecodeHandlers;
  /** Generate calls running now. */
  activeRequests(): number;
  /** Each Generate running now (copies). */
  activeGenerations(): GenerationView[];
}

export function decodeEngineService(o: DecodeEngineOptions): DecodeEngineService {
  const { models, receiver: rx } = o;
  const maxTokensLimit = o.maxTokensLimit ?? 8192;
  const active = new Map<string, GenerationView>();

  /**
   * The chunk bytes this request can load: the longest run of READY chunks from the start whose keys
   * are exactly the keys of these tokens. Anything after it is recomputed (or the request fails).
   */
  const loadablePrefix = async (req: GenerateRequest__Output, keys: string[], signal: AbortSignal): Promise<{ prefix: Buffer[]; holding: boolean; why: string }> => {
    if (!rx.hasRequest(req.requestId)) {
      return { prefix: [], holding: false, why: `no KV was received for request ${req.requestId} (its prefill failed before allocating, or it expired)` };
    }
    let st;
    try {
      st = await rx.awaitReady(req.requestId, req.kvWaitMs || o.kvWaitMs, signal);
    } catch (err) {
      // Its writer died and the lease sweeper (or a torn data connection) released the request
      // while we waited: nothing of it is left to load.
      if (toKvbridgeError(err).code !== "NOT_FOUND") throw err;
      return { prefix: [], holding: false, why: `the KV transfer of request ${req.requestId} failed (its writer aborted or its lease expired)` };
    }
    let k = 0;
    while (k < keys.length && k < st.keys.length && st.keys[k]!.key === keys[k] && st.keys[k]!.state === "ready") k++;
    const views = k > 0 ? rx.chunkViews(req.requestId).slice(0, k) : [];
    if (k === keys.length && st.keys.length === keys.length) return { prefix: views, holding: true, why: "" };
    const bad = st.keys[k];
    const why =
      k < st.keys.length && bad && bad.key !== keys[k]
        ? `chunk ${k} of request ${req.requestId} does not belong to this prompt (key mismatch)`
        : `chunk ${k} of ${keys.length} for request ${req.requestId} is ${bad?.state ?? "missing"}`;
    return { prefix: views, holding: true, why };
  };

  /**
   * Evicts READY entries found invalid, if nobody else pins them now (whoever does finds them
   * invalid too and evicts them when done). Runs right after this request's release, in the same
   * step, so the entry evicted is the one that was checked.
   */
  const evictInvalid = (requestId: string, keys: readonly string[]): void => {
    for (const key of keys) {
      try {
        rx.evict(key);
        o.logger.warn({ requestId, key }, "evicted an invalid READY chunk");
      } catch (err) {
        o.logger.info({ requestId, key, err: toKvbridgeError(err).message }, "invalid READY chunk left for its other holders to evict");
      }
    }
  };

  const finish = (requestId: string, holding: boolean, invalid: readonly string[] = []): void => {
    if (!holding) return;
    try {
      // Committed: drop our pins (READY entries stay as prefix cache). Still being written (its
      // prefill died or is late): abort, which releases exactly this request's holds.
      const phase = rx.requestPhase(requestId);
      if (phase === "committed") rx.release(requestId);
      else if (phase !== undefined) rx.abort(requestId, { kind: "decode_incomplete" });
    } catch (err) {
      o.logger.warn({ requestId, err: toKvbridgeError(err).message }, "releasing request after decode failed");
    }
    evictInvalid(requestId, invalid);
  };

  const handlers: DecodeHandlers = {
    Generate: (call: grpc.ServerWritableStream<GenerateRequest__Output, GenerateEvent>) => {
      const req = call.request;
      const signal = callSignal(call);
      const log = o.logger.child({ requestId: req.requestId });
      let holding = false;
      let mine = false;
      let release = (): void => undefined;
      const invalid: string[] = [];
      void (async () => {
        try {
          if (!req.requestId) throw new KvbridgeError("INVALID_ARGUMENT", "request_id is empty");
          if (req.maxTokens < 1 || req.maxTokens > maxTokensLimit) {
            throw new KvbridgeError("INVALID_ARGUMENT", `max_tokens must be 1..${maxTokensLimit}, got ${req.maxTokens}`);
          }
          if (active.has(req.requestId)) throw new KvbridgeError("ALREADY_EXISTS", `request ${req.requestId} is already generating here`);
          const view: GenerationView = { requestId: req.requestId, phase: "receiving", model: req.model, promptTokens: 0, tokensGenerated: 0, startedAt: Date.now() };
          active.set(req.requestId, view);
          mine = true;
          // Held until the generation ends: the model is never unloaded under it.
          const lease = await models.acquire(req.model, signal);
          release = lease.release;
          const engine = lease.model.engine;
          view.model = lease.id;
          const sentUnder = rx.requestFingerprint(req.requestId);
          if (sentUnder !== undefined && sentUnder !== engine.fingerprint) {
            // Holding: the request's KV is released (or aborted) in finally, never used.
            holding = true;
            throw new KvbridgeError(
              "INCOMPATIBLE",
              `the KV of request ${req.requestId} was made under fingerprint ${sentUnder.slice(0, 16)}, not model ${lease.id}'s (${engine.fingerprint.slice(0, 16)}); prefill and decode must use the same model`,
              { details: { reason: "fingerprint_mismatch", param: "model" } },
            );
          }
          // Checked before any KV is loaded: a bad value is the caller's error, named by its OpenAI param.
          const decoding = engineSamplingOf(req);
          // Limits checked before tokenizing, long prompts tokenized off the event loop: one huge prompt
          // never stalls the tokens of the requests decoding here.
          const tokens = await engine.tokenizePrompt(req.prompt, { signal, maxTokens: Math.max(1, engine.contextSize - req.maxTokens) });
          if (tokens.length + req.maxTokens > engine.contextSize) {
            throw new KvbridgeError("INVALID_ARGUMENT", `prompt (${tokens.length} tokens) + max_tokens (${req.maxTokens}) exceeds the context (${engine.contextSize})`);
          }
          view.promptTokens = tokens.length;
          const keys = engine.chunkKeys(tokens);
          const plan = await loadablePrefix(req, keys, signal);
          holding = plan.holding;
          view.phase = "loading";
          // The leading chunks generate would accept, checked with a turn of the event loop between
          // chunks (a long prefix never stalls the other streams on this node).
          const checked = await engine.checkPrefix(tokens, plan.prefix, signal);
          if (checked.bad) {
            // Someone else's bad write: never this user's error. Treated as missing, evicted after use.
            invalid.push(checked.bad.key);
            plan.prefix = checked.valid;
            plan.why = `READY chunk ${checked.bad.index} is not a valid KV chunk of this prompt (${checked.bad.why}); it is evicted`;
            log.warn({ chunk: checked.bad.index, key: checked.bad.key, reason: checked.bad.why }, "invalid READY chunk: treated as missing and evicted");
          }
          if (plan.prefix.length < keys.length) {
            if (o.policy === "fail") {
              throw new KvbridgeError("KV_FAILED", `${plan.why}; policy is fail (start the decode node with --recompute-policy recompute to compute it locally)`);
            }
            log.warn({ loaded: plan.prefix.length, chunks: keys.length, reason: plan.why }, "recomputing missing KV locally");
          }
          let completion = 0;
          const generate = (prefix: Buffer[]) =>
            engine.generate({
              tokens,
              prefix,
              maxTokens: req.maxTokens,
              stop: req.stop.length > 0 ? req.stop : undefined,
              ...decoding,
              signal,
              // The engine copied the chunks: drop the pins now, not after decoding, so the pool slots
              // serve other requests (READY entries stay as prefix cache) while this one generates.
              onPrefixConsumed: () => {
                finish(req.requestId, holding, invalid);
                holding = false;
                view.phase = "decoding";
              },
              onToken: (text, token) => {
                completion++;
                view.phase = "decoding";
                view.tokensGenerated = completion;
                call.write({ text, token, done: false });
              },
            });
          let result;
          try {
            result = await generate(plan.prefix);
          } catch (err) {
            // The engine refused the prefix itself (a chunk that passed the checks above but not the
            // engine's own, e.g. a forged layout): still someone else's write, never this user's.
            if (toKvbridgeError(err).code !== "INCOMPATIBLE" || !holding || plan.prefix.length === 0) throw err;
            invalid.push(...keys.slice(0, plan.prefix.length));
            log.warn({ chunks: plan.prefix.length, reason: toKvbridgeError(err).message }, "the engine refused READY chunks: treated as missing and evicted");
            if (o.policy === "fail") throw new KvbridgeError("KV_FAILED", `READY chunks of request ${req.requestId} are not valid KV chunks; policy is fail`);
            plan.prefix = [];
            result = await generate([]);
          }
          call.write({
            text: "",
            done: true,
            finishReason: result.finishReason,
            promptTokens: tokens.length,
            completionTokens: completion,
            recomputedTokens: result.recomputedTokens,
            chunksLoaded: plan.prefix.length,
            modelId: lease.id,
            fingerprint: engine.fingerprint,
            logprobs: result.logprobs ? engineLogprobs(engine, result.logprobs) : [],
            ...(result.seed !== undefined ? { seed: result.seed } : {}),
          });
          call.end();
          log.info({ model: lease.id, promptTokens: tokens.length, completionTokens: completion, recomputed: result.recomputedTokens, chunksLoaded: plan.prefix.length }, "generated");
        } catch (err) {
          const e = signal.aborted ? new KvbridgeError("CANCELLED", `generate ${req.requestId} cancelled by its caller`) : toKvbridgeError(err);
          if (e.code === "CANCELLED") log.info("generate cancelled");
          else log.error({ err: e.message, code: e.code }, "generate failed");
          if (!call.cancelled) call.emit("error", toServiceError(e));
        } finally {
          // A duplicate call that was refused must not end the original's bookkeeping.
          if (mine) {
            active.delete(req.requestId);
            finish(req.requestId, holding, invalid);
            release();
            o.onGenerateEnded?.();
          }
        }
      })();
    },
    // Keys are per fingerprint: the count is the named model's. Checks the name, loads nothing.
    MatchPrefix: unaryHandler((req) => {
      models.resolve(req.model);
      return { matched: rx.matchPrefix(req.keys) };
    }),
  };
  return { handlers, activeRequests: () => active.size, activeGenerations: () => [...active.values()].map((g) => ({ ...g })) };
}

/**
 * The Decode service of a node whose engine may still be loading: calls go to the engine service once
 * it is attached. The admission gate refuses them before that (reason "loading"); these answers only
 * cover a call that slipped between the gate and the attachment.
 */
export function decodeHandlers(attached: () => DecodeEngineService | undefined): DecodeHandlers {
  const loading = (): KvbridgeError =>
    new KvbridgeError("UNAVAILABLE", "the decode node's engine is still loading; retry shortly", { details: { reason: "loading" } });
  return {
    Generate: (call: grpc.ServerWritableStream<GenerateRequest__Output, GenerateEvent>) => {
      const svc = attached();
      if (svc) return svc.handlers.Generate(call);
      call.emit("error", toServiceError(loading()));
    },
    MatchPrefix: (call, callback) => {
      const svc = attached();
      if (svc) return svc.handlers.MatchPrefix(call, callback);
      callback(toServiceError(loading()));
    },
  };
}
