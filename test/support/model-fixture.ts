// The project's small model for engine tests, written once per checkout (atomically, so test files
// running in parallel never read half a file), plus a second "foreign" model for mismatch tests.
import { stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { LlamaEngine, type EngineOptions } from "../../src/engine/llama-engine.js";
import { defaultModelPath, ensureDefaultModel, writeModel, type ModelWriterOptions } from "../../src/engine/model-writer.js";

export function testModelPath(): Promise<string> {
  return ensureDefaultModel();
}

/** A model written once under the cache with `opts`, named `test-<name>.gguf`. */
export async function extraModelPath(name: string, opts: ModelWriterOptions): Promise<string> {
  const file = path.join(path.dirname(defaultModelPath()), `test-${name}.gguf`);
  if (!(await stat(file).catch(() => null))?.isFile()) await writeModel(file, opts);
  return file;
}

/** Same shape as the default model, other weights (seed 2): its chunks must never load here. */
export function foreignModelPath(): Promise<string> {
  return extraModelPath("foreign-seed2", { seed: 2 });
}

export async function openTestEngine(opts: Partial<EngineOptions> = {}): Promise<LlamaEngine> {
  return LlamaEngine.open({ modelPath: await testModelPath(), ...opts });
}

const WORDS = (
  "kv cache prefill decode chunk transfer node router token layer head pool slot lease commit " +
  "the a of to and in is on for with as by at from that this it be are was were model prompt"
).split(" ");

/** Deterministic text of roughly `words` words (varied, so keys and outputs differ by seed). */
export function sampleText(words: number, seed = 1): string {
  let x = seed >>> 0 || 1;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.push(WORDS[x % WORDS.length]!);
    if (x % 11 === 0) out.push(".");
  }
  return out.join(" ");
}

/** A prompt of exactly `n` tokens (BOS first). */
export function promptOf(engine: LlamaEngine, n: number, seed = 1): number[] {
  const tokens = engine.tokenize(sampleText(Math.ceil(n / 3) + 8, seed));
  if (tokens.length < n) throw new Error(`sample text gave ${tokens.length} tokens, need ${n}`);
  return tokens.slice(0, n);
}

/**
 * Run as a script, this file prefills a prompt in a process of its own and writes the chunks to
 * files, so a test can load KV made by another process (other threads, other heap, other seeds):
 *   node --import tsx test/support/model-fixture.ts prefill <tokens.json> <outDir> <threads>
 */
async function main(argv: string[]): Promise<void> {
  const [cmd, tokensFile, outDir, threads] = argv;
  if (cmd !== "prefill" || !tokensFile || !outDir) throw new Error("usage: model-fixture.ts prefill <tokens.json> <outDir> <threads>");
  const { readFile, writeFile, mkdir } = await import("node:fs/promises");
  const tokens = JSON.parse(await readFile(tokensFile, "utf8")) as number[];
  const engine = await openTestEngine({ threads: Number(threads ?? 1), maxSequences: 1 });
  try {
    const { chunks } = await engine.prefill(tokens);
    await mkdir(outDir, { recursive: true });
    for (const c of chunks) await writeFile(path.join(outDir, `${c.index}.kvc`), c.bytes);
    console.log(JSON.stringify({ chunks: chunks.length, fingerprint: engine.fingerprint, keys: chunks.map((c) => c.key) }));
  } finally {
    await engine.close();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
