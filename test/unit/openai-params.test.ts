// The router's reading of OpenAI request fields: sampling and response_format become the Generate
// request's fields (checked by the engine's validators), logprobs take each endpoint's form, and
// every field kvbridge cannot honour is refused naming its param.
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { parseChat, parseCompletion } from "../../src/roles/router/openai-api.js";

const chat = (extra: Record<string, unknown>) => parseChat({ messages: [{ role: "user", content: "hi" }], ...extra });
const completion = (extra: Record<string, unknown>) => parseCompletion({ prompt: "hi", ...extra });

function paramOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(KvbridgeError);
    expect((err as KvbridgeError).code).toBe("INVALID_ARGUMENT");
    return (err as KvbridgeError).details.param;
  }
  throw new Error("accepted");
}

describe("decoding fields", () => {
  it("sampling fields map to the Generate request's; defaults are left out (greedy)", () => {
    expect(completion({}).decoding).toEqual({ logprobs: false, topLogprobs: 0, responseFormat: "" });
    const d = completion({ temperature: 0.7, top_p: 0.9, top_k: 40, min_p: 0.05, seed: -3, presence_penalty: 1, frequency_penalty: -1, repetition_penalty: 1.2, logit_bias: { "65": -100 } }).decoding;
    expect(d).toMatchObject({ temperature: 0.7, topP: 0.9, topK: 40, minP: 0.05, seed: -3, presencePenalty: 1, frequencyPenalty: -1, repetitionPenalty: 1.2, logitBias: { 65: -100 } });
  });

  it("logprobs: completions take N, chat takes true with top_logprobs", () => {
    expect(completion({ logprobs: 3 })).toMatchObject({ decoding: { logprobs: true, topLogprobs: 3 }, logprobs: { shape: "completion", top: 3 } });
    expect(completion({ logprobs: 0 })).toMatchObject({ decoding: { logprobs: true, topLogprobs: 0 } });
    expect(chat({ logprobs: true, top_logprobs: 5 })).toMatchObject({ decoding: { logprobs: true, topLogprobs: 5 }, logprobs: { shape: "chat", top: 5 } });
    expect(chat({ logprobs: false }).logprobs).toBeUndefined();
    expect(paramOf(() => chat({ top_logprobs: 2 }))).toBe("top_logprobs");
    expect(paramOf(() => chat({ logprobs: true, top_logprobs: 21 }))).toBe("top_logprobs");
    expect(paramOf(() => completion({ logprobs: true }))).toBe("logprobs");
    expect(paramOf(() => chat({ logprobs: 2 }))).toBe("logprobs");
  });

  it("response_format: json_object and json_schema as the engine's format, text as none", () => {
    expect(chat({ response_format: { type: "text" } }).decoding!.responseFormat).toBe("");
    expect(JSON.parse(chat({ response_format: { type: "json_object" } }).decoding!.responseFormat!)).toEqual({ type: "json_object" });
    const schema = { type: "object", properties: { a: { type: "string" } } };
    expect(JSON.parse(chat({ response_format: { type: "json_schema", json_schema: { name: "x", schema } } }).decoding!.responseFormat!)).toEqual({ type: "json_schema", schema });
    expect(paramOf(() => chat({ response_format: { type: "json_schema" } }))).toBe("response_format");
    expect(paramOf(() => chat({ response_format: { type: "json_schema", json_schema: { name: "x" } } }))).toBe("response_format");
    expect(paramOf(() => chat({ response_format: "json" }))).toBe("response_format");
  });

  it("out-of-range and mistyped values name their param", () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ temperature: -5 }, "temperature"],
      [{ temperature: "hot" }, "temperature"],
      [{ temperature: 2.5 }, "temperature"],
      [{ top_p: 7 }, "top_p"],
      [{ top_p: 0 }, "top_p"],
      [{ top_k: 1.5 }, "top_k"],
      [{ min_p: 2 }, "min_p"],
      [{ seed: 1.5 }, "seed"],
      [{ seed: "1" }, "seed"],
      [{ presence_penalty: 3 }, "presence_penalty"],
      [{ frequency_penalty: -3 }, "frequency_penalty"],
      [{ repetition_penalty: 0 }, "repetition_penalty"],
      [{ logit_bias: { abc: 1 } }, "logit_bias"],
      [{ logit_bias: { "5": 101 } }, "logit_bias"],
      [{ logit_bias: { "4294967296": 1 } }, "logit_bias"],
      [{ max_tokens: 0 }, "max_tokens"],
    ];
    for (const [fields, param] of bad) {
      expect(paramOf(() => chat(fields)), JSON.stringify(fields)).toBe(param);
      expect(paramOf(() => completion(fields)), JSON.stringify(fields)).toBe(param);
    }
  });

  it("max_completion_tokens: honoured, and named in its errors", () => {
    expect(chat({ max_completion_tokens: 7 }).maxTokens).toBe(7);
    expect(paramOf(() => chat({ max_completion_tokens: 0 }))).toBe("max_completion_tokens");
    expect(paramOf(() => chat({ max_completion_tokens: "many" }))).toBe("max_completion_tokens");
  });
});

