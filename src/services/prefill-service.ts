// gRPC handlers of the Prefill service, thin: each call's request and AbortSignal go to the prefill
// role's operations (roles/prefill-role.ts), whose result or KvbridgeError answers it. Whether the
// node takes a Prefill at all (serving, draining) is the admission gate's decision, before these
// handlers; request-id logging and failure metrics are the server interceptors'.
import type { PrefillHandlers } from "../wire/generated/kvbridge/v1/Prefill.js";
import type { PlanResponse } from "../wire/generated/kvbridge/v1/PlanResponse.js";
import type { PrefillRequest__Output } from "../wire/generated/kvbridge/v1/PrefillRequest.js";
import type { PrefillResponse } from "../wire/generated/kvbridge/v1/PrefillResponse.js";
import { callSignal, unaryHandler } from "./unary-handler.js";

/** What a prefill node does for its callers. */
export interface PrefillOperations {
  /** Tokenizes and splits a prompt into chunk keys, or refuses it (prompt_too_long, with its limit). */
  plan(prompt: string, signal: AbortSignal): Promise<PlanResponse>;
  /** Evaluates the prompt and pushes its KV chunks to the decode node the request names. */
  prefill(req: PrefillRequest__Output, signal: AbortSignal): Promise<PrefillResponse>;
}

export function prefillHandlers(ops: PrefillOperations): PrefillHandlers {
  return {
    Plan: unaryHandler((req, call) => ops.plan(req.prompt, callSignal(call))),
    Prefill: unaryHandler((req, call) => ops.prefill(req, callSignal(call))),
  };
}
