// The models of one engine node (prefill or decode): its catalog and default model, the model host
// that loads real engines (LlamaEngine.open) under the node's flags, and what the node's services
// ask of it: the model a request names ("" = the default), a lease on its engine for the request,
// and the fingerprints of the engines resident now (a decode node accepts KV of those only).
import { DEFAULT_MODELS_MAX } from "../config/defaults.js";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { readGgufFileInfo } from "node-llama-cpp";
import { LlamaEngine, type EngineOptions } from "../engine/llama-engine.js";
import { ModelCatalog, type ModelSpec } from "./model-catalog.js";
import { ModelHost, type LoadedModel, type ModelLease, type ModelLoader } from "./model-host.js";
import type { ModelLoadOptions } from "./model-options.js";
import type { ModelSnapshot } from "./model-state.js";

/** A loaded model as the host holds it: the engine, and how it is freed. */
export interface ServedEngine extends LoadedModel {
  readonly engine: LlamaEngine;
  /** Tokens of the model's vocabulary (token ids are 0..vocabSize-1); undefined when not known. */
  readonly vocabSize?: number;
}

/** Engine options that are not load options: the same for every model of the node (prompt limits). */
export type FixedEngineOptions = Omit<EngineOptions, "modelPath" | "threads" | "contextSize" | "chunkTokens" | "maxSequences">;

export interface NodeModelsOptions {
  readonly catalog: ModelCatalog;
  /** Id or alias of the model of requests that name none (--default-model); default: the catalog's first. */
  readonly defaultModel?: string;
  /** --models-max. */
  readonly maxResident?: number;
  /** The node's flags for loads that name no options (--threads, --chunk-tokens, --max-sequences). */
  readonly defaults?: ModelLoadOptions;
  readonly engineOptions?: FixedEngineOptions;
  readonly loadWaitMs?: number;
  readonly drainMs?: number;
  readonly loadTimeoutMs?: number;
  /** Refuses an engine this node cannot serve (a decode node: chunks larger than its slots); it is closed. */
  readonly check?: (engine: LlamaEngine, spec: ModelSpec) => void;
  /** Opens a model; default LlamaEngine.open with the options (and `check`). */
  readonly loader?: ModelLoader<ServedEngine>;
}

export class NodeModels {
  readonly host: ModelHost<ServedEngine>;
  readonly catalog: ModelCatalog;
  readonly defaultModel: string;
  /** --models-max. */
  readonly maxResident: number;

  constructor(opts: NodeModelsOptions) {
    this.catalog = opts.catalog;
    this.maxResident = opts.maxResident ?? DEFAULT_MODELS_MAX;
    const def = opts.defaultModel === undefined ? opts.catalog.models[0]! : opts.catalog.resolve(opts.defaultModel);
    if (!def) {
      throw new KvbridgeError("INVALID_ARGUMENT", `--default-model ${JSON.stringify(opts.defaultModel)} is not one of the node's models (${opts.catalog.ids().join(", ")})`, {
        details: { param: "default-model" },
      });
    }
    this.defaultModel = def.id;
    this.host = new ModelHost<ServedEngine>({
      catalog: opts.catalog,
      maxResident: this.maxResident,
      defaults: opts.defaults,
      loadWaitMs: opts.loadWaitMs,
      drainMs: opts.drainMs,
      loadTimeoutMs: opts.loadTimeoutMs,
      loader:
        opts.loader ??
        (async (spec, options) => {
          const engine = await LlamaEngine.open({ ...opts.engineOptions, modelPath: spec.path, ...options });
          try {
            opts.check?.(engine, spec);
          } catch (err) {
            await engine.close();
            throw err;
          }
          return { engine, vocabSize: await vocabularySize(spec.path), close: () => engine.close() };
        }),
    });
  }

  /**
   * A node serving one engine loaded (or loading) elsewhere, under its model id: its first load is
   * that engine; `owned`: freed with the node (else its owner closes it). Once freed (an unload),
   * it cannot be loaded again (UNAVAILABLE, model_load_failed).
   */
  static preloaded(engine: Promise<LlamaEngine>, modelId: string, owned: boolean, check?: (engine: LlamaEngine) => void): NodeModels {
    let freed = false;
    return new NodeModels({
      catalog: new ModelCatalog([{ id: modelId, aliases: [], path: "(preloaded)" }]),
      maxResident: 1,
      loader: async () => {
        if (freed) throw new KvbridgeError("UNAVAILABLE", `model ${modelId} was unloaded; this node was started with its engine and cannot load it again`);
        const e = await engine;
        check?.(e);
        return {
          engine: e,
          close: async () => {
            if (!owned) return;
            freed = true;
            await e.close();
          },
        };
      },
    });
  }

  /** The catalog model a request names ("" = the default); NOT_FOUND model_not_found otherwise. */
  resolve(name: string): ModelSpec {
    const spec = this.catalog.resolve(name === "" ? this.defaultModel : name);
    if (!spec) {
      throw new KvbridgeError("NOT_FOUND", `model ${JSON.stringify(name)} is not served by this node; its models: ${this.catalog.ids().join(", ")}`, {
        details: { reason: "model_not_found", param: "model" },
      });
    }
    return spec;
  }

  /** The engine of a request's model, loaded if need be, held until release(). */
  acquire(name: string, signal?: AbortSignal): Promise<ModelLease<ServedEngine>> {
    return this.host.acquire(this.resolve(name).id, { signal });
  }

  /** The engine of a resident model (loaded, or draining its requests); undefined otherwise. */
  engineOf(id: string): LlamaEngine | undefined {
    const s = this.host.registry.stateOf(id);
    return s && (s.state === "loaded" || s.state === "draining" || s.state === "unloading") ? s.handle.engine : undefined;
  }

  /** Fingerprints of the models that take new requests now (loaded or draining). */
  servingFingerprints(): string[] {
    const out: string[] = [];
    for (const m of this.catalog.models) {
      const s = this.host.registry.stateOf(m.id);
      if (s && (s.state === "loaded" || s.state === "draining")) out.push(s.handle.engine.fingerprint);
    }
    return out;
  }

  snapshots(): ModelSnapshot[] {
    return this.host.snapshots();
  }

  close(): Promise<void> {
    return this.host.close();
  }
}

/** The vocabulary size a GGUF file declares (tokenizer.ggml.tokens); undefined when it declares none. */
async function vocabularySize(file: string): Promise<number | undefined> {
  const info = await readGgufFileInfo(file, { readTensorInfo: false, logWarnings: false });
  const tokens = info.metadata.tokenizer?.ggml?.tokens;
  return Array.isArray(tokens) ? tokens.length : undefined;
}
