// EngineSampling -> the options node-llama-cpp's sampler takes for one sequence evaluation
// (temperature, top-k/top-p/min-p, seed, repeat penalty, token bias, grammar). One sampler lives
// for one request's whole decode, so a seeded request draws the same random numbers on every
// path: the reference, a decode node after a KV transfer, and beside any other requests.

import { randomInt } from "node:crypto";
import { TokenBias, type LlamaGrammarEvaluationState, type LlamaModel, type SequenceEvaluateOptions, type Token } from "node-llama-cpp";
import { isSampled, type EngineSampling } from "./sampling.js";

/** Generated tokens the presence, frequency and repetition penalties look back over. */
export const PENALTY_WINDOW_TOKENS = 1024;

/** The seed a sampled request runs with: its own (modulo 2^32), or a random one. undefined when greedy. */
export function resolveSeed(s: EngineSampling): number | undefined {
  if (!isSampled(s)) return undefined;
  if (s.seed === undefined) return randomInt(0, 2 ** 32);
  return ((s.seed % 2 ** 32) + 2 ** 32) % 2 ** 32;
}

/**
 * Options for LlamaContextSequence.evaluate. Greedy with no penalty, bias or grammar gives
 * exactly { temperature: 0 }: the same arithmetic and tokens as before sampling existed.
 * `generated` is read at every step (the penalties' history: output tokens only).
 */
export function samplerOptions(
  model: LlamaModel,
  s: EngineSampling,
  seed: number | undefined,
  generated: readonly number[],
  grammar: LlamaGrammarEvaluationState | undefined,
): SequenceEvaluateOptions {
  const o: SequenceEvaluateOptions = { temperature: 0 };
  if (isSampled(s)) {
    o.temperature = s.temperature;
    // node-llama-cpp defaults to top-k 40 and top-p 0.95; OpenAI's defaults are off.
    o.topK = s.topK ?? 0;
    o.topP = s.topP ?? 1;
    o.minP = s.minP ?? 0;
    o.seed = seed;
  }
  if (s.presencePenalty || s.frequencyPenalty || (s.repetitionPenalty !== undefined && s.repetitionPenalty !== 1)) {
    o.repeatPenalty = {
      punishTokens: () => generated.slice(-PENALTY_WINDOW_TOKENS) as Token[],
      maxPunishTokens: PENALTY_WINDOW_TOKENS,
      penalty: s.repetitionPenalty ?? 1,
      presencePenalty: s.presencePenalty ?? 0,
      frequencyPenalty: s.frequencyPenalty ?? 0,
    };
  }
  if (s.logitBias) {
    const bias = TokenBias.for(model);
    for (const [token, value] of Object.entries(s.logitBias)) bias.set(Number(token) as Token, { logit: value });
    o.tokenBias = bias;
  }
  if (grammar) o.grammarEvaluationState = grammar;
  return o;
}
