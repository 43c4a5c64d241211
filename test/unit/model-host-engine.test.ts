// The model host with the real engine as its loader (LlamaEngine.open on models written by the
// project's model writer with different seeds, as `kvbridge make-model --seed` writes them): 20
// concurrent declarative loads of one model open it once, a same-options load answers without a
// load, and at --models-max 2 a third model evicts the idle one while the busy one keeps serving.
import { afterEach, describe, expect, it } from "vitest";
import { LlamaEngine } from "../../src/engine/llama-engine.js";
import { buildModelCatalog } from "../../src/models/model-catalog.js";
import { ModelHost } from "../../src/models/model-host.js";
import { extraModelPath, testModelPath } from "../support/model-fixture.js";

const hosts: Array<ModelHost<LlamaEngine>> = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
});

async function engineHost(maxResident: number) {
  const paths = [await testModelPath(), await extraModelPath("models-seed3", { seed: 3 }), await extraModelPath("models-seed4", { seed: 4 })];
  const opened: string[] = [];
  const closed: string[] = [];
  const host = new ModelHost<LlamaEngine>({
    catalog: buildModelCatalog({ models: [`a=${paths[0]}`, `b=${paths[1]}`, `c=${paths[2]}`] }),
    loader: async (spec, options) => {
      opened.push(spec.id);
      const engine = await LlamaEngine.open({ modelPath: spec.path, threads: options.threads, maxSequences: options.maxSequences ?? 1, contextSize: options.contextSize ?? 512, chunkTokens: options.chunkTokens });
      const close = engine.close.bind(engine);
      engine.close = async () => {
        closed.push(spec.id);
        await close();
      };
      return engine;
    },
    maxResident,
    loadWaitMs: 0,
  });
  hosts.push(host);
  return { host, opened, closed };
}

/** The first greedy tokens of a fixed prompt: what tells one model's weights from another's. */
async function firstTokens(engine: LlamaEngine): Promise<number[]> {
  const r = await engine.generateLocal({ tokens: engine.tokenize("kv cache prefill decode"), maxTokens: 6 });
  return r.tokens;
}

describe("model host with the real engine", () => {
  it("opens one engine for 20 concurrent loads of an unloaded model, and answers a same-options load without another", async () => {
    const { host, opened } = await engineHost(2);
    const calls = Array.from({ length: 20 }, () => host.ensureLoaded("a", { maxSequences: 1 }));
    const snaps = await Promise.all(calls);
    expect(opened).toEqual(["a"]);
    for (const s of snaps) expect(s).toMatchObject({ id: "a", state: "loaded", options: { maxSequences: 1 } });
    const lease = await host.acquire("a");
    expect(lease.model.modelId).toBeTruthy();
    lease.release();
    await expect(host.ensureLoaded("a", { maxSequences: 1 })).resolves.toMatchObject({ state: "loaded", loads: 1 });
    expect(opened).toEqual(["a"]);
  });

  it("evicts the least recently used idle model for a third at models-max 2, never the busy one, which keeps serving", async () => {
    const { host, opened, closed } = await engineHost(2);
    const la = await host.acquire("a");
    const tokensA = await firstTokens(la.model);
    la.release();
    const lb = await host.acquire("b"); // held: b is busy through the eviction
    const tokensB = await firstTokens(lb.model);
    expect(tokensB).not.toEqual(tokensA); // another model's weights
    const lc = await host.acquire("c");
    expect(closed).toEqual(["a"]);
    expect(host.snapshots().map((s) => [s.id, s.state, s.requestsInFlight])).toEqual([
      ["a", "unloaded", 0],
      ["b", "loaded", 1],
      ["c", "loaded", 1],
    ]);
    expect(await firstTokens(lb.model)).toEqual(tokensB);
    // Both resident models busy: loading a again is refused at once (load wait 0), naming them.
    const err = await host.acquire("a").then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "RESOURCE_EXHAUSTED", details: { reason: "models_busy" } });
    expect((err as Error).message).toMatch(/b \(1 in flight\), c \(1 in flight\)/);
    lb.release();
    lc.release();
    expect(opened).toEqual(["a", "b", "c"]);
  });
});
