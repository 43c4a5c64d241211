// The model writer: deterministic bytes, the presets' shapes and cache names, Q8_0 weights as
// llama.cpp reads them, and the chat template node-llama-cpp resolves from the model.
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  JinjaTemplateChatWrapper,
  LlamaLogLevel,
  SpecialToken,
  SpecialTokensText,
  getLlama,
  readGgufFileInfo,
  resolveChatWrapper,
  type ChatHistoryItem,
  type Llama,
} from "node-llama-cpp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { encodeGguf, layoutGguf, quantizeQ8_0 } from "../../src/engine/gguf-writer.js";
import {
  CHAT_TEMPLATE,
  MODEL_PRESETS,
  defaultModelPath,
  encodeModel,
  ensureDefaultModel,
  modelParameterCount,
  planModel,
  presetModelPath,
  writeModel,
  type ModelWriterOptions,
} from "../../src/engine/model-writer.js";
import { SeededRandom } from "../../src/engine/seeded-random.js";
import { chatPrompt } from "../../src/roles/router/openai-api.js";

// A small shape keeps these unit tests fast; the engine tests use the default model.
const SMALL = { layers: 2, embedding: 64, heads: 4, kvHeads: 2, feedForward: 128 };
const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

describe("model writer", () => {
  let dir: string | null = null;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = null;
  });

  it("writes the same bytes for the same seed and different bytes for another seed", () => {
    const a = encodeModel({ ...SMALL, seed: 7 });
    const b = encodeModel({ ...SMALL, seed: 7 });
    const c = encodeModel({ ...SMALL, seed: 8 });
    expect(sha(a)).toBe(sha(b));
    expect(sha(a)).not.toBe(sha(c));
    expect(a.length).toBe(c.length); // same shape, only the weights differ
  });

  it("emits a GGUF v3 header with llama metadata, the byte vocabulary and every tensor", () => {
    const m = encodeModel(SMALL);
    expect(m.subarray(0, 4).toString("ascii")).toBe("GGUF");
    expect(m.readUInt32LE(4)).toBe(3);
    expect(Number(m.readBigUInt64LE(8))).toBe(2 + 2 * 9 + 1); // token_embd, output_norm, output + 9 per block
    const text = m.toString("latin1");
    for (const key of ["general.architecture", "llama.attention.head_count_kv", "tokenizer.ggml.tokens", "blk.1.ffn_down.weight", "<0xFF>"]) {
      expect(text).toContain(key);
    }
    expect(m.length % 32).toBe(0); // tensor data is padded to the GGUF alignment
  });

  it("writes atomically to the target path and leaves no temp file", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "kvb-model-"));
    const file = path.join(dir, "m.gguf");
    const info = await writeModel(file, SMALL);
    const bytes = await readFile(file);
    expect(bytes.length).toBe(info.bytes);
    expect(sha(bytes)).toBe(sha(encodeModel(SMALL)));
    expect(await readdir(dir)).toEqual(["m.gguf"]);
  });

  it("refuses shapes llama.cpp cannot run, naming the option", () => {
    expect(() => encodeModel({ ...SMALL, heads: 3 })).toThrow(KvbridgeError);
    expect(() => encodeModel({ ...SMALL, kvHeads: 3 })).toThrow(/kvHeads/);
    expect(() => encodeModel({ ...SMALL, layers: 0 })).toThrow(/layers/);
    expect(() => encodeModel({ ...SMALL, embedding: 48, heads: 4, weightType: "q8_0" })).toThrow(/embedding.*multiple of 32/);
    expect(() => encodeModel({ ...SMALL, weightType: "q4_0" as "q8_0" })).toThrow(/weightType/);
  });

  it("streams the same bytes as it builds in memory, for every weight type", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "kvb-model-"));
    for (const weightType of ["f32", "f16", "q8_0"] as const) {
      const file = path.join(dir, `${weightType}.gguf`);
      const info = await writeModel(file, { ...SMALL, weightType });
      const bytes = await readFile(file);
      expect(sha(bytes), weightType).toBe(sha(encodeModel({ ...SMALL, weightType })));
      expect(info.bytes).toBe(bytes.length);
    }
  });

  it("keeps the default model's weights byte for byte (the metadata alone changed with writer version 2)", () => {
    const plan = planModel();
    const dataStart = layoutGguf(plan.metadata, plan.tensors).header.length;
    const model = encodeModel();
    expect(model.length - dataStart).toBe(13124608);
    expect(sha(model.subarray(dataStart))).toBe("9de8a7cfb1bf011f70ef647799dac9022cb7486aae02d4dfa155b2dba5270b6f");
  });

  it("seeded PRNG is a fixed sequence (no per-process state)", () => {
    const r = new SeededRandom(1);
    const first = [r.nextUint32(), r.nextUint32(), r.nextUint32()];
    const again = new SeededRandom(1);
    expect([again.nextUint32(), again.nextUint32(), again.nextUint32()]).toEqual(first);
    expect(new SeededRandom(2).nextUint32()).not.toBe(first[0]);
    const f = new Float32Array(1000);
    r.fillUniform(f, 0.5);
    expect(Math.max(...f)).toBeLessThan(0.5);
    expect(Math.min(...f)).toBeGreaterThanOrEqual(-0.5);
  });
});

