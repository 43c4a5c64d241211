// KV made in one process (prefill, 2 threads) loads in another (decode, 1 thread) and gives the
// single-process reference output: chunk keys and bytes do not depend on the process.
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaEngine } from "../../src/engine/llama-engine.js";
import { openTestEngine, promptOf } from "../support/model-fixture.js";
import { spawnScript } from "../support/processes.js";

describe("engine across processes", () => {
  let engine: LlamaEngine;
  let dir: string;
  beforeAll(async () => {
    engine = await openTestEngine({ threads: 1, maxSequences: 1 });
    dir = await mkdtemp(path.join(os.tmpdir(), "kvb-engine-xp-"));
  });
  afterAll(async () => {
    await engine?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("chunks prefilled by another process with other threads load here and match generateLocal token for token", async () => {
    const tokens = promptOf(engine, 600, 77);
    await writeFile(path.join(dir, "tokens.json"), JSON.stringify(tokens));
    const child = spawnScript("test/support/model-fixture.ts", ["prefill", path.join(dir, "tokens.json"), path.join(dir, "chunks"), "2"]);
    const [code] = (await once(child.child, "exit")) as [number | null];
    expect(code, child.lines.join("\n")).toBe(0);
    const report = JSON.parse(child.lines.find((l) => l.startsWith("{"))!) as { chunks: number; fingerprint: string; keys: string[] };
    expect(report.fingerprint).toBe(engine.fingerprint);
    expect(report.keys).toEqual(engine.chunkKeys(tokens));
    const prefix = await Promise.all(Array.from({ length: report.chunks }, (_, i) => readFile(path.join(dir, "chunks", `${i}.kvc`))));
    const reference = await engine.generateLocal({ tokens, maxTokens: 40 });
    const out = await engine.generate({ tokens, prefix, maxTokens: 40 });
    expect(out.tokens).toEqual(reference.tokens);
    expect(out.recomputedTokens).toBe(0);
  });
});
