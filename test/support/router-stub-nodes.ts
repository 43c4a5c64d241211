// Scripted prefill and decode nodes for router tests: real gRPC servers on loopback (kvbridge's own
// startGrpcServer, so grpc.health.v1 is the nodes' own), whose Plan, Prefill, MatchPrefix and
// Generate answer as the test says (answer, refuse with an error and details, or never answer), and
// which count every call they receive. Both serve a Models service (one model, "stub-model", loaded,
// fingerprint "stub", unless the script lists others) and the prefill stub Tokenize/Detokenize (one
// token per character of the prompt, its code point), RenderChat (kvbridge's builtin chat format) and
// CachedPrefix (0 chunks, unless the script answers).
import type * as grpc from "@grpc/grpc-js";
import type { ServingStatus } from "grpc-health-check";
import { builtinChatPrompt } from "../../src/engine/chat-template.js";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { startGrpcServer, type NodeGrpcServer } from "../../src/services/grpc-server.js";
import { unaryHandler } from "../../src/services/unary-handler.js";
import type { CachedPrefixRequest__Output } from "../../src/wire/generated/kvbridge/v1/CachedPrefixRequest.js";
import type { CachedPrefixResponse } from "../../src/wire/generated/kvbridge/v1/CachedPrefixResponse.js";
import type { DecodeHandlers } from "../../src/wire/generated/kvbridge/v1/Decode.js";
import type { GenerateEvent } from "../../src/wire/generated/kvbridge/v1/GenerateEvent.js";
import type { GenerateRequest__Output } from "../../src/wire/generated/kvbridge/v1/GenerateRequest.js";
import type { ModelInfo } from "../../src/wire/generated/kvbridge/v1/ModelInfo.js";
import type { ModelsHandlers } from "../../src/wire/generated/kvbridge/v1/Models.js";
import type { PlanRequest__Output } from "../../src/wire/generated/kvbridge/v1/PlanRequest.js";
import type { PlanResponse } from "../../src/wire/generated/kvbridge/v1/PlanResponse.js";
import type { PrefillHandlers } from "../../src/wire/generated/kvbridge/v1/Prefill.js";
import type { PrefillRequest__Output } from "../../src/wire/generated/kvbridge/v1/PrefillRequest.js";
import type { RenderChatRequest__Output } from "../../src/wire/generated/kvbridge/v1/RenderChatRequest.js";
import { kvbridgeV1 } from "../../src/wire/proto.js";

export interface StubCalls {
  plan: number;
  prefill: number;
  matchPrefix: number;
  generate: number;
  loadModel: number;
  tokenize: number;
  cachedPrefix: number;
}

export interface StubNode {
  target: string;
  calls: StubCalls;
  setServing(status: ServingStatus): void;
  close(): Promise<void>;
}

/** A Plan that never answers (held until the call is cancelled or the server closes). */
export const NEVER = Symbol("never");

/** What both stubs' Models service lists (default: stub-model, loaded, fingerprint "stub"). */
export interface StubModelsScript {
  models?: ModelInfo[];
}

export const STUB_MODEL: ModelInfo = { id: "stub-model", aliases: [], state: "loaded", fingerprint: "stub", isDefault: true, contextSize: 128 };

export interface StubPrefillScript extends StubModelsScript {
  plan?(req: PlanRequest__Output): PlanResponse | typeof NEVER;
  /** CachedPrefix: how many leading keys this node says it holds (default 0), or never answer. */
  cachedPrefix?(req: CachedPrefixRequest__Output): number | typeof NEVER;
  /** Prefill: called with each request (e.g. to record which node got it). */
  prefill?(req: PrefillRequest__Output): void;
}

export interface StubDecodeScript extends StubModelsScript {
  /** Generate: write these events, then end the stream, or (hang) keep it open and silent. */
  generate?(req: GenerateRequest__Output): { events: GenerateEvent[]; hang: boolean };
}

function counters(): StubCalls {
  return { plan: 0, prefill: 0, matchPrefix: 0, generate: 0, loadModel: 0, tokenize: 0, cachedPrefix: 0 };
}

function modelsService(role: string, script: StubModelsScript, calls: StubCalls): { name: string; definition: grpc.ServiceDefinition; implementation: ModelsHandlers } {
  const models = script.models ?? [STUB_MODEL];
  const find = (name: string): ModelInfo => {
    const m = models.find((x) => x.id === name || x.aliases?.includes(name));
    if (!m) throw new KvbridgeError("NOT_FOUND", `model ${name} is not served here`, { details: { reason: "model_not_found", param: "model" } });
    return m;
  };
  const implementation: ModelsHandlers = {
    ListModels: unaryHandler(() => ({ models, defaultModel: models.find((m) => m.isDefault)?.id ?? models[0]?.id ?? "", nodeId: `stub-${role}`, role, modelsMax: 4 })),
    LoadModel: unaryHandler((req: { model: string }) => {
      calls.loadModel++;
      return { model: find(req.model) };
    }),
    UnloadModel: unaryHandler((req: { model: string }) => ({ model: find(req.model) })),
  };
  return { name: "kvbridge.v1.Models", definition: kvbridgeV1().Models.service, implementation };
}

