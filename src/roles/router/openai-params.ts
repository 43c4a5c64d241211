// The OpenAI request fields that shape decoding (sampling, logit bias, log-probabilities, response
// format), checked at the router with the engine's own validators and turned into the Generate
// request's fields; and the fields kvbridge cannot honour, refused with a 400 naming them instead of
// being dropped. docs/api.md lists every field and what kvbridge does with it.
import { MAX_TOP_LOGPROBS, validateResponseFormat, validateSampling } from "../../engine/sampling.js";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import type { GenerateRequest } from "../../wire/generated/kvbridge/v1/GenerateRequest.js";

/** The Generate request's decoding fields (sampling, logprobs, response format). */
export type DecodingFields = Pick<
  GenerateRequest,
  "temperature" | "topP" | "topK" | "minP" | "seed" | "presencePenalty" | "frequencyPenalty" | "repetitionPenalty" | "logitBias" | "logprobs" | "topLogprobs" | "responseFormat"
>;

/** How the answer reports log-probabilities: OpenAI's completions shape or its chat shape. */
export type LogprobsRequest = { shape: "completion"; top: number } | { shape: "chat"; top: number };

/** Token ids travel as uint32 on the wire; the decode node's engine checks them against its vocabulary. */
const WIRE_TOKEN_LIMIT = 2 ** 32;

function refuse(param: string, message: string): KvbridgeError {
  return new KvbridgeError("INVALID_ARGUMENT", message, { details: { param } });
}

function present(v: unknown): boolean {
  return v !== undefined && v !== null;
}

/** The OpenAI response_format as the engine's ({ type: "json_schema", schema }), or undefined for text. */
function responseFormatOf(raw: unknown): string | undefined {
  if (!present(raw)) return undefined;
  let format = raw;
  if (typeof raw === "object" && !Array.isArray(raw) && (raw as { type?: unknown }).type === "json_schema") {
    const js = (raw as { json_schema?: unknown }).json_schema;
    if (typeof js !== "object" || js === null || Array.isArray(js)) throw refuse("response_format", "response_format json_schema needs a json_schema object with a schema");
    format = { type: "json_schema", schema: (js as { schema?: unknown }).schema };
  }
  const checked = validateResponseFormat(format);
  return checked ? JSON.stringify(checked) : undefined;
}

/**
 * The decoding fields of a completions or chat request. Logprobs: completions take `logprobs: N`
 * (the N most likely alternatives, 0..20); chat takes `logprobs: true` and `top_logprobs`.
 */
export function decodingFields(b: Record<string, unknown>, kind: "completion" | "chat"): { decoding: DecodingFields; logprobs?: LogprobsRequest } {
  let logprobs: boolean | undefined;
  let top: number | undefined;
  if (kind === "completion") {
    const n = b.logprobs;
    if (present(n)) {
      if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > MAX_TOP_LOGPROBS) {
        throw refuse("logprobs", `logprobs must be an integer in [0, ${MAX_TOP_LOGPROBS}] (the alternatives reported per token), got ${JSON.stringify(n)}`);
      }
      logprobs = true;
      top = n;
    }
  } else {
    if (present(b.logprobs) && typeof b.logprobs !== "boolean") throw refuse("logprobs", `logprobs must be a boolean, got ${JSON.stringify(b.logprobs)}`);
    logprobs = b.logprobs === true ? true : undefined;
    top = b.top_logprobs as number | undefined;
  }
  const s = validateSampling(
    {
      temperature: b.temperature,
      topP: b.top_p,
      topK: b.top_k,
      minP: b.min_p,
      seed: b.seed,
      presencePenalty: b.presence_penalty,
      frequencyPenalty: b.frequency_penalty,
      repetitionPenalty: b.repetition_penalty,
      logitBias: b.logit_bias,
      logprobs,
      topLogprobs: top === null ? undefined : top,
    },
    WIRE_TOKEN_LIMIT,
  );
  const responseFormat = responseFormatOf(b.response_format);
  const decoding: DecodingFields = {
    temperature: s.temperature,
    topP: s.topP,
    topK: s.topK,
    minP: s.minP,
    seed: s.seed,
    presencePenalty: s.presencePenalty,
    frequencyPenalty: s.frequencyPenalty,
    repetitionPenalty: s.repetitionPenalty,
    logitBias: s.logitBias ? { ...s.logitBias } : undefined,
    logprobs: s.logprobs === true,
    topLogprobs: s.topLogprobs ?? 0,
    responseFormat: responseFormat ?? "",
  };
  for (const k of Object.keys(decoding) as (keyof DecodingFields)[]) if (decoding[k] === undefined) delete decoding[k];
  return { decoding, ...(s.logprobs ? { logprobs: { shape: kind, top: s.topLogprobs ?? 0 } } : {}) };
}

/** Fields OpenAI defines that kvbridge cannot honour: present with an effect, they are refused. */
export function refuseUnsupported(b: Record<string, unknown>, kind: "completion" | "chat"): void {
  if (present(b.n) && b.n !== 1) throw refuse("n", `n must be 1: kvbridge returns one choice per request (got ${JSON.stringify(b.n)}); send the request n times, with seeds of your own, for more`);
  if (kind === "completion") {
    if (present(b.echo) && b.echo !== false) throw refuse("echo", "echo is not supported: kvbridge returns the completion only");
    if (present(b.best_of) && b.best_of !== 1) throw refuse("best_of", `best_of must be 1: kvbridge does not rank candidate completions (got ${JSON.stringify(b.best_of)})`);
    if (present(b.suffix) && b.suffix !== "") throw refuse("suffix", "suffix (insertion) is not supported by kvbridge");
    return;
  }
  const none = (v: unknown): boolean => !present(v) || v === "none";
  if (present(b.tools)) throw refuse("tools", "tools (function calling) is not supported by kvbridge");
  if (!none(b.tool_choice)) throw refuse("tool_choice", "tool_choice is not supported by kvbridge: it does no function calling");
  if (present(b.functions)) throw refuse("functions", "functions (function calling) is not supported by kvbridge");
  if (!none(b.function_call)) throw refuse("function_call", "function_call is not supported by kvbridge: it does no function calling");
  if (present(b.audio)) throw refuse("audio", "audio output is not supported by kvbridge");
  if (present(b.modalities) && !(Array.isArray(b.modalities) && b.modalities.every((m) => m === "text"))) {
    throw refuse("modalities", 'modalities other than ["text"] are not supported by kvbridge');
  }
  if (present(b.prediction)) throw refuse("prediction", "prediction (predicted outputs) is not supported by kvbridge");
  if (present(b.web_search_options)) throw refuse("web_search_options", "web_search_options is not supported by kvbridge");
  if (present(b.reasoning_effort)) throw refuse("reasoning_effort", "reasoning_effort is not supported: kvbridge's models do not reason");
  if (present(b.verbosity)) throw refuse("verbosity", "verbosity is not supported by kvbridge");
}
