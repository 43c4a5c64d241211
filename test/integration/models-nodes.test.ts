// Several models on real nodes over loopback gRPC, with the real engine on three models written by the
// project's model writer with different seeds (same shape, other weights: other fingerprints). A
// prefill node serving A and B plans each under its own fingerprint; a decode node serving A and B
// generates each token for token as that model's single-process reference (generateLocal); 20
// concurrent LoadModel calls of an unloaded model with the same options load it once (by
// kvbridge_model_loads_total), other options reload it, the same again does nothing; an unknown model
// is NOT_FOUND model_not_found; a decode node refuses KV of a model it does not serve, and Generate
// refuses KV sent under another model's fingerprint (INCOMPATIBLE fingerprint_mismatch); at
// --models-max 2 a third model evicts the idle model, not the busy one.
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pino from "pino";
import type { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngine } from "../../src/engine/llama-engine.js";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { buildModelCatalog } from "../../src/models/model-catalog.js";
import { startDecodeRole, type DecodeRole } from "../../src/roles/decode-role.js";
import { parseHostPort } from "../../src/roles/host-port.js";
import { startPrefillRole, type PrefillRole } from "../../src/roles/prefill-role.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { DecodeClient } from "../../src/wire/decode-client.js";
import { fromServiceError } from "../../src/wire/error-status.js";
import type { GenerateEvent__Output } from "../../src/wire/generated/kvbridge/v1/GenerateEvent.js";
import type { GenerateRequest } from "../../src/wire/generated/kvbridge/v1/GenerateRequest.js";
import { ModelsClient } from "../../src/wire/models-client.js";
import { PrefillClient } from "../../src/wire/prefill-client.js";
import { extraModelPath } from "../support/model-fixture.js";

const T = { timeoutMs: 120_000 };
const PROMPT = "Once upon a time the kv cache moved between two nodes and";
const MAX_TOKENS = 12;
const silent = pino({ level: "silent" });
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

let paths: { A: string; B: string; C: string };
let tcp: TcpSenderTransport;
let prefill: PrefillRole;
let decode: DecodeRole;
let decodeOnlyA: DecodeRole;
const clients: Array<{ close(): void }> = [];

function catalog(ids: Array<keyof typeof paths>) {
  return buildModelCatalog({ models: ids.map((id) => `${id}=${paths[id]}`) });
}

function startDecode(ids: Array<keyof typeof paths>, maxResident = 4): Promise<DecodeRole> {
  return startDecodeRole({
    listen: parseHostPort("127.0.0.1:0", "listen"),
    dataListen: parseHostPort("127.0.0.1:0", "data"),
    poolSlots: 64,
    slotBytes: 1 << 20,
    leaseMs: 60_000,
    quarantineMs: 200,
    transport: "tcp",
    lockMemory: false,
    logger: silent,
    models: { catalog: catalog(ids), maxResident, defaults: { maxSequences: 1 } },
  });
}

function client<C extends { close(): void }>(c: C): C {
  clients.push(c);
  return c;
}

async function refusal(p: Promise<unknown>): Promise<KvbridgeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof KvbridgeError)) throw new Error(`expected a KvbridgeError, got ${String(err)}`);
  return err;
}

function generate(target: string, req: GenerateRequest): Promise<GenerateEvent__Output[]> {
  const dc = client(new DecodeClient(target));
  return new Promise((resolve, reject) => {
    const events: GenerateEvent__Output[] = [];
    const stream = dc.generate(req, 120_000);
    stream.on("data", (e: GenerateEvent__Output) => events.push(e));
    stream.on("error", (err: unknown) => reject(fromServiceError(err, `Generate on ${target}`)));
    stream.on("end", () => resolve(events));
  });
}

async function loadsOf(registry: Registry, model: string, role: string): Promise<number> {
  const metric = registry.getSingleMetric("kvbridge_model_loads_total");
  const values = (await metric!.get()).values;
  return values.find((v) => v.labels.model === model && v.labels.outcome === "loaded" && v.labels.role === role)?.value ?? 0;
}

beforeAll(async () => {
  paths = {
    A: await extraModelPath("models-seed11", { seed: 11 }),
    B: await extraModelPath("models-seed12", { seed: 12 }),
    C: await extraModelPath("models-seed13", { seed: 13 }),
  };
  tcp = new TcpSenderTransport({ connections: 1 });
  [prefill, decode, decodeOnlyA] = await Promise.all([
    startPrefillRole({
      listen: parseHostPort("127.0.0.1:0", "listen"),
      models: { catalog: catalog(["A", "B", "C"]), maxResident: 2, defaults: { maxSequences: 1 } },
      transports: { tcp },
      transport: "tcp",
      logger: silent,
    }),
    startDecode(["A", "B", "C"]),
    startDecode(["A"]),
  ]);
  await Promise.all([decode.engineReady, decodeOnlyA.engineReady]);
}, 300_000);

afterAll(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all([prefill?.close(), decode?.close(), decodeOnlyA?.close()]);
  await tcp?.close();
});

