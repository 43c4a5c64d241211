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
    checkSchemaTypes(schema, "schema");
    // node-llama-cpp types its schemas precisely (GbnfJsonSchema); a caller's schema is only known
    // at run time, and the grammar compiler refuses what it does not support.
    return this.llama.createGrammarForJsonSchema<GbnfJsonSchema<Record<string, never>>, Record<string, never>>(schema as GbnfJsonSchema<Record<string, never>>);
  }
}

const JSON_TYPES = new Set(["string", "number", "integer", "boolean", "null", "object", "array"]);

/**
 * node-llama-cpp's schema compiler turns a `type` it does not know into an unconstrained value
 * without a word; such a schema is refused here instead of being silently loosened.
 */
function checkSchemaTypes(node: unknown, where: string): void {
  if (typeof node !== "object" || node === null) return;
  if (Array.isArray(node)) {
    node.forEach((n, i) => checkSchemaTypes(n, `${where}[${i}]`));
    return;
  }
  for (const [key, value] of Object.entries(node)) {
    if (key === "type") {
      const types = Array.isArray(value) ? value : [value];
      for (const t of types) {
        if (typeof t !== "string" || !JSON_TYPES.has(t)) {
          throw new KvbridgeError("INVALID_ARGUMENT", `response_format: ${where}.type ${JSON.stringify(t)} is not a JSON schema type (${[...JSON_TYPES].join(", ")})`, {
            details: { param: "response_format" },
          });
        }
      }
    } else if (key !== "enum" && key !== "const" && key !== "default" && key !== "examples") {
      checkSchemaTypes(value, `${where}.${key}`);
    }
  }
}
