// Engine flags shared by the prefill, decode, up and generate commands, and the model catalog flags
// of the nodes (prefill, decode, up), which can serve several models.
import { Option, type Command } from "commander";
import { DEFAULT_MODELS_MAX, MAX_PROMPT_CHARS, PREFIX_CACHE_BYTES, TOKENIZE_INLINE_CHARS } from "../config/defaults.js";
import { DEFAULT_CHUNK_TOKENS, DEFAULT_THREADS, LlamaEngine, ensureDefaultModel, type EngineBatching } from "../engine/index.js";
import { loadModelCatalog } from "../models/model-catalog.js";
import type { NodeModelsOptions } from "../models/node-models.js";
import { envName, envOption } from "./env-option.js";
import { choiceArg, intArg } from "./option-parsers.js";

export interface EngineFlags {
  model?: string;
  threads: number;
  chunkTokens: number;
  maxSequences?: number;
  maxPromptChars: number;
  maxPromptTokens?: number;
  tokenizeInlineChars: number;
  batching?: EngineBatching;
  /** Bytes of KV chunks a prefill engine keeps for prompts sharing a prefix (0: off). */
  prefixCacheBytes: number;
}

export function addEngineOptions(cmd: Command, withModel = true): Command {
  if (withModel) cmd.addOption(envOption("--model <path>", "GGUF model file (default: the model kvbridge writes itself, made on first use)"));
  return cmd
    .addOption(envOption("--threads <n>", "CPU threads per evaluation", intArg(1, 256), DEFAULT_THREADS))
    .addOption(envOption("--chunk-tokens <n>", "tokens per KV chunk (prefill and decode must agree)", intArg(1, 65_536), DEFAULT_CHUNK_TOKENS))
    .addOption(envOption("--max-sequences <n>", "requests evaluated at once", intArg(1, 256)))
    .addOption(
      envOption(
        "--batching <mode>",
        "how concurrent requests share llama.cpp: invariant (one context, each request's output as if alone; default), shared (rows of several requests in one matrix product: faster, last bits of logits may differ), context-per-request",
        choiceArg(["invariant", "shared", "context-per-request"] as const),
      ),
    )
    .addOption(envOption("--max-prompt-chars <n>", "longest prompt a node tokenizes, in characters; longer ones are refused (prompt_too_long) before tokenizing", intArg(1, 1 << 30), MAX_PROMPT_CHARS))
    .addOption(envOption("--max-prompt-tokens <n>", "most prompt tokens a node evaluates (default and most: the context less one); a prompt that cannot fit is refused, before tokenizing when its length alone shows it", intArg(1, 1 << 30)))
    .addOption(envOption("--tokenize-inline-chars <n>", "prompts up to this many characters are tokenized on the event loop, longer ones on a tokenizer thread", intArg(0, 1 << 30), TOKENIZE_INLINE_CHARS))
    .addOption(
      envOption(
        "--prefix-cache-bytes <n>",
        "bytes of KV chunks a prefill engine keeps by chunk key, least recently used out first: a prompt whose leading chunks it cut before is evaluated only from the first chunk not kept (0: off)",
        intArg(0),
        PREFIX_CACHE_BYTES,
      ),
    );
}

export async function openEngine(flags: EngineFlags): Promise<LlamaEngine> {
  const modelPath = flags.model ?? (await ensureDefaultModel());
  return LlamaEngine.open({
    modelPath,
    threads: flags.threads,
    chunkTokens: flags.chunkTokens,
    maxSequences: flags.maxSequences,
    maxPromptChars: flags.maxPromptChars,
    maxPromptTokens: flags.maxPromptTokens,
    tokenizeInlineChars: flags.tokenizeInlineChars,
    batching: flags.batching,
    prefixCacheBytes: flags.prefixCacheBytes,
  });
}

// ---- several models on one node (prefill, decode, up): docs/models.md

export interface ModelFlags {
  /** --model PATH or ID=PATH, repeatable. */
  model?: string[];
  modelsDir?: string[];
  modelAlias?: string[];
  modelsMax: number;
  defaultModel?: string;
}

/** The engine flags of a node that serves several models. */
export type NodeEngineFlags = Omit<EngineFlags, "model"> & ModelFlags;

const repeated = (flags: string, description: string): Option =>
  new Option(flags, description).env(envName(flags)).argParser((v: string, previous: string[] | undefined) => [...(previous ?? []), v]);

/** The engine flags with the catalog flags instead of one --model. */
export function addNodeModelOptions(cmd: Command): Command {
  addEngineOptions(cmd, false);
  return cmd
    .addOption(repeated("--model <[id=]path>", "a GGUF model this node serves, its id the file stem or ID (repeatable; default: the model kvbridge writes itself, made on first use)"))
    .addOption(repeated("--models-dir <dir>", "every .gguf file in DIR is a model, its id the file stem (repeatable)"))
    .addOption(repeated("--model-alias <alias=id>", "another name for a model (repeatable)"))
    .addOption(envOption("--models-max <n>", "models resident at once; a load beyond evicts the least recently used idle one", intArg(1, 1024), DEFAULT_MODELS_MAX))
    .addOption(envOption("--default-model <id>", "the model of requests that name none (default: the first model)"));
}

/** The node's models from its flags; with neither --model nor --models-dir, the project's own model. */
export async function nodeModelsFromFlags(flags: NodeEngineFlags): Promise<NodeModelsOptions> {
  const none = (flags.model ?? []).length === 0 && (flags.modelsDir ?? []).length === 0;
  const catalog = await loadModelCatalog({
    models: none ? [await ensureDefaultModel()] : flags.model,
    modelsDirs: flags.modelsDir,
    aliases: flags.modelAlias,
  });
  return {
    catalog,
    defaultModel: flags.defaultModel,
    maxResident: flags.modelsMax,
    defaults: { threads: flags.threads, chunkTokens: flags.chunkTokens, ...(flags.maxSequences !== undefined ? { maxSequences: flags.maxSequences } : {}) },
    engineOptions: { maxPromptChars: flags.maxPromptChars, maxPromptTokens: flags.maxPromptTokens, tokenizeInlineChars: flags.tokenizeInlineChars, batching: flags.batching, prefixCacheBytes: flags.prefixCacheBytes },
  };
}
