// Sampling parameters of one request, checked once: the router validates a request's fields with
// validateSampling before anything runs, and the engine validates again (the same function) for
// callers that skip the router. The sampling itself is node-llama-cpp's sampler (see
// sampler-options.ts); nothing here draws a token.

import { KvbridgeError } from "../errors/kvbridge-error.js";

/** Constrained output: any JSON object, or JSON matching a schema (node-llama-cpp's grammars). */
export type ResponseFormat = { type: "text" } | { type: "json_object" } | { type: "json_schema"; schema: Readonly<Record<string, unknown>> };

export interface EngineSampling {
  /** 0 (or absent): greedy, token-exact with the reference. (0, 2]: sampled. */
  temperature?: number;
  /** Nucleus: (0, 1]; 1 = off. Only with temperature > 0. */
  topP?: number;
  /** Keep the k most likely tokens; 0 = off. Only with temperature > 0. */
  topK?: number;
  /** Drop tokens below minP × the top token's probability: [0, 1]; 0 = off. Only with temperature > 0. */
  minP?: number;
  /**
   * Seed of the sampler's random draws (any safe integer; used modulo 2^32). Same seed and
   * parameters give the same tokens, in one process or across prefill and decode nodes. Absent
   * with temperature > 0: a random seed, reported in the result.
   */
  seed?: number;
  /** Subtracted once from the logit of every token already generated: [-2, 2]. */
  presencePenalty?: number;
  /** Subtracted from a token's logit per time it was generated: [-2, 2]. */
  frequencyPenalty?: number;
  /** Multiplicative penalty on tokens already generated (llama.cpp's repeat penalty): (0, 2]; 1 = off. */
  repetitionPenalty?: number;
  /** Token id -> value added to its logit, in [-100, 100]. End-of-generation tokens cannot be biased. */
  logitBias?: Readonly<Record<number, number>>;
  /** Report each generated token's log-probability. */
  logprobs?: boolean;
  /** With logprobs: the N most likely alternatives per position, 0..20. */
  topLogprobs?: number;
}

/** The most alternatives per position `topLogprobs` may ask for (OpenAI's limit). */
export const MAX_TOP_LOGPROBS = 20;

/** The OpenAI request field each EngineSampling field comes from: errors name it as `param`. */
export const SAMPLING_PARAMS: Readonly<Record<keyof EngineSampling, string>> = {
  temperature: "temperature",
  topP: "top_p",
  topK: "top_k",
  minP: "min_p",
  seed: "seed",
  presencePenalty: "presence_penalty",
  frequencyPenalty: "frequency_penalty",
  repetitionPenalty: "repetition_penalty",
  logitBias: "logit_bias",
  logprobs: "logprobs",
  topLogprobs: "top_logprobs",
};

function invalid(field: keyof EngineSampling | "responseFormat", message: string): KvbridgeError {
  const param = field === "responseFormat" ? "response_format" : SAMPLING_PARAMS[field];
  return new KvbridgeError("INVALID_ARGUMENT", `${param} ${message}`, { details: { param } });
}