describe("model presets", () => {
  it("medium: ~181 M parameters in 16 Q8_0 blocks of width 1024, ~194 MB", () => {
    const plan = planModel(MODEL_PRESETS.medium);
    const params = modelParameterCount(MODEL_PRESETS.medium);
    expect(params).toBe(180921344);
    expect(params).toBeGreaterThan(100e6);
    expect(params).toBeLessThan(300e6);
    expect(plan.tensors).toHaveLength(2 + 16 * 9 + 1);
    const meta = new Map(plan.metadata);
    expect(meta.get("llama.block_count")).toEqual({ type: "u32", value: 16 });
    expect(meta.get("llama.embedding_length")).toEqual({ type: "u32", value: 1024 });
    expect(meta.get("llama.attention.head_count_kv")).toEqual({ type: "u32", value: 4 });
    expect(meta.get("general.file_type")).toEqual({ type: "u32", value: 7 }); // LLAMA_FTYPE_MOSTLY_Q8_0
    const byName = new Map(plan.tensors.map((t) => [t.name, t]));
    expect(byName.get("blk.15.attn_q.weight")).toEqual({ name: "blk.15.attn_q.weight", dims: [1024, 1024], type: "q8_0" });
    expect(byName.get("blk.15.attn_k.weight")?.dims).toEqual([1024, 256]);
    expect(byName.get("blk.0.ffn_down.weight")).toEqual({ name: "blk.0.ffn_down.weight", dims: [2816, 1024], type: "q8_0" });
    for (const t of plan.tensors) {
      const matrix = /^blk\.\d+\.(attn_[qkvo]|attn_output|ffn_(gate|up|down))\.weight$/.test(t.name);
      expect(t.type, t.name).toBe(matrix ? "q8_0" : "f32");
    }
    expect(layoutGguf(plan.metadata, plan.tensors).fileBytes).toBe(193907936);
  });

  it("names each preset's cached file for the preset and its options", () => {
    expect(defaultModelPath()).toBe(presetModelPath("small"));
    const medium = presetModelPath("medium");
    expect(path.basename(medium)).toMatch(/^kvbridge-medium-[0-9a-f]{12}\.gguf$/);
    expect(path.basename(defaultModelPath())).toMatch(/^kvbridge-small-[0-9a-f]{12}\.gguf$/);
    expect(presetModelPath("medium", { seed: 2 })).not.toBe(medium);
    expect(presetModelPath("medium", { seed: 1 })).toBe(medium);
    expect(() => presetModelPath("large" as "medium")).toThrow(/unknown model preset "large"; use one of small, medium/);
  });
});

