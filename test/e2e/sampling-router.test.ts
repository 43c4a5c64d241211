// Sampling, constrained output and log-probabilities through real processes: the official openai
// client -> router -> prefill node (KV pushed over TCP) -> decode node. A seeded request equals the
// single-process reference (LlamaEngine.generateLocal with the same sampling, as `kvbridge
// generate --seed` runs it) token for token; without a seed two runs differ; json_schema output
// parses and matches its schema, streamed too; logprobs come in OpenAI's shapes; fields kvbridge
// cannot honour are refused with a 400 naming them.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EngineSampling } from "../../src/engine/sampling.js";
import type { LlamaEngine } from "../../src/engine/llama-engine.js";
import { chatPrompt } from "../../src/roles/router/openai-api.js";
import { openTestEngine, sampleText } from "../support/model-fixture.js";
import { startPdCluster, type PdCluster } from "../support/pd-cluster.js";

let cluster: PdCluster;
let reference: LlamaEngine;
let client: OpenAI;

beforeAll(async () => {
  [cluster, reference] = await Promise.all([startPdCluster(), openTestEngine({ maxSequences: 1 })]);
  client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: "unused", maxRetries: 0 });
}, 180_000);

afterAll(async () => {
  await reference?.close();
  await cluster?.stop();
});

async function local(prompt: string, maxTokens: number, sampling?: EngineSampling) {
  return reference.generateLocal({ tokens: reference.tokenize(prompt), maxTokens, sampling });
}

