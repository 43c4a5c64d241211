// Engine flags shared by the prefill, decode, up and generate commands.
import type { Command } from "commander";
import { DEFAULT_CHUNK_TOKENS, DEFAULT_THREADS, LlamaEngine, ensureDefaultModel } from "../engine/index.js";
import { envOption } from "./env-option.js";
import { intArg } from "./option-parsers.js";

export interface EngineFlags {
  model?: string;
  threads: number;
  chunkTokens: number;
  maxSequences?: number;
}

export function addEngineOptions(cmd: Command, withModel = true): Command {
  if (withModel) cmd.addOption(envOption("--model <path>", "GGUF model file (default: the model kvbridge writes itself, made on first use)"));
  return cmd
    .addOption(envOption("--threads <n>", "CPU threads per evaluation", intArg(1, 256), DEFAULT_THREADS))
    .addOption(envOption("--chunk-tokens <n>", "tokens per KV chunk (prefill and decode must agree)", intArg(1, 65_536), DEFAULT_CHUNK_TOKENS))
    .addOption(envOption("--max-sequences <n>", "requests evaluated at once", intArg(1, 256)));
}

export async function openEngine(flags: EngineFlags): Promise<LlamaEngine> {
  const modelPath = flags.model ?? (await ensureDefaultModel());
  return LlamaEngine.open({ modelPath, threads: flags.threads, chunkTokens: flags.chunkTokens, maxSequences: flags.maxSequences });
}
