// A Generate request's sampling fields as the engine's options (EngineSampling and ResponseFormat,
// checked by the engine's own validators so a refusal names the OpenAI param), and the engine's
// per-token log-probabilities as the wire's, each token with its text.
import type { LlamaEngine } from "../engine/llama-engine.js";
import type { TokenLogprob as EngineTokenLogprob } from "../engine/sequence-evaluation.js";
import { validateResponseFormat, validateSampling, type EngineSampling, type ResponseFormat } from "../engine/sampling.js";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { GenerateRequest__Output } from "../wire/generated/kvbridge/v1/GenerateRequest.js";
import type { TokenLogprob } from "../wire/generated/kvbridge/v1/TokenLogprob.js";

export interface EngineDecoding {
  sampling?: EngineSampling;
  responseFormat?: ResponseFormat;
}

/** The request's sampling and response format, validated (INVALID_ARGUMENT naming the param); unset fields stay off. */
export function engineSamplingOf(req: GenerateRequest__Output): EngineDecoding {
  const raw: Record<string, unknown> = {
    temperature: req.temperature,
    topP: req.topP,
    topK: req.topK,
    minP: req.minP,
    seed: req.seed,
    presencePenalty: req.presencePenalty,
    frequencyPenalty: req.frequencyPenalty,
    repetitionPenalty: req.repetitionPenalty,
    logitBias: Object.keys(req.logitBias ?? {}).length > 0 ? req.logitBias : undefined,
    logprobs: req.logprobs || undefined,
    topLogprobs: req.topLogprobs || undefined,
  };
  const sampling = validateSampling(raw);
  let responseFormat: ResponseFormat | undefined;
  if (req.responseFormat) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(req.responseFormat);
    } catch {
      throw new KvbridgeError("INVALID_ARGUMENT", "response_format is not valid JSON", { details: { param: "response_format" } });
    }
    responseFormat = validateResponseFormat(parsed);
  }
  return {
    ...(Object.keys(sampling).length > 0 ? { sampling } : {}),
    ...(responseFormat ? { responseFormat } : {}),
  };
}

/** The engine's log-probabilities with each token's text (one detokenized token; cached per call). */
export function engineLogprobs(engine: LlamaEngine, logprobs: readonly EngineTokenLogprob[]): TokenLogprob[] {
  const texts = new Map<number, string>();
  const text = (token: number): string => {
    let t = texts.get(token);
    if (t === undefined) texts.set(token, (t = engine.detokenize([token])));
    return t;
  };
  return logprobs.map((l) => ({
    token: l.token,
    text: text(l.token),
    logprob: l.logprob,
    top: l.top.map((a) => ({ token: a.token, text: text(a.token), logprob: a.logprob })),
  }));
}
