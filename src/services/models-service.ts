// gRPC handlers of the Models service over a node's models (prefill and decode nodes): the catalog
// with each model's state, declarative loads and idempotent unloads. The decisions (one load per
// model, no unload under requests, eviction) are the model host's; here only the wire's shapes:
// options in (0 is unset, an absent message is "whatever it is loaded with") and snapshots out.
import type * as grpc from "@grpc/grpc-js";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { NodeModels } from "../models/node-models.js";
import { validateModelOptions, type ModelLoadOptions } from "../models/model-options.js";
import type { ModelSnapshot } from "../models/model-state.js";
import type { ModelInfo } from "../wire/generated/kvbridge/v1/ModelInfo.js";
import type { ModelLoadOptions__Output } from "../wire/generated/kvbridge/v1/ModelLoadOptions.js";
import type { ModelsHandlers } from "../wire/generated/kvbridge/v1/Models.js";
import { toServiceError } from "../wire/error-status.js";
import { callSignal, unaryHandler } from "./unary-handler.js";

export interface ModelsServiceOptions {
  nodeId: string;
  role: "prefill" | "decode";
}

/** Wire options to load options: 0 (proto3's unset) is unset; each set one checked in its range. */
export function optionsFromWire(o: ModelLoadOptions__Output | null): ModelLoadOptions | undefined {
  if (o === null) return undefined;
  return validateModelOptions(
    {
      contextSize: o.contextSize || undefined,
      threads: o.threads || undefined,
      maxSequences: o.maxSequences || undefined,
      chunkTokens: o.chunkTokens || undefined,
    },
    "options",
  );
}

/** One model as the wire says it: its snapshot, its engine's fingerprint while resident, and whether it is the default. */
export function modelInfo(models: NodeModels, s: ModelSnapshot): ModelInfo {
  const engine = models.engineOf(s.id);
  return {
    id: s.id,
    aliases: [...s.aliases],
    state: s.state,
    fingerprint: engine?.fingerprint ?? "",
    options: s.options
      ? { contextSize: s.options.contextSize ?? 0, threads: s.options.threads ?? 0, maxSequences: s.options.maxSequences ?? 0, chunkTokens: s.options.chunkTokens ?? 0 }
      : null,
    requestsInFlight: s.requestsInFlight,
    lastUsedMs: s.lastUsedMs ?? 0,
    failure: s.failure ? { code: s.failure.code, message: s.failure.message } : null,
    loads: s.loads,
    isDefault: s.id === models.defaultModel,
    path: s.path,
    contextSize: engine?.contextSize ?? 0,
  };
}

function requireModel(name: string): string {
  if (name === "") throw new KvbridgeError("INVALID_ARGUMENT", "model is empty: name the model to load or unload", { details: { param: "model" } });
  return name;
}

export function modelsHandlers(models: NodeModels, o: ModelsServiceOptions): ModelsHandlers {
  return {
    ListModels: unaryHandler(() => ({
      models: models.snapshots().map((s) => modelInfo(models, s)),
      defaultModel: models.defaultModel,
      nodeId: o.nodeId,
      role: o.role,
      modelsMax: models.maxResident,
    })),
    LoadModel: unaryHandler(async (req, call) => {
      const spec = models.resolve(requireModel(req.model));
      const snapshot = await models.host.ensureLoaded(spec.id, optionsFromWire(req.options), { signal: callSignal(call) });
      return { model: modelInfo(models, snapshot) };
    }),
    UnloadModel: unaryHandler(async (req, call) => {
      const spec = models.resolve(requireModel(req.model));
      const snapshot = await models.host.unload(spec.id, { signal: callSignal(call) });
      return { model: modelInfo(models, snapshot) };
    }),
  };
}

/** The Models service of a node whose models may not be attached yet (its one engine still loading). */
export function deferredModelsHandlers(models: () => NodeModels | undefined, o: ModelsServiceOptions): ModelsHandlers {
  const loading = (): Partial<grpc.StatusObject> =>
    toServiceError(new KvbridgeError("UNAVAILABLE", "the node's engine is still loading; retry shortly", { details: { reason: "loading" } }));
  let cached: { m: NodeModels; h: ModelsHandlers } | undefined;
  const current = (): ModelsHandlers | undefined => {
    const m = models();
    if (m && cached?.m !== m) cached = { m, h: modelsHandlers(m, o) };
    return m ? cached!.h : undefined;
  };
  return {
    ListModels: (call, callback) => {
      const h = current();
      if (h) h.ListModels(call, callback);
      else callback(loading());
    },
    LoadModel: (call, callback) => {
      const h = current();
      if (h) h.LoadModel(call, callback);
      else callback(loading());
    },
    UnloadModel: (call, callback) => {
      const h = current();
      if (h) h.UnloadModel(call, callback);
      else callback(loading());
    },
  };
}
