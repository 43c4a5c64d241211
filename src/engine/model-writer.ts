// Writes kvbridge's own small llama-architecture GGUF with seeded random weights. No weights can be
// downloaded where kvbridge is tested, so the project makes a deterministic model of its own: the
// same options give the same bytes, hence the same fingerprint and chunk keys on every node.

import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { encodeGguf, type GgufTensor, type GgufValue } from "./gguf-writer.js";
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
});

/** Bumped whenever the writer would emit different bytes for the same options. */
const WRITER_VERSION = 1;

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
  const positiveInts: Array<keyof ResolvedModelOptions> = ["layers", "embedding", "heads", "kvHeads", "feedForward", "contextLength"];
  for (const k of positiveInts) {
    if (!Number.isInteger(o[k]) || o[k] <= 0) {
      throw new KvbridgeError("INVALID_ARGUMENT", `model option ${k} must be a positive integer, got ${o[k]}`);
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

/** The model file's bytes for these options (deterministic). */
export function encodeModel(opts: ModelWriterOptions = {}): Buffer {
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
    ["general.name", { type: "string", value: `kvbridge-tiny-s${o.seed}-l${o.layers}-e${o.embedding}` }],
    ["general.file_type", { type: "u32", value: 0 }], // all F32
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
  ];

  // Uniform init with variance 1/fan_in keeps every projection's output near unit scale, so the
  // attention and MLP contributions are as large as the embedding and the context shapes the logits.
  const matrix = (name: string, fanIn: number, fanOut: number, gain = 1): GgufTensor => {
    const data = new Float32Array(fanIn * fanOut);
    rng.fillUniform(data, gain * Math.sqrt(3 / fanIn));
    return { name, dims: [fanIn, fanOut], data };
  };
  // Keep the bias dimension out of every block: blocks neither read it (input column 0) nor write
  // it (output row 0). Otherwise its constant leaks into every value vector and pulls all
  // contexts toward the same few tokens.
  const readsResidual = (t: GgufTensor): GgufTensor => {
    const fanIn = t.dims[0]!;
    for (let out = 0; out < t.dims[1]!; out++) t.data[out * fanIn] = 0;
    return t;
  };
  const writesResidual = (t: GgufTensor): GgufTensor => {
    t.data.fill(0, 0, t.dims[0]!);
    return t;
  };
  const ones = (name: string, n: number): GgufTensor => ({ name, dims: [n], data: new Float32Array(n).fill(1) });

  const embd = new Float32Array(o.embedding * VOCAB_SIZE);
  rng.fillUniform(embd, Math.sqrt(3)); // unit variance, like the block outputs
  for (let t = 0; t < VOCAB_SIZE; t++) embd[t * o.embedding] = BIAS_DIMENSION_VALUE;

  const tensors: GgufTensor[] = [{ name: "token_embd.weight", dims: [o.embedding, VOCAB_SIZE], data: embd }];
  for (let l = 0; l < o.layers; l++) {
    tensors.push(
      ones(`blk.${l}.attn_norm.weight`, o.embedding),
      readsResidual(matrix(`blk.${l}.attn_q.weight`, o.embedding, o.embedding, QK_GAIN)),
      readsResidual(matrix(`blk.${l}.attn_k.weight`, o.embedding, kvWidth, QK_GAIN)),
      readsResidual(matrix(`blk.${l}.attn_v.weight`, o.embedding, kvWidth)),
      writesResidual(matrix(`blk.${l}.attn_output.weight`, o.embedding, o.embedding)),
      ones(`blk.${l}.ffn_norm.weight`, o.embedding),
      readsResidual(matrix(`blk.${l}.ffn_gate.weight`, o.embedding, o.feedForward)),
      readsResidual(matrix(`blk.${l}.ffn_up.weight`, o.embedding, o.feedForward)),
      writesResidual(matrix(`blk.${l}.ffn_down.weight`, o.feedForward, o.embedding)),
    );
  }
  const output = matrix("output.weight", o.embedding, VOCAB_SIZE);
  for (let t = 0; t < VOCAB_SIZE; t++) output.data[t * o.embedding] = isPreferredOutput(t) ? PRINTABLE_BIAS : -PRINTABLE_BIAS;
  tensors.push(ones("output_norm.weight", o.embedding), output);

  return encodeGguf(metadata, tensors);
}

function isPreferredOutput(token: number): boolean {
  if (token === SPACE_TOKEN) return true;
  if (token < BYTE_BASE) return false;
  const byte = token - BYTE_BASE;
  return byte >= 0x20 && byte <= 0x7e;
}

/** Writes the model to `filePath` atomically (temp file + rename). */
export async function writeModel(filePath: string, opts: ModelWriterOptions = {}): Promise<{ path: string; bytes: number }> {
  const bytes = encodeModel(opts);
  await mkdir(path.dirname(filePath), { recursive: true });
  // A reader (another test file, another process) sees either no file or the whole file.
  const tmp = `${filePath}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, filePath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new KvbridgeError("INTERNAL", `could not write model file ${filePath}: ${(err as Error).message}; check the directory is writable`, { cause: err });
  }
  return { path: filePath, bytes: bytes.length };
}

/** The repository root: the nearest ancestor holding kvbridge's package.json (works from src/ and dist/src/). */
function findRepoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "kvbridge") return dir;
      } catch {
        // not ours or unreadable: keep walking up
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

/**
 * Where the default model lives: `$KVBRIDGE_CACHE_DIR/models/` when set (read-only installs,
 * containers), else `.cache/models/` in the repository. The name carries a hash of the writer
 * version and options, so a changed writer never reuses a stale file.
 */
export function defaultModelPath(): string {
  const cacheDir = process.env.KVBRIDGE_CACHE_DIR || path.join(findRepoRoot(), ".cache");
  const tag = createHash("sha256").update(JSON.stringify({ WRITER_VERSION, ...DEFAULT_MODEL_OPTIONS })).digest("hex").slice(0, 12);
  return path.join(cacheDir, "models", `kvbridge-tiny-${tag}.gguf`);
}

let ensuring: Promise<string> | null = null;

/** Writes the default model once (per cache dir) and returns its path. Safe across processes. */
export function ensureDefaultModel(): Promise<string> {
  ensuring ??= (async () => {
    const target = defaultModelPath();
    const existing = await stat(target).catch(() => null);
    if (existing?.isFile()) return target;
    await writeModel(target, DEFAULT_MODEL_OPTIONS);
    return target;
  })().catch((err: unknown) => {
    ensuring = null; // let a later call retry after a transient failure
    throw err;
  });
  return ensuring;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
