// `kvbridge make-model`: writes one of the project's llama GGUF models with seeded random weights
// (same preset and seed, same bytes): "small" (the default model) or "medium" (~180 M parameters,
// Q8_0, for engine figures). Without --out it writes to the model cache, named for the preset.
import { Command } from "commander";
import type { GgmlType } from "../../engine/gguf-writer.js";
import { MODEL_PRESET_NAMES, modelParameterCount, presetModelPath, presetOptions, writeModel, type ModelPreset } from "../../engine/model-writer.js";
import { choiceArg, intArg } from "../option-parsers.js";

const WEIGHT_TYPES: readonly GgmlType[] = ["f32", "f16", "q8_0"];

export function makeModelCommand(): Command {
  return new Command("make-model")
    .description("write one of kvbridge's deterministic GGUF models (same preset and seed, same bytes)")
    .option("--preset <name>", `model shape: ${MODEL_PRESET_NAMES.join(" or ")}`, choiceArg(MODEL_PRESET_NAMES), "small")
    .option("--out <path>", "where to write it (default: the model cache, kvbridge-<preset>-<hash>.gguf)")
    .option("--seed <n>", "weight seed (default: the preset's, 1)", intArg(0, 2 ** 31))
    .option("--weight-type <type>", "encoding of the block matrices (default: the preset's)", choiceArg(WEIGHT_TYPES))
    .action(async (flags: { preset: ModelPreset; out?: string; seed?: number; weightType?: GgmlType }) => {
      const overrides = { seed: flags.seed, weightType: flags.weightType };
      const opts = presetOptions(flags.preset, overrides);
      const out = flags.out ?? presetModelPath(flags.preset, overrides);
      const started = performance.now();
      const res = await writeModel(out, opts);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const params = modelParameterCount(opts);
      process.stdout.write(`${res.path} (${res.bytes} bytes, ${params} parameters, ${flags.preset} ${opts.weightType}, ${seconds} s)\n`);
    });
}