describe("fields kvbridge cannot honour are refused, naming them", () => {
  it("completions: echo, best_of > 1, suffix, n > 1", () => {
    expect(paramOf(() => completion({ echo: true }))).toBe("echo");
    expect(paramOf(() => completion({ best_of: 3 }))).toBe("best_of");
    expect(paramOf(() => completion({ suffix: "x" }))).toBe("suffix");
    expect(paramOf(() => completion({ n: 2 }))).toBe("n");
    expect(() => completion({ echo: false, best_of: 1, suffix: "", n: 1, user: "u" })).not.toThrow();
  });

  it("chat: function calling, other modalities, n > 1", () => {
    expect(paramOf(() => chat({ tools: [] }))).toBe("tools");
    expect(paramOf(() => chat({ tool_choice: "required" }))).toBe("tool_choice");
    expect(paramOf(() => chat({ tool_choice: "auto" }))).toBe("tool_choice");
    expect(paramOf(() => chat({ functions: [] }))).toBe("functions");
    expect(paramOf(() => chat({ function_call: "auto" }))).toBe("function_call");
    expect(paramOf(() => chat({ audio: { voice: "x", format: "wav" } }))).toBe("audio");
    expect(paramOf(() => chat({ modalities: ["text", "audio"] }))).toBe("modalities");
    expect(paramOf(() => chat({ prediction: { type: "content", content: "x" } }))).toBe("prediction");
    expect(paramOf(() => chat({ n: 2 }))).toBe("n");
    expect(() => chat({ tool_choice: "none", modalities: ["text"], user: "u", metadata: {}, store: false, parallel_tool_calls: true })).not.toThrow();
  });

  it("chat messages: tool calls, tool results, non-text parts, missing content", () => {
    const msgs = (m: unknown[]) => () => parseChat({ messages: m });
    expect(paramOf(msgs([{ role: "user", content: "a" }, { role: "assistant", content: null, tool_calls: [{ id: "1", type: "function", function: { name: "f", arguments: "{}" } }] }]))).toBe("messages[1].tool_calls");
    expect(paramOf(msgs([{ role: "tool", tool_call_id: "1", content: "r" }]))).toBe("messages[0].role");
    expect(paramOf(msgs([{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }]))).toBe("messages[0].content[0].type");
    expect(paramOf(msgs([{ role: "user", content: [{ type: "text", text: "a" }, { type: "input_audio", input_audio: {} }] }]))).toBe("messages[0].content[1].type");
    expect(paramOf(msgs([{ role: "assistant", content: null }]))).toBe("messages[0].content");
    expect(paramOf(msgs([{ role: "robot", content: "x" }]))).toBe("messages[0].role");
    expect(parseChat({ messages: [{ role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] }] }).prompt).toBe("<|user|>\nab\n<|assistant|>\n");
  });
});