function numberIn(s: Record<string, unknown>, field: keyof EngineSampling, lo: number, hi: number, loOpen = false): number | undefined {
  const v = s[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw invalid(field, `must be a number, got ${JSON.stringify(v)}`);
  if ((loOpen ? v <= lo : v < lo) || v > hi) throw invalid(field, `must be in ${loOpen ? "(" : "["}${lo}, ${hi}], got ${v}`);
  return v;
}

/**
 * Checks and normalizes sampling parameters. Every refusal is INVALID_ARGUMENT with details.param
 * the OpenAI field name (temperature, top_p, logit_bias ...). `vocabSize`, when given, bounds
 * logit_bias token ids. Fields at their "off" value are dropped, so an all-default request
 * normalizes to {} (greedy).
 */
export function validateSampling(input: unknown, vocabSize = Number.MAX_SAFE_INTEGER): EngineSampling {
  if (input === undefined || input === null) return {};
  if (typeof input !== "object" || Array.isArray(input)) {
    throw new KvbridgeError("INVALID_ARGUMENT", "sampling parameters must be an object", { details: { param: "sampling" } });
  }
  const s = input as Record<string, unknown>;
  const out: EngineSampling = {};
  const temperature = numberIn(s, "temperature", 0, 2);
  if (temperature !== undefined && temperature > 0) out.temperature = temperature;
  const topP = numberIn(s, "topP", 0, 1, true);
  if (topP !== undefined && topP < 1) out.topP = topP;
  const topK = numberIn(s, "topK", 0, Number.MAX_SAFE_INTEGER);
  if (topK !== undefined && !Number.isInteger(topK)) throw invalid("topK", `must be a non-negative integer, got ${topK}`);
  if (topK) out.topK = topK;
  const minP = numberIn(s, "minP", 0, 1);
  if (minP) out.minP = minP;
  const seed = s.seed;
  if (seed !== undefined && seed !== null) {
    if (typeof seed !== "number" || !Number.isSafeInteger(seed)) throw invalid("seed", `must be an integer, got ${JSON.stringify(seed)}`);
    out.seed = seed;
  }
  const presencePenalty = numberIn(s, "presencePenalty", -2, 2);
  if (presencePenalty) out.presencePenalty = presencePenalty;
  const frequencyPenalty = numberIn(s, "frequencyPenalty", -2, 2);
  if (frequencyPenalty) out.frequencyPenalty = frequencyPenalty;
  const repetitionPenalty = numberIn(s, "repetitionPenalty", 0, 2, true);
  if (repetitionPenalty !== undefined && repetitionPenalty !== 1) out.repetitionPenalty = repetitionPenalty;
  const bias = s.logitBias;
  if (bias !== undefined && bias !== null) {
    if (typeof bias !== "object" || Array.isArray(bias)) throw invalid("logitBias", "must be an object mapping token ids to biases");
    const entries: [number, number][] = [];
    for (const [key, value] of Object.entries(bias)) {
      const token = Number(key);
      if (!/^\d+$/.test(key) || !Number.isSafeInteger(token) || token >= vocabSize) {
        throw invalid("logitBias", `key ${JSON.stringify(key)} is not a token id of this model (integers in [0, ${vocabSize}))`);
      }
      if (typeof value !== "number" || !Number.isFinite(value) || value < -100 || value > 100) {
        throw invalid("logitBias", `value for token ${key} must be a number in [-100, 100], got ${JSON.stringify(value)}`);
      }
      if (value !== 0) entries.push([token, value]);
    }
    if (entries.length > 0) out.logitBias = Object.fromEntries(entries);
  }
  const logprobs = s.logprobs;
  if (logprobs !== undefined && logprobs !== null && typeof logprobs !== "boolean") throw invalid("logprobs", `must be a boolean, got ${JSON.stringify(logprobs)}`);
  const top = numberIn(s, "topLogprobs", 0, MAX_TOP_LOGPROBS);
  if (top !== undefined && !Number.isInteger(top)) throw invalid("topLogprobs", `must be an integer in [0, ${MAX_TOP_LOGPROBS}], got ${top}`);
  if (top && logprobs !== true) throw invalid("topLogprobs", "needs logprobs: true");
  if (logprobs === true) out.logprobs = true;
  if (top) out.topLogprobs = top;
  return out;
}

/** Checks a response format; "text" normalizes to undefined (no grammar). */
export function validateResponseFormat(input: unknown): ResponseFormat | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== "object" || Array.isArray(input)) throw invalid("responseFormat", "must be an object with a type");
  const f = input as Record<string, unknown>;
  if (f.type === "text") return undefined;
  if (f.type === "json_object") return { type: "json_object" };
  if (f.type === "json_schema") {
    const schema = f.schema;
    if (typeof schema !== "object" || schema === null || Array.isArray(schema)) throw invalid("responseFormat", "json_schema needs a schema object");
    return { type: "json_schema", schema: schema as Record<string, unknown> };
  }
  throw invalid("responseFormat", `type must be "text", "json_object" or "json_schema", got ${JSON.stringify(f.type)}`);
}

/** True when the request draws tokens at random (temperature > 0); greedy otherwise. */
export function isSampled(s: EngineSampling): boolean {
  return (s.temperature ?? 0) > 0;
}
