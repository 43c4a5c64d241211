// Writes kvbridge's own llama-architecture GGUF models with seeded random weights. No weights can be
// downloaded where kvbridge is tested, so the project makes deterministic models of its own: the
// same options give the same bytes, hence the same fingerprint and chunk keys on every node.
// Two presets: "small" (the default model of the tests, F32, 13 MB) and "medium" (~180 M
// parameters in Q8_0, ~190 MB: a decode step reads every weight once, so it is bound by memory
// bandwidth like a real model's). Both carry a chat template of their own.

import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { packageRoot } from "../config/package-root.js";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { encodeGguf, writeGguf, type GgmlType, type GgufTensorInfo, type GgufValue } from "./gguf-writer.js";
import { SeededRandom } from "./seeded-random.js";

export interface ModelWriterOptions {
  /** PRNG seed for every weight. Default 1. */
  seed?: number;
  /** Transformer blocks. Default 4. */
  layers?: number;
  /** Hidden width (n_embd). Default 256. */
  embedding?: number;
  /** Query heads. Default 8 (head size 32). */
  heads?: number;
  /** Key/value heads (grouped-query attention). Default 4. */
  kvHeads?: number;
  /** Feed-forward width. Default 768. */
  feedForward?: number;
  /** Trained context length advertised to llama.cpp. Default 32768. */
  contextLength?: number;
  /**
   * Encoding of the block matrices (attention and feed-forward projections). Default f32. The
   * embedding, output matrix and norms stay F32 (with 260 tokens they are small).
   */
  weightType?: GgmlType;
  /**
   * SentencePiece's "▁" before the text, llama.cpp's default (true). With false
   * (tokenizer.ggml.add_space_prefix = false) tokenizing is a per-byte map: pieces tokenized apart,
   * as node-llama-cpp tokenizes a chat template's output, give the tokens of the whole text.
   */
  spacePrefix?: boolean;
}

export type ResolvedModelOptions = Required<ModelWriterOptions>;

export const DEFAULT_MODEL_OPTIONS: ResolvedModelOptions = Object.freeze({
  seed: 1,
  layers: 4,
  embedding: 256,
  heads: 8,
  kvHeads: 4,
  feedForward: 768,
  contextLength: 32768,
  weightType: "f32",
  spacePrefix: true,
});

/** Named shapes for `kvbridge make-model --preset`. "small" is DEFAULT_MODEL_OPTIONS. */
export const MODEL_PRESETS = Object.freeze({
  small: DEFAULT_MODEL_OPTIONS,
  // 16 blocks of width 1024 (16 query heads of 64, 4 KV heads), FFN 2816: 180.7 M parameters,
  // 11.3 M per block; Q8_0 is 1.0625 bytes per weight, ~192 MB in all.
  medium: Object.freeze<ResolvedModelOptions>({
    seed: 1,
    layers: 16,
    embedding: 1024,
    heads: 16,
    kvHeads: 4,
    feedForward: 2816,
    contextLength: 32768,
    weightType: "q8_0",
    spacePrefix: true,
  }),
});

export type ModelPreset = keyof typeof MODEL_PRESETS;
export const MODEL_PRESET_NAMES = Object.keys(MODEL_PRESETS) as ModelPreset[];

/**
 * Bumped whenever the writer would emit different bytes for the same options.
 * 2: tokenizer.chat_template in the metadata; general.name names the weight type (weights unchanged).
 */
const WRITER_VERSION = 2;

/**
 * The chat format kvbridge has always used (`<|role|>\ncontent\n` per message, then
 * `<|assistant|>\n`), as a Jinja template in the model, so node-llama-cpp resolves a chat wrapper
 * from the model itself. It starts with the BOS token, which a plain prompt gets from tokenize():
 * rendered, a chat is BOS and the same text as before. node-llama-cpp tokenizes the template's
 * pieces apart, so with the space prefix (the default) each role marker after a message gains a
 * "▁"; tokenize the rendered text whole, or write the model with spacePrefix false, for the
 * tokens of the whole text.
 */
