// Grammars for constrained output (OpenAI response_format): node-llama-cpp's JSON grammar for
// json_object, and LlamaJsonSchemaGrammar for json_schema. Grammars are compiled once per schema
// and kept (a few, most recently used); each request gets an evaluation state of its own, so
// requests never share grammar progress.

import { LlamaGrammarEvaluationState, type GbnfJsonSchema, type Llama, type LlamaGrammar, type LlamaModel } from "node-llama-cpp";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { ResponseFormat } from "./sampling.js";

/** Compiled schemas kept for reuse. */
const MAX_CACHED_GRAMMARS = 32;

export class ResponseGrammars {
  private readonly cache = new Map<string, Promise<LlamaGrammar>>();

  constructor(
    private readonly llama: Llama,
    private readonly model: LlamaModel,
  ) {}

  /** A fresh evaluation state for one request, or undefined for free text. */
  async stateFor(format: ResponseFormat | undefined): Promise<LlamaGrammarEvaluationState | undefined> {
    if (!format || format.type === "text") return undefined;
    const grammar = await this.grammarFor(format);
    return new LlamaGrammarEvaluationState({ model: this.model, grammar });
  }

  private grammarFor(format: Exclude<ResponseFormat, { type: "text" }>): Promise<LlamaGrammar> {
    const key = format.type === "json_object" ? "json" : `schema:${JSON.stringify(format.schema)}`;
    let g = this.cache.get(key);
    if (g) {
      this.cache.delete(key); // re-inserted below: most recently used last
    } else {
      g = (format.type === "json_object" ? this.llama.getGrammarFor("json") : this.compileSchema(format.schema)).catch((err: unknown) => {
        this.cache.delete(key);
        throw err instanceof KvbridgeError
          ? err
          : new KvbridgeError("INVALID_ARGUMENT", `response_format: the JSON schema cannot be turned into a grammar: ${(err as Error).message}`, { cause: err, details: { param: "response_format" } });
      });
    }
    this.cache.set(key, g);
    while (this.cache.size > MAX_CACHED_GRAMMARS) this.cache.delete(this.cache.keys().next().value!);
    return g;
  }

  private async compileSchema(schema: Readonly<Record<string, unknown>>): Promise<LlamaGrammar> {
    // node-llama-cpp types its schemas precisely (GbnfJsonSchema); a caller's schema is only known
    // at run time, and the grammar compiler refuses what it does not support.
    return this.llama.createGrammarForJsonSchema<GbnfJsonSchema<Record<string, never>>, Record<string, never>>(schema as GbnfJsonSchema<Record<string, never>>);
  }
}
