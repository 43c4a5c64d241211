// The whole path through real processes: the official openai client -> router -> prefill node
// (evaluates, pushes KV over TCP) -> decode node (loads KV, streams tokens). The output must equal,
// token for token, one process evaluating and decoding the same prompt greedily.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaEngine } from "../../src/engine/llama-engine.js";
import { chatPrompt } from "../../src/roles/router/openai-api.js";
import { atBaseline, nodeClients, type NodeClients } from "../support/node-clients.js";
import { openTestEngine, sampleText } from "../support/model-fixture.js";
import { startPdCluster, type PdCluster } from "../support/pd-cluster.js";

let cluster: PdCluster;
let reference: LlamaEngine;
let decode: NodeClients;
let client: OpenAI;

beforeAll(async () => {
  [cluster, reference] = await Promise.all([startPdCluster(), openTestEngine({ maxSequences: 1 })]);
  decode = nodeClients(cluster.decodeGrpc);
  client = new OpenAI({ baseURL: `${cluster.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

afterAll(async () => {
  decode?.close();
  await reference?.close();
  await cluster?.stop();
});

async function single(prompt: string, maxTokens: number): Promise<string> {
  return (await reference.generateLocal({ tokens: reference.tokenize(prompt), maxTokens })).text;
}

describe("disaggregated prefill -> decode equals a single process, token for token", () => {
  const prompts: Array<[string, string]> = [
    ["short", "Once upon a time"],
    ["not a multiple of the chunk size", sampleText(61, 3)],
    ["long (>= 2k tokens)", sampleText(460, 5)],
  ];
  for (const [name, prompt] of prompts) {
    it(`${name} prompt`, async () => {
      const tokens = reference.tokenize(prompt).length;
      if (name.startsWith("long")) expect(tokens).toBeGreaterThanOrEqual(2048);
      if (name.startsWith("not")) expect(tokens % reference.chunkTokens).not.toBe(0);
      const res = await client.completions.create({ model: "kvbridge", prompt, max_tokens: 24 });
      expect(res.choices[0]!.text).toBe(await single(prompt, 24));
      expect(res.usage?.prompt_tokens).toBe(tokens);
    });
  }

  it("prompts sharing a long prefix dedup it: the second moves fewer bytes and still matches", async () => {
    const prefix = sampleText(300, 9);
    const a = `${prefix} first question about the pool`;
    const b = `${prefix} second question about the lease`;
    const before = await decode.stats();
    const ra = await client.completions.create({ model: "kvbridge", prompt: a, max_tokens: 16 });
    const mid = await decode.stats();
    const rb = await client.completions.create({ model: "kvbridge", prompt: b, max_tokens: 16 });
    const after = await decode.stats();
    expect(ra.choices[0]!.text).toBe(await single(a, 16));
    expect(rb.choices[0]!.text).toBe(await single(b, 16));
    const bytesA = mid.bytesReceived - before.bytesReceived;
    const bytesB = after.bytesReceived - mid.bytesReceived;
    expect(bytesB).toBeGreaterThan(0);
    expect(bytesB).toBeLessThan(bytesA / 2);
    expect(after.dedupHits).toBeGreaterThan(mid.dedupHits);
  });
});

describe("the official openai client, unchanged", () => {
  it("completions, streamed", async () => {
    const stream = await client.completions.create({ model: "kvbridge", prompt: "The router", max_tokens: 12, stream: true });
    let text = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(await single("The router", 12));
    expect(finish).toBe("length");
  });

  it("chat, not streamed and streamed", async () => {
    const messages = [
      { role: "system" as const, content: "You are terse." },
      { role: "user" as const, content: "Name a KV cache." },
    ];
    const expected = await single(chatPrompt(messages), 10);
    const res = await client.chat.completions.create({ model: "kvbridge", messages, max_tokens: 10 });
    expect(res.choices[0]!.message.content).toBe(expected);
    expect(res.choices[0]!.message.role).toBe("assistant");
    const stream = await client.chat.completions.create({ model: "kvbridge", messages, max_tokens: 10, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe(expected);
  });

  it("lists the model and rejects bad requests with OpenAI-shaped errors", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([reference.modelId]);
    await expect(client.completions.create({ model: "kvbridge", prompt: "x", max_tokens: 0 })).rejects.toMatchObject({ status: 400 });
    const raw = await fetch(`${cluster.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { error: { message: string } }).error.message).toMatch(/JSON/);
    // A body sent as text/plain is not read as JSON.
    const plain = await fetch(`${cluster.url}/v1/completions`, { method: "POST", body: "{not json" });
    expect(plain.status).toBe(415);
  });
});

describe("cancel isolation", () => {
  it("a client cancelling mid-stream stops only its own request; the other's output is unchanged and the pool returns to baseline", async () => {
    const victim = sampleText(200, 21);
    const survivor = sampleText(180, 22);
    const expected = await single(survivor, 40);
    const ac = new AbortController();
    const victimStream = await client.completions.create({ model: "kvbridge", prompt: victim, max_tokens: 200, stream: true }, { signal: ac.signal });
    const survivorDone = client.completions.create({ model: "kvbridge", prompt: survivor, max_tokens: 40 });
    let got = 0;
    // The openai client ends the iteration (or throws an abort error) once its signal fires.
    await (async () => {
      for await (const chunk of victimStream) {
        if ((chunk.choices[0]?.text ?? "").length > 0 && ++got === 3) {
          ac.abort();
          break;
        }
      }
    })().catch((e: unknown) => {
      if (!ac.signal.aborted) throw e;
    });
    expect(got).toBe(3);
    const survived = await survivorDone.catch((e: unknown) => {
      throw new Error(`survivor failed: ${String(e)}\ndecode exit ${cluster.decode.child.exitCode}/${cluster.decode.child.signalCode}:\n${cluster.decode.lines.slice(-15).join("\n")}`);
    });
    expect(survived.choices[0]!.text).toBe(expected);
    const s = await decode.waitForStats(atBaseline, 20_000);
    expect(atBaseline(s)).toBe(true);
  });
});
