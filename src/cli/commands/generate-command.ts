// `kvbridge generate`: the single-process reference. Prints exactly the generated text (no prompt)
// to stdout, so it can be compared byte for byte with a router's completion; logs go to stderr.
// With --seed and the sampling flags it is the reference for seeded runs: a decode node given the
// same seed and parameters must print the same text.
import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { runGenerate, validateResponseFormat, validateSampling, type EngineSampling, type ResponseFormat } from "../../engine/index.js";
import { intArg } from "../option-parsers.js";

function numberArg(v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${v}"`);
  return n;
}

function seedArg(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected an integer, got "${v}"`);
  return n;
}

interface GenerateFlags {
  model?: string;
  prompt: string;
  maxTokens: number;
  threads?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  repetitionPenalty?: number;
  stop?: string[];
  json?: boolean;
  jsonSchema?: string;
}

/** The response format the flags ask for; the schema file is read and parsed here. */
function responseFormatOf(flags: GenerateFlags): ResponseFormat | undefined {
  if (flags.json && flags.jsonSchema) throw new InvalidArgumentError("give --json or --json-schema, not both");
  if (flags.json) return { type: "json_object" };
  if (!flags.jsonSchema) return undefined;
  let schema: unknown;
  try {
    schema = JSON.parse(readFileSync(flags.jsonSchema, "utf8"));
  } catch (err) {
    throw new InvalidArgumentError(`--json-schema ${flags.jsonSchema}: ${(err as Error).message}`);
  }
  return validateResponseFormat({ type: "json_schema", schema });
}

export function generateCommand(): Command {
  return new Command("generate")
    .description("evaluate a prompt and decode in one process (the reference the disaggregated path must equal, greedy or seeded)")
    .option("--model <path>", "GGUF model file (default: the model kvbridge writes itself)")
    .requiredOption("--prompt <text>", "the prompt")
    .option("--max-tokens <n>", "tokens to generate", intArg(1, 65_536), 16)
    .option("--threads <n>", "CPU threads", intArg(1, 256))
    .option("--temperature <t>", "sampling temperature, 0..2 (0 or absent: greedy)", numberArg)
    .option("--top-p <p>", "nucleus sampling, (0, 1]", numberArg)
    .option("--top-k <k>", "keep the k most likely tokens (0: off)", numberArg)
    .option("--min-p <p>", "drop tokens below p x the top token's probability, 0..1", numberArg)
    .option("--seed <n>", "seed of the sampler (same seed and flags: same text)", seedArg)
    .option("--presence-penalty <v>", "-2..2, on tokens already generated", numberArg)
    .option("--frequency-penalty <v>", "-2..2, per time a token was generated", numberArg)
    .option("--repetition-penalty <v>", "(0, 2], llama.cpp's repeat penalty (1: off)", numberArg)
    .option("--stop <text...>", "stop strings (output ends before the first)")
    .option("--json", "constrain output to a JSON object")
    .option("--json-schema <file>", "constrain output to JSON matching the schema in this file")
    .addHelpText("after", '\nExamples:\n  kvbridge generate --prompt "Once upon a time" --max-tokens 32\n  kvbridge generate --prompt "Once upon a time" --temperature 0.8 --top-p 0.95 --seed 42')
    .action(async (flags: GenerateFlags) => {
      const raw: EngineSampling = {
        temperature: flags.temperature,
        topP: flags.topP,
        topK: flags.topK,
        minP: flags.minP,
        seed: flags.seed,
        presencePenalty: flags.presencePenalty,
        frequencyPenalty: flags.frequencyPenalty,
        repetitionPenalty: flags.repetitionPenalty,
      };
      const sampling = validateSampling(raw);
      const text = await runGenerate({
        modelPath: flags.model,
        prompt: flags.prompt,
        maxTokens: flags.maxTokens,
        threads: flags.threads,
        sampling,
        responseFormat: responseFormatOf(flags),
        stop: flags.stop,
      });
      process.stdout.write(text);
    });
}