export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

// Vocabulary: <unk>, <s>, </s>, the 256 byte tokens, and "▁" (U+2581). llama.cpp's SentencePiece
// tokenizer turns every space into "▁"; without a token for it each space would become three
// byte tokens and decode back as "▁" instead of " ".
const UNK = 0;
const BOS = 1;
const EOS = 2;
const BYTE_BASE = 3;
const SPACE_TOKEN = BYTE_BASE + 256;
const VOCAB_SIZE = SPACE_TOKEN + 1;

const TOKEN_TYPE_NORMAL = 1;
const TOKEN_TYPE_UNKNOWN = 2;
const TOKEN_TYPE_CONTROL = 3;
const TOKEN_TYPE_BYTE = 6;

// Random weights give logits with no preference for readable text. Hidden dimension 0 of every
// token embedding carries a constant, which survives the residual stream and the final RMSNorm;
// the output matrix turns it into a per-token bias that favours printable ASCII and space, and
// disfavours control bytes and </s>. Greedy output then is readable and still varies with the
// context (the other 255 dimensions carry the attention signal).
const BIAS_DIMENSION_VALUE = 16;
const PRINTABLE_BIAS = 0.45;
// Query and key projections 3x the unit-variance scale make attention sharp: each head picks out
// a few earlier positions instead of averaging the whole context, so the next token depends on the
// context and greedy decoding does not fall into a short loop.
const QK_GAIN = 3;

export function resolveModelOptions(opts: ModelWriterOptions = {}): ResolvedModelOptions {
  const o: ResolvedModelOptions = { ...DEFAULT_MODEL_OPTIONS, ...definedOnly(opts) };
  const positiveInts: Array<Exclude<keyof ResolvedModelOptions, "weightType" | "spacePrefix">> = ["layers", "embedding", "heads", "kvHeads", "feedForward", "contextLength"];
  for (const k of positiveInts) {
    if (!Number.isInteger(o[k]) || o[k] <= 0) {
      throw new KvbridgeError("INVALID_ARGUMENT", `model option ${k} must be a positive integer, got ${o[k]}`);
    }
  }
  if (typeof o.spacePrefix !== "boolean") {
    throw new KvbridgeError("INVALID_ARGUMENT", `model option spacePrefix must be a boolean, got ${String(o.spacePrefix)}`);
  }
  if (!["f32", "f16", "q8_0"].includes(o.weightType)) {
    throw new KvbridgeError("INVALID_ARGUMENT", `model option weightType must be f32, f16 or q8_0, got ${String(o.weightType)}`);
  }
  if (o.weightType === "q8_0") {
    for (const k of ["embedding", "feedForward"] as const) {
      if (o[k] % 32 !== 0) throw new KvbridgeError("INVALID_ARGUMENT", `model option ${k} must be a multiple of 32 for q8_0 weights, got ${o[k]}`);
    }
  }
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffffffff) {
    throw new KvbridgeError("INVALID_ARGUMENT", `model option seed must be an integer in 0..2^32-1, got ${o.seed}`);
  }
  if (o.embedding % o.heads !== 0 || (o.embedding / o.heads) % 2 !== 0) {
    throw new KvbridgeError("INVALID_ARGUMENT", `embedding ${o.embedding} must split into ${o.heads} heads of an even size (RoPE rotates pairs)`);
  }
  if (o.heads % o.kvHeads !== 0) {
    throw new KvbridgeError("INVALID_ARGUMENT", `heads ${o.heads} must be a multiple of kvHeads ${o.kvHeads}`);
  }
  return o;
}

/** A model's metadata and tensor list; `produce(i)` makes tensor i's values, in order only. */
export interface ModelPlan {
  metadata: Array<[string, GgufValue]>;
  tensors: GgufTensorInfo[];
  produce: (index: number) => Float32Array;
}