async function serve(
  name: string,
  definition: grpc.ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
  held: Set<() => void>,
  models: { name: string; definition: grpc.ServiceDefinition; implementation: ModelsHandlers },
): Promise<NodeGrpcServer> {
  const server = await startGrpcServer({ host: "127.0.0.1", port: 0 }, [{ name, definition, implementation }, models]);
  server.setServing("SERVING");
  const close = server.close.bind(server);
  return {
    ...server,
    close: async (graceMs?: number) => {
      for (const release of held) release();
      await close(graceMs ?? 100);
    },
  };
}

export async function startStubPrefill(script: StubPrefillScript = {}): Promise<StubNode> {
  const calls = counters();
  const held = new Set<() => void>();
  const hold = <T>(): Promise<T> =>
    new Promise<T>((_resolve, reject) => {
      const release = (): void => {
        held.delete(release);
        reject(new KvbridgeError("UNAVAILABLE", "stub closed"));
      };
      held.add(release);
    });
  const plan = (req: PlanRequest__Output): Promise<PlanResponse> => {
    const answer = script.plan?.(req) ?? { promptTokens: 4, keys: ["k0"], fingerprint: "stub", modelId: "stub-model" };
    return answer === NEVER ? hold<PlanResponse>() : Promise.resolve(answer);
  };
  const cachedPrefix = (req: CachedPrefixRequest__Output): Promise<CachedPrefixResponse> => {
    const chunks = script.cachedPrefix?.(req) ?? 0;
    return chunks === NEVER ? hold<CachedPrefixResponse>() : Promise.resolve({ chunks });
  };
  const handlers: PrefillHandlers = {
    Plan: unaryHandler((req: PlanRequest__Output) => {
      calls.plan++;
      return plan(req);
    }),
    Prefill: unaryHandler((req: PrefillRequest__Output) => {
      calls.prefill++;
      script.prefill?.(req);
      return { promptTokens: 4, chunks: 1, chunksDeduped: 0, bytesSent: 0, transport: "tcp", evalMs: 0, transferMs: 0 };
    }),
    Tokenize: unaryHandler((req: { model: string; prompt: string }) => {
      calls.tokenize++;
      return { tokens: [...req.prompt].map((c) => c.codePointAt(0)!), modelId: req.model || "stub-model" };
    }),
    Detokenize: unaryHandler((req: { model: string; tokens: number[] }) => ({ text: String.fromCodePoint(...req.tokens), modelId: req.model || "stub-model" })),
    // kvbridge's builtin chat format, as a node whose model has no chat template answers.
    RenderChat: unaryHandler((req: RenderChatRequest__Output) => ({ prompt: builtinChatPrompt(req.messages), template: "builtin", modelId: req.model || "stub-model", fingerprint: "stub" })),
    CachedPrefix: unaryHandler((req: CachedPrefixRequest__Output) => {
      calls.cachedPrefix++;
      return cachedPrefix(req);
    }),
  };
  const server = await serve("kvbridge.v1.Prefill", kvbridgeV1().Prefill.service, handlers, held, modelsService("prefill", script, calls));
  return { target: server.address, calls, setServing: (s) => server.setServing(s), close: () => server.close() };
}

export async function startStubDecode(script: StubDecodeScript = {}): Promise<StubNode> {
  const calls = counters();
  const held = new Set<() => void>();
  const handlers: DecodeHandlers = {
    MatchPrefix: unaryHandler(() => {
      calls.matchPrefix++;
      return { matched: 0 };
    }),
    Generate: (call) => {
      calls.generate++;
      const { events, hang } = script.generate?.(call.request) ?? { events: [{ text: "ok", done: true, finishReason: "length", promptTokens: 4, completionTokens: 1 }], hang: false };
      for (const ev of events) call.write(ev);
      if (!hang) {
        call.end();
        return;
      }
      const release = (): void => {
        held.delete(release);
        call.end();
      };
      held.add(release);
      call.on("cancelled", release);
    },
  };
  const server = await serve("kvbridge.v1.Decode", kvbridgeV1().Decode.service, handlers, held, modelsService("decode", script, calls));
  return { target: server.address, calls, setServing: (s) => server.setServing(s), close: () => server.close() };
}
