// `kvbridge make-model`: writes the project's small llama GGUF with seeded random weights.
import { Command } from "commander";
import { defaultModelPath, writeModel } from "../../engine/index.js";
import { intArg } from "../option-parsers.js";

export function makeModelCommand(): Command {
  return new Command("make-model")
    .description("write kvbridge's small deterministic GGUF model (same seed, same bytes)")
    .option("--out <path>", "where to write it", defaultModelPath())
    .option("--seed <n>", "weight seed", intArg(0, 2 ** 31))
    .action(async (flags: { out: string; seed?: number }) => {
      const res = await writeModel(flags.out, flags.seed === undefined ? {} : { seed: flags.seed });
      process.stdout.write(`${res.path} (${res.bytes} bytes)\n`);
    });
}