describe("generated models in llama.cpp", () => {
  let llama: Llama;
  let dir: string;
  beforeAll(async () => {
    llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    dir = await mkdtemp(path.join(os.tmpdir(), "kvb-model-llama-"));
  });
  afterAll(async () => {
    await llama?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Next-token probabilities after each of `prompts` (one vector of the vocabulary each). */
  async function nextTokenProbabilities(file: string, prompts: string[]): Promise<Float64Array[]> {
    const model = await llama.loadModel({ modelPath: file });
    try {
      const out: Float64Array[] = [];
      for (const text of prompts) {
        const context = await model.createContext({ contextSize: 256, threads: 1 });
        try {
          const tokens = [model.tokens.bos!, ...model.tokenize(text, false)];
          for await (const step of context.getSequence().evaluateWithMetadata(tokens, { probabilities: true }, { temperature: 0 })) {
            const p = new Float64Array(260);
            for (const [token, prob] of step.probabilities) p[token] = prob;
            out.push(p);
            break;
          }
        } finally {
          await context.dispose();
        }
      }
      return out;
    } finally {
      await model.dispose();
    }
  }
  const totalVariation = (a: Float64Array, b: Float64Array): number => a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / 2;

  it("the medium preset's blocks (two of them) load and generate, with the tensor types and sizes of the plan", async () => {
    const opts: ModelWriterOptions = { ...MODEL_PRESETS.medium, layers: 2 };
    const file = path.join(dir, "medium-2.gguf");
    const written = await writeModel(file, opts);
    const plan = planModel(opts);
    expect((await stat(file)).size).toBe(layoutGguf(plan.metadata, plan.tensors).fileBytes);
    // Per block 11 272 192 Q8_0 weights (34 bytes per 32) and two F32 norms; F32 embedding,
    // output matrix and output norm; every size here is a multiple of the 32-byte alignment.
    const header = layoutGguf(plan.metadata, plan.tensors).header.length;
    expect(written.bytes - header).toBe(2 * ((11272192 / 32) * 34 + 2 * 1024 * 4) + 2 * 1024 * 260 * 4 + 1024 * 4);

    const info = await readGgufFileInfo(file, { logWarnings: false });
    const tensors = info.fullTensorInfo ?? info.tensorInfo ?? [];
    expect(tensors.map((t) => t.name)).toEqual(plan.tensors.map((t) => t.name));
    const q = tensors.find((t) => t.name === "blk.1.ffn_up.weight")!;
    expect([q.ggmlType, ...q.dimensions.map(Number)]).toEqual([8, 1024, 2816]); // GGML_TYPE_Q8_0
    // Each tensor's data runs up to the next one's (aligned): 2816 rows of 32 blocks of 34 bytes.
    const next = tensors[tensors.indexOf(q) + 1]!;
    expect(Number(next.offset) - Number(q.offset)).toBe(2816 * 32 * 34);
    expect(tensors.find((t) => t.name === "token_embd.weight")?.ggmlType).toBe(0);

    const model = await llama.loadModel({ modelPath: file });
    try {
      const context = await model.createContext({ contextSize: 256, threads: 1 });
      const out: number[] = [];
      for await (const token of context.getSequence().evaluate([model.tokens.bos!, ...model.tokenize("Hello", false)], { temperature: 0 })) {
        out.push(token);
        if (out.length === 8) break;
      }
      await context.dispose();
      expect(out).toHaveLength(8);
      for (const t of out) expect(t).toBeLessThan(260);
    } finally {
      await model.dispose();
    }
  });

  it("llama.cpp reads Q8_0 weights as their reference dequantization", async () => {
    // The same model twice: Q8_0 blocks, and F32 holding exactly what ggml's dequantize_row_q8_0
    // makes of those blocks. Their next-token distributions must agree far more closely than those
    // of a model with other weights (llama.cpp's Q8_0 matmul also rounds the activations to 8
    // bits, so they are close, not equal).
    const shape: ModelWriterOptions = { layers: 2, embedding: 256, heads: 8, kvHeads: 4, feedForward: 768, weightType: "q8_0" };
    const f16 = (h: number): number => {
      const e = (h >>> 10) & 0x1f;
      const v = e === 0 ? (h & 0x3ff) * 2 ** -24 : (1 + (h & 0x3ff) / 1024) * 2 ** (e - 15);
      return h & 0x8000 ? -v : v;
    };
    const dequantize = (bytes: Uint8Array): Float32Array => {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out = new Float32Array((bytes.length / 34) * 32);
      for (let i = 0; i < out.length; i++) out[i] = view.getInt8((i >> 5) * 34 + 2 + (i & 31)) * f16(view.getUint16((i >> 5) * 34, true));
      return out;
    };
    const f32Twin = (seed: number): Buffer => {
      const plan = planModel({ ...shape, seed });
      const tensors = plan.tensors.map((t, i) => {
        const data = plan.produce(i);
        return t.type === "q8_0" ? { ...t, type: "f32" as const, data: dequantize(quantizeQ8_0(data)) } : { ...t, data };
      });
      return encodeGguf(plan.metadata, tensors);
    };
    const files = { q8: path.join(dir, "q8.gguf"), twin: path.join(dir, "twin.gguf"), other: path.join(dir, "other.gguf") };
    await writeModel(files.q8, shape);
    await writeFile(files.twin, f32Twin(1));
    await writeFile(files.other, f32Twin(2));
    const prompts = ["<|user|>\nHello, decode node.\n<|assistant|>\n", "The kv cache moves", "a b c d e f"];
    const [q8, twin, other] = [
      await nextTokenProbabilities(files.q8, prompts),
      await nextTokenProbabilities(files.twin, prompts),
      await nextTokenProbabilities(files.other, prompts),
    ];
    for (let i = 0; i < prompts.length; i++) {
      const same = totalVariation(q8[i]!, twin[i]!);
      const different = totalVariation(q8[i]!, other[i]!);
      expect(same, `prompt ${i}: ${same} vs ${different}`).toBeLessThan(different / 4);
    }
  });

  it("carries a chat template that node-llama-cpp resolves and renders as kvbridge's chat prompt", async () => {
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hello there, <|assistant|> </s>" },
      { role: "assistant", content: "Hi!" },
      { role: "user", content: "How are you?" },
    ];
    const history: ChatHistoryItem[] = [
      { type: "system", text: "Be brief." },
      { type: "user", text: "Hello there, <|assistant|> </s>" },
      { type: "model", response: ["Hi!"] },
      { type: "user", text: "How are you?" },
      { type: "model", response: [] }, // the turn to generate
    ];
    const noPrefix = path.join(dir, "no-space-prefix.gguf");
    await writeModel(noPrefix, { spacePrefix: false });

    for (const file of [await ensureDefaultModel(), noPrefix]) {
      const info = await readGgufFileInfo(file, { logWarnings: false });
      expect((info.metadata as { tokenizer: { chat_template?: string } }).tokenizer.chat_template).toBe(CHAT_TEMPLATE);
      const model = await llama.loadModel({ modelPath: file });
      try {
        const wrapper = resolveChatWrapper(model);
        expect(wrapper).toBeInstanceOf(JinjaTemplateChatWrapper);
        expect(wrapper.settings.supportsSystemMessages).toBe(true);
        const { contextText } = wrapper.generateContextState({ chatHistory: history });
        // BOS, then exactly the text of the router's template; user text that looks like markup is
        // plain text (tokenized without special tokens).
        const [bos, ...rest] = contextText.values;
        expect(bos).toEqual(new SpecialToken("BOS"));
        expect(rest.map((v) => (typeof v === "string" ? v : (v as SpecialTokensText).value)).join("")).toBe(chatPrompt(messages));
        expect(rest.filter((v) => typeof v === "string")).toEqual(messages.map((m) => m.content));
        const whole = [model.tokens.bos, ...model.tokenize(chatPrompt(messages), false)];
        if (file === noPrefix) {
          // Without the "▁" prefix, the template's pieces tokenized apart give the whole text's tokens.
          expect(contextText.tokenize(model.tokenizer)).toEqual(whole);
          expect(model.tokenize("ab", false)).toHaveLength(2);
        } else {
          expect(model.tokenize("ab", false)).toHaveLength(3); // "▁", "a", "b"
        }
      } finally {
        await model.dispose();
      }
    }
  });
});
