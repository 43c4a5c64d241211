// gRPC handlers of the Prefill service, thin: each call's request and AbortSignal go to the prefill
// role's operations (roles/prefill-role.ts), whose result or KvbridgeError answers it. Whether the
// node takes a Prefill at all (serving, draining) is the admission gate's decision, before these
// handlers; request-id logging and failure metrics are the server interceptors'.
import type { CachedPrefixRequest__Output } from "../wire/generated/kvbridge/v1/CachedPrefixRequest.js";
import type { CachedPrefixResponse } from "../wire/generated/kvbridge/v1/CachedPrefixResponse.js";
import type { DetokenizeRequest__Output } from "../wire/generated/kvbridge/v1/DetokenizeRequest.js";
import type { DetokenizeResponse } from "../wire/generated/kvbridge/v1/DetokenizeResponse.js";
import type { PlanRequest__Output } from "../wire/generated/kvbridge/v1/PlanRequest.js";
import type { PlanResponse } from "../wire/generated/kvbridge/v1/PlanResponse.js";
import type { PrefillHandlers } from "../wire/generated/kvbridge/v1/Prefill.js";
import type { PrefillRequest__Output } from "../wire/generated/kvbridge/v1/PrefillRequest.js";
import type { PrefillResponse } from "../wire/generated/kvbridge/v1/PrefillResponse.js";
import type { RenderChatRequest__Output } from "../wire/generated/kvbridge/v1/RenderChatRequest.js";
import type { RenderChatResponse } from "../wire/generated/kvbridge/v1/RenderChatResponse.js";
import type { TokenizeRequest__Output } from "../wire/generated/kvbridge/v1/TokenizeRequest.js";
import type { TokenizeResponse } from "../wire/generated/kvbridge/v1/TokenizeResponse.js";
import { callSignal, unaryHandler } from "./unary-handler.js";

/** What a prefill node does for its callers; each under the request's model ("" = the node's default). */
export interface PrefillOperations {
  /** Tokenizes and splits a prompt into chunk keys, or refuses it (prompt_too_long, with its limit). */
  plan(req: PlanRequest__Output, signal: AbortSignal): Promise<PlanResponse>;
  /** Evaluates the prompt and pushes its KV chunks to the decode node the request names. */
  prefill(req: PrefillRequest__Output, signal: AbortSignal): Promise<PrefillResponse>;
  /** A prompt's tokens (the prompt limits apply). */
  tokenize(req: TokenizeRequest__Output, signal: AbortSignal): Promise<TokenizeResponse>;
  /** The text of tokens. */
  detokenize(req: DetokenizeRequest__Output, signal: AbortSignal): Promise<DetokenizeResponse>;
  /** Chat messages as the model's prompt text, by its own chat template (engine/chat-template.ts). */
  renderChat(req: RenderChatRequest__Output, signal: AbortSignal): Promise<RenderChatResponse>;
  /** How many leading chunk keys the model's prefix cache holds now (0 when it is not loaded); never loads it. */
  cachedPrefix(req: CachedPrefixRequest__Output): Promise<CachedPrefixResponse>;
}

export function prefillHandlers(ops: PrefillOperations): PrefillHandlers {
  return {
    Plan: unaryHandler((req, call) => ops.plan(req, callSignal(call))),
    Prefill: unaryHandler((req, call) => ops.prefill(req, callSignal(call))),
    Tokenize: unaryHandler((req, call) => ops.tokenize(req, callSignal(call))),
    Detokenize: unaryHandler((req, call) => ops.detokenize(req, callSignal(call))),
    RenderChat: unaryHandler((req, call) => ops.renderChat(req, callSignal(call))),
    CachedPrefix: unaryHandler((req) => ops.cachedPrefix(req)),
  };
}