/** The number of weights in a model of these options. */
export function modelParameterCount(opts: ModelWriterOptions = {}): number {
  return planModel(opts).tensors.reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0);
}

/** The model file's bytes for these options (deterministic), built in memory: for small shapes. */
export function encodeModel(opts: ModelWriterOptions = {}): Buffer {
  const plan = planModel(opts);
  return encodeGguf(
    plan.metadata,
    plan.tensors.map((t, i) => ({ ...t, data: plan.produce(i) })),
  );
}

/** What the writer emits for these options: metadata, tensor infos, and the seeded maker of each tensor's values. */
export function planModel(opts: ModelWriterOptions = {}): ModelPlan {
  const o = resolveModelOptions(opts);
  const headSize = o.embedding / o.heads;
  const kvWidth = headSize * o.kvHeads;
  const rng = new SeededRandom(o.seed);

  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TOKEN_TYPE_UNKNOWN, TOKEN_TYPE_CONTROL, TOKEN_TYPE_CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TOKEN_TYPE_BYTE);
  }
  tokens.push("\u2581");
  types.push(TOKEN_TYPE_NORMAL);
  const scores = new Float32Array(VOCAB_SIZE); // no merges: every score 0

  const metadata: Array<[string, GgufValue]> = [
    ["general.architecture", { type: "string", value: "llama" }],
    ["general.name", { type: "string", value: `kvbridge-s${o.seed}-l${o.layers}-e${o.embedding}-${o.weightType}` }],
    ["general.file_type", { type: "u32", value: FILE_TYPE[o.weightType] }],
    ["llama.context_length", { type: "u32", value: o.contextLength }],
    ["llama.embedding_length", { type: "u32", value: o.embedding }],
    ["llama.block_count", { type: "u32", value: o.layers }],
    ["llama.feed_forward_length", { type: "u32", value: o.feedForward }],
    ["llama.attention.head_count", { type: "u32", value: o.heads }],
    ["llama.attention.head_count_kv", { type: "u32", value: o.kvHeads }],
    ["llama.attention.layer_norm_rms_epsilon", { type: "f32", value: 1e-5 }],
    ["llama.rope.dimension_count", { type: "u32", value: headSize }],
    ["llama.rope.freq_base", { type: "f32", value: 10000 }],
    ["llama.vocab_size", { type: "u32", value: VOCAB_SIZE }],
    ["tokenizer.ggml.model", { type: "string", value: "llama" }],
    ["tokenizer.ggml.tokens", { type: "string[]", value: tokens }],
    ["tokenizer.ggml.scores", { type: "f32[]", value: scores }],
    ["tokenizer.ggml.token_type", { type: "i32[]", value: types }],
    ["tokenizer.ggml.unknown_token_id", { type: "u32", value: UNK }],
    ["tokenizer.ggml.bos_token_id", { type: "u32", value: BOS }],
    ["tokenizer.ggml.eos_token_id", { type: "u32", value: EOS }],
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: true }],
    ["tokenizer.ggml.add_eos_token", { type: "bool", value: false }],
    ["tokenizer.chat_template", { type: "string", value: CHAT_TEMPLATE }],
  ];
  // Without the key llama.cpp's SentencePiece tokenizer puts a "▁" before the text (as it always has here).
  if (!o.spacePrefix) metadata.push(["tokenizer.ggml.add_space_prefix", { type: "bool", value: false }]);

  // Each tensor with the function that makes its values. The makers draw from one PRNG stream,
  // so they run once each, in file order.
  const specs: Array<{ info: GgufTensorInfo; make: () => Float32Array }> = [];
  // Uniform init with variance 1/fan_in keeps every projection's output near unit scale, so the
  // attention and MLP contributions are as large as the embedding and the context shapes the logits.
  const uniform = (fanIn: number, fanOut: number, gain: number): Float32Array => {
    const data = new Float32Array(fanIn * fanOut);
    rng.fillUniform(data, gain * Math.sqrt(3 / fanIn));
    return data;
  };
  // Keep the bias dimension out of every block: blocks neither read it (input column 0) nor write
  // it (output row 0). Otherwise its constant leaks into every value vector and pulls all
  // contexts toward the same few tokens.
  const reads = (fanIn: number, fanOut: number, gain = 1) => (): Float32Array => {
    const data = uniform(fanIn, fanOut, gain);
    for (let out = 0; out < fanOut; out++) data[out * fanIn] = 0;
    return data;
  };
  const writes = (fanIn: number, fanOut: number) => (): Float32Array => uniform(fanIn, fanOut, 1).fill(0, 0, fanIn);
  const matrix = (name: string, fanIn: number, fanOut: number, make: () => Float32Array): void => {
    specs.push({ info: { name, dims: [fanIn, fanOut], type: o.weightType }, make });
  };
  const ones = (name: string, n: number): void => {
    specs.push({ info: { name, dims: [n], type: "f32" }, make: () => new Float32Array(n).fill(1) });
  };

  specs.push({
    info: { name: "token_embd.weight", dims: [o.embedding, VOCAB_SIZE], type: "f32" },
    make: () => {
      const embd = new Float32Array(o.embedding * VOCAB_SIZE);
      rng.fillUniform(embd, Math.sqrt(3)); // unit variance, like the block outputs
      for (let t = 0; t < VOCAB_SIZE; t++) embd[t * o.embedding] = BIAS_DIMENSION_VALUE;
      return embd;
    },
  });
  for (let l = 0; l < o.layers; l++) {
    ones(`blk.${l}.attn_norm.weight`, o.embedding);
    matrix(`blk.${l}.attn_q.weight`, o.embedding, o.embedding, reads(o.embedding, o.embedding, QK_GAIN));
    matrix(`blk.${l}.attn_k.weight`, o.embedding, kvWidth, reads(o.embedding, kvWidth, QK_GAIN));
    matrix(`blk.${l}.attn_v.weight`, o.embedding, kvWidth, reads(o.embedding, kvWidth));
    matrix(`blk.${l}.attn_output.weight`, o.embedding, o.embedding, writes(o.embedding, o.embedding));
    ones(`blk.${l}.ffn_norm.weight`, o.embedding);
    matrix(`blk.${l}.ffn_gate.weight`, o.embedding, o.feedForward, reads(o.embedding, o.feedForward));
    matrix(`blk.${l}.ffn_up.weight`, o.embedding, o.feedForward, reads(o.embedding, o.feedForward));
    matrix(`blk.${l}.ffn_down.weight`, o.feedForward, o.embedding, writes(o.feedForward, o.embedding));
  }
  ones("output_norm.weight", o.embedding);
  specs.push({
    info: { name: "output.weight", dims: [o.embedding, VOCAB_SIZE], type: "f32" },
    make: () => {
      const output = uniform(o.embedding, VOCAB_SIZE, 1);
      for (let t = 0; t < VOCAB_SIZE; t++) output[t * o.embedding] = isPreferredOutput(t) ? PRINTABLE_BIAS : -PRINTABLE_BIAS;
      return output;
    },
  });

  let next = 0;
  return {
    metadata,
    tensors: specs.map((s) => s.info),
    produce: (index) => {
      if (index !== next) throw new KvbridgeError("INTERNAL", `model tensors must be made in order: asked for ${index}, next is ${next}`);
      next++;
      return specs[index]!.make();
    },
  };
}

