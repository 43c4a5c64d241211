// `kvbridge generate`: the single-process reference run, as one function for the CLI.

import { LlamaEngine } from "./llama-engine.js";
import { ensureDefaultModel } from "./model-writer.js";
import type { EngineSampling, ResponseFormat } from "./sampling.js";

export interface RunGenerateOptions {
  /** A GGUF file; the project's default model when omitted. */
  modelPath?: string;
  prompt: string;
  maxTokens: number;
  threads?: number;
  /** Absent: greedy. With a seed: the reference a decode node's seeded output must equal. */
  sampling?: EngineSampling;
  responseFormat?: ResponseFormat;
  stop?: string[];
}

/** Tokenizes the prompt (with BOS), evaluates and decodes (greedy or sampled) in one process; returns the text. */
export async function runGenerate(opts: RunGenerateOptions): Promise<string> {
  const modelPath = opts.modelPath ?? (await ensureDefaultModel());
  const engine = await LlamaEngine.open({ modelPath, threads: opts.threads, maxSequences: 1 });
  try {
    const result = await engine.generateLocal({
      tokens: engine.tokenize(opts.prompt),
      maxTokens: opts.maxTokens,
      sampling: opts.sampling,
      responseFormat: opts.responseFormat,
      stop: opts.stop,
    });
    return result.text;
  } finally {
    await engine.close();
  }
}
