// The official openai client against a router that asks for an API key, in front of real prefill and
// decode processes on the project's model: a wrong or missing key surfaces as AuthenticationError
// (401, invalid_api_key), the right key (from KVBRIDGE_API_KEY or --api-key-file) completes, and a
// 9 MiB prompt surfaces as an APIError with status 413 (the upload is read, never reset, so the
// client neither retries nor reports a connection error).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnKvbridge, type RunningProcess } from "../support/processes.js";

const envKey = "sk-kvbridge-env-0001";
const fileKey = "sk-kvbridge-file-0002";
let processes: RunningProcess[] = [];
let url: string;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "kvbridge-keys-"));
  const keyFile = path.join(dir, "keys");
  writeFileSync(keyFile, `# router keys\n${fileKey}\n`);
  const decode = spawnKvbridge(["decode", "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--pool-slots", "128", "--slot-bytes", "512KiB"]);
  const prefill = spawnKvbridge(["prefill", "--listen", "127.0.0.1:0"]);
  processes = [decode, prefill];
  const [d, p] = await Promise.all([decode.waitForLine(/decode node serving/, 90_000), prefill.waitForLine(/prefill node serving/, 90_000)]);
  await decode.waitForLine(/engine loaded/, 90_000);
  const grpcOf = (line: string): string => (JSON.parse(line) as { grpc: string }).grpc;
  const router = spawnKvbridge(["router", "--listen", "127.0.0.1:0", "--prefill", grpcOf(p), "--decode", grpcOf(d), "--api-key-file", keyFile], { KVBRIDGE_API_KEY: envKey });
  processes.push(router);
  url = (JSON.parse(await router.waitForLine(/router serving/, 60_000)) as { url: string }).url;
  // Serving once a prefill + decode pair is in rotation.
  for (const t0 = Date.now(); (await fetch(`${url}/health`)).status !== 200; await new Promise((r) => setTimeout(r, 100))) {
    if (Date.now() - t0 > 30_000) throw new Error("the router's /health did not turn 200 within 30 s");
  }
}, 240_000);

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const client = (apiKey: string, maxRetries = 2): OpenAI => new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries });

describe("the openai client and the router's API key", () => {
  it("a wrong key is an AuthenticationError (401, invalid_api_key); /health and /version stay open", async () => {
    const err = await client("sk-wrong").completions.create({ model: "kvbridge", prompt: "Hello", max_tokens: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err).toMatchObject({ status: 401, code: "invalid_api_key", type: "invalid_request_error", param: null });
    await expect(client("sk-wrong").models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    expect((await fetch(`${url}/version`)).status).toBe(200);
  });

  it("the key from KVBRIDGE_API_KEY and the one from --api-key-file both complete", async () => {
    for (const key of [envKey, fileKey]) {
      const res = await client(key).completions.create({ model: "kvbridge", prompt: "Once upon a time", max_tokens: 8 });
      expect(res.choices[0]!.text.length, key).toBeGreaterThan(0);
      expect(res.usage?.completion_tokens).toBe(8);
    }
    const chat = await client(envKey).chat.completions.create({ model: "kvbridge", messages: [{ role: "user", content: "Hi" }], max_tokens: 4, stream: true });
    let text = "";
    for await (const chunk of chat) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text.length).toBeGreaterThan(0);
  });

  it("a 9 MiB prompt is an APIError with status 413 (request_too_large), not a connection error", async () => {
    const prompt = "x".repeat(9 * 1024 * 1024);
    const err = await client(envKey).completions.create({ model: "kvbridge", prompt, max_tokens: 4 }).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(OpenAI.APIConnectionError);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).toMatchObject({ status: 413, code: "request_too_large", type: "invalid_request_error" });
    // Without a key the same upload is read and answered 401.
    const noKey = await client("sk-wrong", 0).completions.create({ model: "kvbridge", prompt, max_tokens: 4 }).catch((e: unknown) => e);
    expect(noKey).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
