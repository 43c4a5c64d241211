// Several models behind one router, with real CLI processes on loopback: a model-A pair and a model-B
// pair (the decode node of B also serving C and D, at --models-max 2) behind one router, models
// written by the project's model writer with different seeds. Each request is answered by its own
// model token for token (against the single-process reference, generateLocal) and labelled with its
// id; an unknown model is a 404 model_not_found; /v1/models and /v1/models/{id} through the official
// openai client; a router whose only pair is a model-B prefill node and a model-A decode node never
// answers with a model's text (503 for either model); 20 concurrent /v1/models/load of an unloaded
// model with the same options load it once; a third model over --models-max 2 evicts the idle one.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngine } from "../../src/engine/llama-engine.js";
import { extraModelPath } from "../support/model-fixture.js";
import { spawnKvbridge, type RunningProcess } from "../support/processes.js";

const PROMPT = "Once upon a time the kv cache moved between two nodes and";
const MAX_TOKENS = 10;

let paths: Record<"A" | "B" | "C" | "D", string>;
const procs: RunningProcess[] = [];
let url: string;
let mixedUrl: string;

async function node(role: "prefill" | "decode", models: string[], extra: string[] = []): Promise<string> {
  const args = role === "decode" ? ["decode", "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--pool-slots", "128", "--slot-bytes", "512KiB"] : ["prefill", "--listen", "127.0.0.1:0"];
  const p = spawnKvbridge([...args, ...models.flatMap((m) => ["--model", m]), ...extra]);
  procs.push(p);
  const line = await p.waitForLine(role === "decode" ? /decode node serving/ : /prefill node serving/, 120_000);
  if (role === "decode") await p.waitForLine(/engine loaded/, 120_000);
  return (JSON.parse(line) as { grpc: string }).grpc;
}

async function router(prefill: string[], decode: string[]): Promise<string> {
  const p = spawnKvbridge(["router", "--listen", "127.0.0.1:0", "--prefill", prefill.join(","), "--decode", decode.join(",")]);
  procs.push(p);
  return (JSON.parse(await p.waitForLine(/router serving/, 60_000)) as { url: string }).url;
}

async function post(base: string, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  paths = {
    A: await extraModelPath("models-seed11", { seed: 11 }),
    B: await extraModelPath("models-seed12", { seed: 12 }),
    C: await extraModelPath("models-seed13", { seed: 13 }),
    D: await extraModelPath("models-seed14", { seed: 14 }),
  };
  const [pA, dA, pB, dB] = await Promise.all([
    node("prefill", [`A=${paths.A}`]),
    node("decode", [`A=${paths.A}`]),
    node("prefill", [`B=${paths.B}`]),
    node("decode", [`B=${paths.B}`, `C=${paths.C}`, `D=${paths.D}`], ["--models-max", "2"]),
  ]);
  [url, mixedUrl] = await Promise.all([router([pA, pB], [dA, dB]), router([pB], [dA])]);
}, 400_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
});