async function post(path: string, body: unknown): Promise<{ status: number; body: { error?: { param: string | null; message: string; type: string } } }> {
  const res = await fetch(`${cluster.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { error?: { param: string | null; message: string; type: string } } };
}

describe("seeded sampling across prefill and decode equals the single-process reference", () => {
  const prompt = sampleText(140, 7); // over one chunk: the decode node loads KV and recomputes nothing it has
  const sampling = { temperature: 1.3, topP: 0.95, topK: 50, minP: 0.02, presencePenalty: 0.4, frequencyPenalty: 0.2, repetitionPenalty: 1.1 };

  it("completions with a seed: token for token the reference's text, and the seed reported back", async () => {
    const expected = await local(prompt, 40, { ...sampling, seed: 424242 });
    const greedy = await local(prompt, 40);
    expect(expected.text).not.toBe(greedy.text); // the sampling did something
    const res = await client.completions.create({
      model: "kvbridge",
      prompt,
      max_tokens: 40,
      temperature: 1.3,
      top_p: 0.95,
      seed: 424242,
      presence_penalty: 0.4,
      frequency_penalty: 0.2,
      // vLLM's extensions, passed through as extra fields
      ...({ top_k: 50, min_p: 0.02, repetition_penalty: 1.1 } as object),
    });
    expect(res.choices[0]!.text).toBe(expected.text);
    expect(res.system_fingerprint).toMatch(/^fp_[0-9a-f]{16}$/);
  });

  it("chat with a seed, streamed: the reference's text; logprobs asked for change nothing", async () => {
    const messages = [{ role: "user" as const, content: "Tell me about the pool." }];
    const expected = await local(chatPrompt(messages), 32, { temperature: 0.9, seed: 7 });
    const stream = await client.chat.completions.create({ model: "kvbridge", messages, max_tokens: 32, temperature: 0.9, seed: 7, stream: true, logprobs: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe(expected.text);
  });

  it("logit_bias reaches the sampler: a token biased +100 is all the greedy output", async () => {
    const a = reference.tokenize("a").at(-1)!;
    const res = await client.completions.create({ model: "kvbridge", prompt: "The router", max_tokens: 8, logit_bias: { [String(a)]: 100 } });
    const expected = await local("The router", 8, { logitBias: { [a]: 100 } });
    expect(res.choices[0]!.text).toBe(expected.text);
    expect(expected.text).toBe(reference.detokenize(Array(8).fill(a)));
  });

  it("without a seed, two sampled runs differ", async () => {
    const ask = () => client.completions.create({ model: "kvbridge", prompt: "Once upon a time", max_tokens: 48, temperature: 2 });
    const [a, b] = [await ask(), await ask()];
    expect(a.choices[0]!.text).not.toBe(b.choices[0]!.text);
  });
});

describe("response_format", () => {
  const schema = {
    type: "object",
    // "integer" is left out: node-llama-cpp's grammar lets one carry an exponent (48e4152541414888154)
    properties: { name: { type: "string" }, size: { enum: ["small", "large"] }, ok: { type: "boolean" }, tags: { type: "array", items: { type: "string" } } },
    required: ["name", "size", "ok", "tags"],
    additionalProperties: false,
  };
  const matches = (text: string): void => {
    const v = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(v).sort()).toEqual(["name", "ok", "size", "tags"]);
    expect(typeof v.name).toBe("string");
    expect(["small", "large"]).toContain(v.size);
    expect(Array.isArray(v.tags) && v.tags.every((t) => typeof t === "string")).toBe(true);
    expect(typeof v.ok).toBe("boolean");
  };
  const messages = [{ role: "user" as const, content: "Describe a cache as JSON." }];
  const format = { type: "json_schema" as const, json_schema: { name: "cache", schema, strict: true } };

  it("json_schema: the answer parses and matches the schema (not streamed and streamed)", async () => {
    const res = await client.chat.completions.create({ model: "kvbridge", messages, max_tokens: 400, response_format: format });
    expect(res.choices[0]!.finish_reason).toBe("stop");
    matches(res.choices[0]!.message.content!);
    const stream = await client.chat.completions.create({ model: "kvbridge", messages, max_tokens: 400, response_format: format, stream: true, temperature: 0.8, seed: 3 });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    matches(text);
  });

  it("json_object: the answer is a JSON object", async () => {
    const res = await client.chat.completions.create({ model: "kvbridge", messages, max_tokens: 400, response_format: { type: "json_object" } });
    const v: unknown = JSON.parse(res.choices[0]!.message.content!);
    expect(typeof v).toBe("object");
  });
});

describe("logprobs", () => {
  it("completions logprobs: N, not streamed and streamed: one entry per token, N alternatives, the chosen token's own", async () => {
    const res = await client.completions.create({ model: "kvbridge", prompt: "The router", max_tokens: 10, logprobs: 3 });
    const lp = res.choices[0]!.logprobs!;
    expect(lp.tokens).toHaveLength(res.usage!.completion_tokens);
    expect(lp.token_logprobs).toHaveLength(lp.tokens!.length);
    expect(lp.text_offset![0]).toBe(0);
    for (const [i, top] of lp.top_logprobs!.entries()) {
      expect(Object.keys(top).length).toBeGreaterThan(0);
      expect(Object.keys(top).length).toBeLessThanOrEqual(3);
      expect(lp.token_logprobs![i]!).toBeLessThanOrEqual(0);
      // greedy: the chosen token is the most likely one
      expect(Math.max(...Object.values(top))).toBeCloseTo(lp.token_logprobs![i]!, 6);
    }
    const stream = await client.completions.create({ model: "kvbridge", prompt: "The router", max_tokens: 10, logprobs: 3, stream: true });
    const tokens: string[] = [];
    for await (const chunk of stream) tokens.push(...(chunk.choices[0]?.logprobs?.tokens ?? []));
    expect(tokens).toEqual(lp.tokens);
  });

  it("chat logprobs: true with top_logprobs, not streamed and streamed", async () => {
    const messages = [{ role: "user" as const, content: "Hello" }];
    const res = await client.chat.completions.create({ model: "kvbridge", messages, max_tokens: 8, logprobs: true, top_logprobs: 2 });
    const content = res.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(res.usage!.completion_tokens);
    for (const t of content) {
      expect(typeof t.token).toBe("string");
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.bytes).toEqual([...Buffer.from(t.token)]);
      expect(t.top_logprobs.length).toBeGreaterThan(0);
      expect(t.top_logprobs.length).toBeLessThanOrEqual(2);
    }
    const stream = await client.chat.completions.create({ model: "kvbridge", messages, max_tokens: 8, logprobs: true, top_logprobs: 2, stream: true });
    const streamed: string[] = [];
    for await (const chunk of stream) streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []).map((t) => t.token));
    expect(streamed).toEqual(content.map((t) => t.token));
    const none = await client.chat.completions.create({ model: "kvbridge", messages, max_tokens: 4 });
    expect(none.choices[0]!.logprobs).toBeNull();
  });
});

describe("values out of range and fields kvbridge cannot honour: 400 naming the param", () => {
  const chat = { model: "kvbridge", messages: [{ role: "user", content: "hi" }], max_tokens: 4 };
  const cases: Array<[string, string, Record<string, unknown>, string]> = [
    ["temperature -5", "/v1/chat/completions", { ...chat, temperature: -5 }, "temperature"],
    ['temperature "hot"', "/v1/completions", { model: "kvbridge", prompt: "x", temperature: "hot" }, "temperature"],
    ["top_p 7", "/v1/chat/completions", { ...chat, top_p: 7 }, "top_p"],
    ["logit_bias on a token outside the vocabulary", "/v1/completions", { model: "kvbridge", prompt: "x", logit_bias: { "99999": 5 } }, "logit_bias"],
    ["max_completion_tokens 0", "/v1/chat/completions", { ...chat, max_tokens: undefined, max_completion_tokens: 0 }, "max_completion_tokens"],
    ["tools", "/v1/chat/completions", { ...chat, tools: [{ type: "function", function: { name: "f", parameters: {} } }] }, "tools"],
    ["tool_choice required", "/v1/chat/completions", { ...chat, tool_choice: "required" }, "tool_choice"],
    [
      "an assistant turn with content null and tool_calls",
      "/v1/chat/completions",
      { ...chat, messages: [{ role: "user", content: "hi" }, { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] }] },
      "messages[1].tool_calls",
    ],
    ["an image part", "/v1/chat/completions", { ...chat, messages: [{ role: "user", content: [{ type: "text", text: "see" }, { type: "image_url", image_url: { url: "data:," } }] }] }, "messages[0].content[1].type"],
    ["echo", "/v1/completions", { model: "kvbridge", prompt: "x", echo: true }, "echo"],
    ["best_of 2", "/v1/completions", { model: "kvbridge", prompt: "x", best_of: 2 }, "best_of"],
    ["suffix", "/v1/completions", { model: "kvbridge", prompt: "x", suffix: "end" }, "suffix"],
    ["n 2", "/v1/chat/completions", { ...chat, n: 2 }, "n"],
    ["response_format of an unknown type", "/v1/chat/completions", { ...chat, response_format: { type: "yaml" } }, "response_format"],
  ];
  for (const [name, path, body, param] of cases) {
    it(name, async () => {
      const res = await post(path, body);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ param, type: "invalid_request_error" });
    });
  }
});
