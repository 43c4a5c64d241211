// `kvbridge generate`: the single-process reference. Prints exactly the generated text (no prompt)
// to stdout, so it can be compared byte for byte with a router's completion; logs go to stderr.
import { Command } from "commander";
import { runGenerate } from "../../engine/index.js";
import { intArg } from "../option-parsers.js";

export function generateCommand(): Command {
  return new Command("generate")
    .description("evaluate a prompt and decode greedily in one process (the reference the disaggregated path must equal)")
    .option("--model <path>", "GGUF model file (default: the model kvbridge writes itself)")
    .requiredOption("--prompt <text>", "the prompt")
    .option("--max-tokens <n>", "tokens to generate", intArg(1, 65_536), 16)
    .option("--threads <n>", "CPU threads", intArg(1, 256))
    .addHelpText("after", '\nExample:\n  kvbridge generate --prompt "Once upon a time" --max-tokens 32')
    .action(async (flags: { model?: string; prompt: string; maxTokens: number; threads?: number }) => {
      const text = await runGenerate({ modelPath: flags.model, prompt: flags.prompt, maxTokens: flags.maxTokens, threads: flags.threads });
      process.stdout.write(text);
    });
}