describe("models on prefill and decode nodes", () => {
  it("a prefill node serving A and B plans each under its own fingerprint; no model named is the default; an unknown one is NOT_FOUND model_not_found", async () => {
    const pc = client(new PrefillClient(prefill.grpcAddress));
    const a = await pc.plan({ prompt: PROMPT, model: "A" }, T);
    const b = await pc.plan({ prompt: PROMPT, model: "B" }, T);
    const dflt = await pc.plan({ prompt: PROMPT }, T);
    expect(a.modelId).toBe("A");
    expect(b.modelId).toBe("B");
    expect(a.fingerprint).not.toBe(b.fingerprint);
    expect(a.keys).not.toEqual(b.keys);
    expect(dflt).toMatchObject({ modelId: "A", fingerprint: a.fingerprint, keys: a.keys });
    // Each fingerprint is its own model's, as ListModels reports it.
    const listed = await client(new ModelsClient(prefill.grpcAddress)).listModels(T);
    expect(listed.defaultModel).toBe("A");
    expect(listed.models.find((m) => m.id === "A")).toMatchObject({ state: "loaded", fingerprint: a.fingerprint, isDefault: true });
    expect(listed.models.find((m) => m.id === "B")).toMatchObject({ state: "loaded", fingerprint: b.fingerprint, isDefault: false });
    expect(listed.models.find((m) => m.id === "C")).toMatchObject({ state: "unloaded", fingerprint: "", options: null });

    const unknown = await refusal(pc.plan({ prompt: PROMPT, model: "nope" }, T));
    expect(unknown.code).toBe("NOT_FOUND");
    expect(unknown.details).toMatchObject({ reason: "model_not_found", param: "model" });
    const tok = await pc.tokenize({ prompt: PROMPT, model: "B", addSpecial: false }, T);
    expect(tok.modelId).toBe("B");
    expect((await pc.detokenize({ model: "B", tokens: tok.tokens }, T)).text.trim()).toBe(PROMPT);
    // A token outside the vocabulary is refused (llama.cpp would abort the process on it).
    const outside = await refusal(pc.detokenize({ model: "B", tokens: [5, 99_999_999] }, T));
    expect(outside.code).toBe("INVALID_ARGUMENT");
    expect(outside.details.param).toBe("tokens");
  });

  it("a decode node serving A and B generates each token for token as that model's single-process reference", async () => {
    const pc = client(new PrefillClient(prefill.grpcAddress));
    for (const model of ["A", "B"] as const) {
      const ref = await LlamaEngine.open({ modelPath: paths[model], maxSequences: 1 });
      let want;
      try {
        want = await ref.generateLocal({ tokens: await ref.tokenizePrompt(PROMPT), maxTokens: MAX_TOKENS });
      } finally {
        await ref.close();
      }
      const requestId = `gen-${model}`;
      // A decode node accepts KV of its loaded models only: the caller makes sure the model is loaded there.
      expect((await client(new ModelsClient(decode.grpcAddress)).loadModel({ model }, T)).model!.state).toBe("loaded");
      const pushed = await pc.prefill({ requestId, prompt: PROMPT, decodeTarget: decode.grpcAddress, model }, T);
      expect(pushed.modelId).toBe(model);
      const events = await generate(decode.grpcAddress, { requestId, prompt: PROMPT, maxTokens: MAX_TOKENS, model });
      const last = events.at(-1)!;
      expect(last).toMatchObject({ done: true, modelId: model, fingerprint: pushed.fingerprint, recomputedTokens: 0 });
      expect(last.chunksLoaded).toBe(pushed.chunks);
      expect(events.filter((e) => !e.done).map((e) => e.token)).toEqual(want.tokens);
      expect(events.map((e) => e.text).join("")).toBe(want.text);
    }
  }, 300_000);

  it("refuses KV of another model: a decode node not serving it (Alloc), and Generate for another model than the KV's", async () => {
    const pc = client(new PrefillClient(prefill.grpcAddress));
    const notServed = await refusal(pc.prefill({ requestId: "b-to-a-only", prompt: PROMPT, decodeTarget: decodeOnlyA.grpcAddress, model: "B" }, T));
    expect(notServed.code).toBe("INCOMPATIBLE");
    expect(notServed.details.reason).toBe("fingerprint_mismatch");
    expect(decodeOnlyA.receiver.stats().entries).toBe(0);

    // KV of A for this request, then a Generate that asks for B (loaded there too): refused, the KV released unused.
    await client(new ModelsClient(decode.grpcAddress)).loadModel({ model: "B" }, T);
    await pc.prefill({ requestId: "a-then-b", prompt: PROMPT, decodeTarget: decode.grpcAddress, model: "A" }, T);
    expect(decode.receiver.hasRequest("a-then-b")).toBe(true);
    const mismatch = await refusal(generate(decode.grpcAddress, { requestId: "a-then-b", prompt: PROMPT, maxTokens: MAX_TOKENS, model: "B" }));
    expect(mismatch.code).toBe("INCOMPATIBLE");
    expect(mismatch.details.reason).toBe("fingerprint_mismatch");
    expect(decode.receiver.hasRequest("a-then-b")).toBe(false);

    const unknown = await refusal(generate(decode.grpcAddress, { requestId: "unknown-model", prompt: PROMPT, maxTokens: 4, model: "nope" }));
    expect(unknown.code).toBe("NOT_FOUND");
    expect(unknown.details.reason).toBe("model_not_found");
  }, 300_000);

  it("20 concurrent LoadModel calls of an unloaded model with the same options load it once; other options reload it; the same again is a no-op", async () => {
    const mc = client(new ModelsClient(decode.grpcAddress));
    const registry = decode.metrics.registry;
    expect(await loadsOf(registry, "C", "decode")).toBe(0);
    const opts = { options: { maxSequences: 1 } };
    const answers = await Promise.all(Array.from({ length: 20 }, () => mc.loadModel({ model: "C", ...opts }, T)));
    for (const a of answers) expect(a.model).toMatchObject({ id: "C", state: "loaded", options: { maxSequences: 1 } });
    expect(new Set(answers.map((a) => a.model!.fingerprint)).size).toBe(1);
    expect(await loadsOf(registry, "C", "decode")).toBe(1);

    const reloaded = await mc.loadModel({ model: "C", options: { maxSequences: 2 } }, T);
    expect(reloaded.model).toMatchObject({ state: "loaded", options: { maxSequences: 2 } });
    expect(await loadsOf(registry, "C", "decode")).toBe(2);
    const again = await mc.loadModel({ model: "C", options: { maxSequences: 2 } }, T);
    expect(again.model).toMatchObject({ state: "loaded", options: { maxSequences: 2 } });
    const noOptions = await mc.loadModel({ model: "C" }, T);
    expect(noOptions.model!.state).toBe("loaded");
    expect(await loadsOf(registry, "C", "decode")).toBe(2);

    const unknown = await refusal(mc.loadModel({ model: "nope" }, T));
    expect(unknown.code).toBe("NOT_FOUND");
    expect(unknown.details).toMatchObject({ reason: "model_not_found", param: "model" });
    const text = await registry.metrics();
    expect(text).toMatch(/kvbridge_model_state\{model="C",state="loaded",role="decode"\} 1/);

    const unloaded = await mc.unloadModel({ model: "C" }, T);
    expect(unloaded.model).toMatchObject({ state: "unloaded", fingerprint: "" });
    expect((await mc.unloadModel({ model: "C" }, T)).model!.state).toBe("unloaded");
  }, 300_000);

  it("--models-max 2: a third model evicts the idle model, not the busy one", async () => {
    const mc = client(new ModelsClient(prefill.grpcAddress));
    const before = await mc.listModels(T);
    expect(before.modelsMax).toBe(2);
    expect(before.models.filter((m) => m.state === "loaded").map((m) => m.id).sort()).toEqual(["A", "B"]);
    // A busy: a request in flight on it (held for the test). B idle, and used more recently than A.
    const busy = await prefill.models.acquire("A");
    try {
      await client(new PrefillClient(prefill.grpcAddress)).plan({ prompt: PROMPT, model: "B" }, T);
      const c = await mc.loadModel({ model: "C" }, T);
      expect(c.model!.state).toBe("loaded");
      const after = await mc.listModels(T);
      const state = Object.fromEntries(after.models.map((m) => [m.id, m.state]));
      expect(state).toEqual({ A: "loaded", B: "unloaded", C: "loaded" });
      expect(after.models.find((m) => m.id === "A")!.requestsInFlight).toBe(1);
    } finally {
      busy.release();
    }
  }, 300_000);

  it("kvctl models lists each node's models with state, options and requests in flight (-o json and the table)", async () => {
    const run = (args: string[]) => promisify(execFile)(process.execPath, ["--import", "tsx", path.join(repoRoot, "src/cli/kvctl.ts"), "models", ...args], { cwd: repoRoot });
    const busy = await prefill.models.acquire("A");
    try {
      const { stdout } = await run([prefill.grpcAddress, decodeOnlyA.grpcAddress, "-o", "json"]);
      const out = JSON.parse(stdout) as { nodes: Array<{ ok: boolean; role: string; default_model: string; models: Array<{ model: string; state: string; requests_in_flight: number; options: unknown }> }> };
      expect(out.nodes.map((n) => [n.ok, n.role, n.default_model])).toEqual([
        [true, "prefill", "A"],
        [true, "decode", "A"],
      ]);
      expect(out.nodes[0]!.models.find((m) => m.model === "A")).toMatchObject({ state: "loaded", requests_in_flight: 1, options: { max_sequences: 1 } });
      expect(out.nodes[1]!.models.map((m) => m.model)).toEqual(["A"]);
      const table = (await run([prefill.grpcAddress])).stdout;
      expect(table).toMatch(/^MODEL\s+STATE\s+OPTIONS\s+IN FLIGHT\s+LAST USED/m);
      expect(table).toMatch(/A \(default\)\s+LOADED\s+.*seqs=1.*\s1\s/);
    } finally {
      busy.release();
    }
  }, 120_000);
});