/** general.file_type (enum llama_ftype): the type of most weights. */
const FILE_TYPE: Readonly<Record<GgmlType, number>> = { f32: 0, f16: 1, q8_0: 7 };

function isPreferredOutput(token: number): boolean {
  if (token === SPACE_TOKEN) return true;
  if (token < BYTE_BASE) return false;
  const byte = token - BYTE_BASE;
  return byte >= 0x20 && byte <= 0x7e;
}

/**
 * Writes the model to `filePath` atomically (temp file + rename), one tensor at a time: memory
 * holds one tensor's values and its encoding, never the whole model.
 */
export async function writeModel(filePath: string, opts: ModelWriterOptions = {}): Promise<{ path: string; bytes: number }> {
  const plan = planModel(opts);
  await mkdir(path.dirname(filePath), { recursive: true });
  // A reader (another test file, another process) sees either no file or the whole file.
  const tmp = `${filePath}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  let bytes: number;
  try {
    const file = await open(tmp, "w");
    try {
      bytes = await writeGguf(file, plan.metadata, plan.tensors, plan.produce);
    } finally {
      await file.close();
    }
    await rename(tmp, filePath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new KvbridgeError("INTERNAL", `could not write model file ${filePath}: ${(err as Error).message}; check the directory is writable`, { cause: err });
  }
  return { path: filePath, bytes };
}

let cacheDirOverride: string | undefined;

/**
 * Where generated models are kept (`<dir>/models/`), set by the CLI from KVBRIDGE_CACHE_DIR
 * (read-only installs, containers); default `.cache/` in kvbridge's package.
 */
export function setModelCacheDir(dir: string | undefined): void {
  cacheDirOverride = dir || undefined;
}

/**
 * Where a preset's model lives: `<cache dir>/models/` (setModelCacheDir; the CLI passes
 * KVBRIDGE_CACHE_DIR), else `.cache/models/` in kvbridge's package, named `kvbridge-<preset>-<hash>.gguf`. The
 * hash covers the writer version and the options (the preset's, with `overrides` on top), so a
 * changed writer or another seed never reuses a stale file.
 */
export function presetModelPath(preset: ModelPreset, overrides: ModelWriterOptions = {}): string {
  const o = presetOptions(preset, overrides);
  const cacheDir = cacheDirOverride ?? path.join(packageRoot(), ".cache");
  const tag = createHash("sha256").update(JSON.stringify({ WRITER_VERSION, ...o })).digest("hex").slice(0, 12);
  return path.join(cacheDir, "models", `kvbridge-${preset}-${tag}.gguf`);
}

/** A preset's options with `overrides` (undefined fields ignored) on top, checked. */
export function presetOptions(preset: ModelPreset, overrides: ModelWriterOptions = {}): ResolvedModelOptions {
  const base = Object.hasOwn(MODEL_PRESETS, preset) ? MODEL_PRESETS[preset] : undefined;
  if (!base) throw new KvbridgeError("INVALID_ARGUMENT", `unknown model preset ${JSON.stringify(preset)}; use one of ${MODEL_PRESET_NAMES.join(", ")}`);
  return resolveModelOptions({ ...base, ...definedOnly(overrides) });
}

/** The default model's path (the small preset). */
export function defaultModelPath(): string {
  return presetModelPath("small");
}

const ensuring = new Map<string, Promise<string>>();

/** Writes a preset's model once (per cache dir and options) and returns its path. Safe across processes. */
export function ensurePresetModel(preset: ModelPreset, overrides: ModelWriterOptions = {}): Promise<string> {
  const target = presetModelPath(preset, overrides);
  let pending = ensuring.get(target);
  if (!pending) {
    pending = (async () => {
      const existing = await stat(target).catch(() => null);
      if (existing?.isFile()) return target;
      await writeModel(target, presetOptions(preset, overrides));
      return target;
    })().catch((err: unknown) => {
      ensuring.delete(target); // let a later call retry after a transient failure
      throw err;
    });
    ensuring.set(target, pending);
  }
  return pending;
}

/** Writes the default model once (per cache dir) and returns its path. Safe across processes. */
export function ensureDefaultModel(): Promise<string> {
  return ensurePresetModel("small");
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
