// `kvbridge generate`: the single-process reference run, as one function for the CLI.

import { LlamaEngine } from "./llama-engine.js";
import { ensureDefaultModel } from "./model-writer.js";

export interface RunGenerateOptions {
  /** A GGUF file; the project's default model when omitted. */
  modelPath?: string;
  prompt: string;
  maxTokens: number;
  threads?: number;
}

/** Tokenizes the prompt (with BOS), evaluates and decodes greedily in one process; returns the text. */
export async function runGenerate(opts: RunGenerateOptions): Promise<string> {
  const modelPath = opts.modelPath ?? (await ensureDefaultModel());
  const engine = await LlamaEngine.open({ modelPath, threads: opts.threads, maxSequences: 1 });
  try {
    const result = await engine.generateLocal({ tokens: engine.tokenize(opts.prompt), maxTokens: opts.maxTokens });
    return result.text;
  } finally {
    await engine.close();
  }
}