describe("two models behind one router", () => {
  it("each request is answered by its own model, token for token, and labelled with its id", async () => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });
    for (const model of ["A", "B"] as const) {
      const ref = await LlamaEngine.open({ modelPath: paths[model], maxSequences: 1 });
      let want;
      try {
        want = await ref.generateLocal({ tokens: await ref.tokenizePrompt(PROMPT), maxTokens: MAX_TOKENS });
      } finally {
        await ref.close();
      }
      // Several requests each: none may land on the other model's pair.
      const answers = await Promise.all(Array.from({ length: 3 }, () => client.completions.create({ model, prompt: PROMPT, max_tokens: MAX_TOKENS })));
      for (const a of answers) {
        expect(a.model).toBe(model);
        expect(a.choices[0]!.text).toBe(want.text);
      }
    }
    const [a, b] = await Promise.all(["A", "B"].map((model) => client.completions.create({ model, prompt: PROMPT, max_tokens: MAX_TOKENS })));
    expect(a!.choices[0]!.text).not.toBe(b!.choices[0]!.text);
  }, 300_000);

  it("an unknown model is a 404 model_not_found (param model); no model and 'kvbridge' need --default-model when several are served", async () => {
    const unknown = await post(url, "/v1/completions", { model: "nope", prompt: PROMPT, max_tokens: 2 });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: "model_not_found", param: "model", type: "invalid_request_error" });
    const none = await post(url, "/v1/completions", { prompt: PROMPT, max_tokens: 2 });
    expect(none.status).toBe(400);
    expect(none.body.error.param).toBe("model");
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });
    await expect(client.models.retrieve("nope")).rejects.toMatchObject({ status: 404 });
  });

  it("/v1/models lists every model with its state, /v1/models/{id} answers one (openai client)", async () => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids.sort()).toEqual(["A", "B", "C", "D"]);
    const a = (await client.models.retrieve("A")) as unknown as { id: string; owned_by: string; state: string; routable: boolean; nodes: Array<{ role: string; state: string }> };
    expect(a).toMatchObject({ id: "A", object: "model", owned_by: "kvbridge", state: "loaded", routable: true });
    expect(a.nodes.map((n) => n.role).sort()).toEqual(["decode", "prefill"]);
    const c = (await client.models.retrieve("C")) as unknown as { routable: boolean; state: string };
    expect(c).toMatchObject({ routable: false, state: "unloaded" });
  });

  it("a model-B prefill node and a model-A decode node never pair: 503 for either model, never a 200", async () => {
    for (const model of ["A", "B"]) {
      const r = await post(mixedUrl, "/v1/completions", { model, prompt: PROMPT, max_tokens: 4 });
      expect(r.status).toBe(503);
      expect(r.body.error.message).toMatch(/no (prefill|decode) node serves model/);
    }
  });

  it("/tokenize and /detokenize in vLLM's shapes, under the model named", async () => {
    const tok = await post(url, "/tokenize", { model: "B", prompt: PROMPT });
    expect(tok.status).toBe(200);
    expect(tok.body.count).toBe(tok.body.tokens.length);
    expect(tok.body.max_model_len).toBeGreaterThan(0);
    const detok = await post(url, "/detokenize", { model: "B", tokens: tok.body.tokens });
    expect(detok.status).toBe(200);
    expect(detok.body.prompt.trim()).toBe(PROMPT);
    const badTokens = await post(url, "/detokenize", { model: "B", tokens: ["x"] });
    expect(badTokens.status).toBe(400);
    expect(badTokens.body.error.param).toBe("tokens");
  }, 120_000);

  it("20 concurrent /v1/models/load of an unloaded model with the same options: one load; a third model over --models-max 2 evicts the idle one", async () => {
    const bad = await post(url, "/v1/models/load", { model: "C", options: { threads: -1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe("options.threads");
    const loads = await Promise.all(Array.from({ length: 20 }, () => post(url, "/v1/models/load", { model: "C", options: { context_size: 512 } })));
    for (const l of loads) {
      expect(l.status).toBe(200);
      expect(l.body.nodes).toHaveLength(1);
      expect(l.body.nodes[0]).toMatchObject({ role: "decode", state: "loaded" });
    }
    const listed = await (await fetch(`${url}/v1/models/C`)).json();
    expect(listed.nodes[0].loads).toBe(1);
    // The same again: no load.
    expect((await post(url, "/v1/models/load", { model: "C", options: { context_size: 512 } })).body.nodes[0].loads).toBe(1);
    // B (default, idle, least recently used) and C resident; D evicts B.
    const d = await post(url, "/v1/models/load", { model: "D" });
    expect(d.status).toBe(200);
    const states = Object.fromEntries(
      (await Promise.all(["B", "C", "D"].map(async (id) => [id, ((await (await fetch(`${url}/v1/models/${id}`)).json()) as { nodes: Array<{ role: string; state: string }> }).nodes.find((n) => n.role === "decode")!.state]))),
    );
    expect(states).toEqual({ B: "unloaded", C: "loaded", D: "loaded" });
    const unload = await post(url, "/v1/models/unload", { model: "D" });
    expect(unload.status).toBe(200);
    expect(unload.body.nodes[0].state).toBe("unloaded");
    // B is loaded again when asked for, and still answers as B.
    const again = await post(url, "/v1/completions", { model: "B", prompt: PROMPT, max_tokens: 2 });
    expect(again.status).toBe(200);
    expect(again.body.model).toBe("B");
  }, 300_000);
});
