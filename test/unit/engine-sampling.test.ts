// Sampling parameters: validateSampling / validateResponseFormat normalize what the engine can do
// and refuse the rest with INVALID_ARGUMENT naming the OpenAI request field (details.param).
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { validateResponseFormat, validateSampling } from "../../src/engine/sampling.js";

function refusal(fn: () => unknown): { code: string; param?: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof KvbridgeError) return { code: e.code, param: e.details.param, message: e.message };
    throw e;
  }
  throw new Error("accepted");
}

describe("validateSampling", () => {
  it("normalizes defaults away: greedy is {}", () => {
    expect(validateSampling(undefined)).toEqual({});
    expect(validateSampling({ temperature: 0, topP: 1, topK: 0, minP: 0, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1, logitBias: {} })).toEqual({});
    expect(validateSampling({ temperature: 0.7, topP: 0.9, topK: 5, seed: -3, logitBias: { "65": 5, "66": 0 }, logprobs: true, topLogprobs: 3 })).toEqual({
      temperature: 0.7,
      topP: 0.9,
      topK: 5,
      seed: -3,
      logitBias: { 65: 5 },
      logprobs: true,
      topLogprobs: 3,
    });
  });

  it.each([
    [{ temperature: -5 }, "temperature"],
    [{ temperature: 2.5 }, "temperature"],
    [{ temperature: "hot" }, "temperature"],
    [{ temperature: Number.NaN }, "temperature"],
    [{ topP: 0 }, "top_p"],
    [{ topP: 7 }, "top_p"],
    [{ topK: -1 }, "top_k"],
    [{ topK: 1.5 }, "top_k"],
    [{ minP: 1.2 }, "min_p"],
    [{ seed: 1.5 }, "seed"],
    [{ seed: "1" }, "seed"],
    [{ presencePenalty: 3 }, "presence_penalty"],
    [{ frequencyPenalty: -2.5 }, "frequency_penalty"],
    [{ repetitionPenalty: 0 }, "repetition_penalty"],
    [{ repetitionPenalty: 3 }, "repetition_penalty"],
    [{ logitBias: { "65": 101 } }, "logit_bias"],
    [{ logitBias: { abc: 1 } }, "logit_bias"],
    [{ logitBias: { "300": 1 } }, "logit_bias"],
    [{ logitBias: [1, 2] }, "logit_bias"],
    [{ logprobs: "yes" }, "logprobs"],
    [{ logprobs: true, topLogprobs: 21 }, "top_logprobs"],
    [{ topLogprobs: 2 }, "top_logprobs"],
  ])("refuses %j naming %s", (input, param) => {
    const r = refusal(() => validateSampling(input, 260));
    expect(r.code).toBe("INVALID_ARGUMENT");
    expect(r.param).toBe(param);
    expect(r.message.startsWith(param)).toBe(true);
  });
});

describe("validateResponseFormat", () => {
  it("accepts text, json_object and json_schema", () => {
    expect(validateResponseFormat(undefined)).toBeUndefined();
    expect(validateResponseFormat({ type: "text" })).toBeUndefined();
    expect(validateResponseFormat({ type: "json_object" })).toEqual({ type: "json_object" });
    expect(validateResponseFormat({ type: "json_schema", schema: { type: "object" } })).toEqual({ type: "json_schema", schema: { type: "object" } });
  });
  it.each([[{ type: "yaml" }], [{ type: "json_schema" }], ["json"], [{ type: "json_schema", schema: [1] }]])("refuses %j naming response_format", (input) => {
    const r = refusal(() => validateResponseFormat(input));
    expect(r.code).toBe("INVALID_ARGUMENT");
    expect(r.param).toBe("response_format");
  });
});
