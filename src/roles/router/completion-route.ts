// POST /v1/completions and /v1/chat/completions: parse, give the request an id and an AbortController
// of its own (the client going away cancels this request and nothing else), dispatch it through the
// nodes, and answer as JSON or as a stream of events. A prompt over the router's character limit is
// refused before any node sees it. The request's `model` (an id or alias; none: the default model)
// is resolved to the model id it is routed by (model-directory.ts: 404 model_not_found for a model no
// node serves), and the answer's `model` is that id. Each request is tracked in the serving metrics (waiting, then
// running once its Generate is sent) and a completed one recorded with its times.
import { randomUUID } from "node:crypto";
import type http from "node:http";
import type { Logger } from "pino";
import { KvbridgeError, toKvbridgeError } from "../../errors/kvbridge-error.js";
import { failureReason, recordRouterRequest, type NodeMetrics } from "../../observability/metrics.js";
import { recordGeneration, trackRequest } from "../../observability/serving-records.js";
import { dispatchCompletion, type Dispatcher } from "./completion-dispatch.js";
import type { GenerateOutcome } from "./generate-stream.js";
import type { CompletionInput } from "./openai-api.js";
import { readJsonBody } from "./http-server.js";
import { parseChat, parseCompletion } from "./openai-api.js";
import { asModelNotFound } from "./models-routes.js";
import { completionBody, CompletionEventStream, sendError, sendJson, type CompletionIdentity, type CompletionKind } from "./openai-response.js";

export interface CompletionRoute {
  dispatcher: Dispatcher;
  metrics: NodeMetrics;
  log: Logger;
  maxBodyBytes: number;
  /** Longest prompt (characters, after the chat template) sent on to a prefill node; longer ones are refused here. */
  maxPromptChars: number;
  /** The admission gate (false while draining or closing). */
  accepting(): boolean;
  /** The model id a request's `model` names (none: the default model); throws model_not_found. */
  resolveModel(name: string | undefined): string;
  /** Waits for the model lists of nodes in rotation that never answered ListModels yet. */
  listNewNodes(): Promise<void>;
  /** Requests in flight; the route adds and removes its own. */
  active: Set<AbortController>;
  /** Told whenever a request ends (wakes a drain). */
  ended(): void;
}

/** Refused before any node is asked: a node would only tokenize it to refuse it. */
function checkPromptLength(chars: number, limit: number, kind: CompletionKind): void {
  if (chars <= limit) return;
  const param = kind === "chat" ? "messages" : "prompt";
  throw new KvbridgeError("INVALID_ARGUMENT", `the ${kind === "chat" ? "messages make a prompt" : "prompt is"} of ${chars} characters; this router accepts at most ${limit} (--max-prompt-chars)`, {
    details: { reason: "prompt_too_long", param, limit },
  });
}

/** The serving record of one completed request. */
function recordCompleted(r: CompletionRoute, model: string, input: CompletionInput, out: GenerateOutcome, t0: number): void {
  recordRouterRequest(r.metrics, "ok", out.ttft);
  recordGeneration(r.metrics, {
    model,
    promptTokens: out.promptTokens,
    generationTokens: out.completionTokens,
    finishReason: out.finishReason,
    e2eMs: performance.now() - t0,
    ttftMs: out.ttft === null ? null : out.ttft * 1000,
    itlMs: out.itlMs,
    queueMs: out.queueMs,
    prefillMs: out.prefillMs,
    decodeMs: out.decodeMs,
    maxTokens: input.maxTokens,
  });
}

export async function handleCompletion(r: CompletionRoute, req: http.IncomingMessage, res: http.ServerResponse, kind: CompletionKind): Promise<void> {
  if (!r.accepting()) throw new KvbridgeError("UNAVAILABLE", "router is draining; retry on another replica", { details: { reason: "draining" } });
  const body = await readJsonBody(req, res, r.maxBodyBytes);
  const input = kind === "chat" ? parseChat(body) : parseCompletion(body);
  checkPromptLength(input.prompt.length, r.maxPromptChars, kind);
  await r.listNewNodes();
  const model = r.resolveModel(input.model);
  const id: CompletionIdentity = {
    kind,
    id: `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID()}`,
    created: Math.floor(Date.now() / 1000),
    model: () => model,
  };
  const tracker = trackRequest(r.metrics, model);
  const t0 = performance.now();
  const hooks = { onGenerateStarted: () => tracker.running() };
  const ac = new AbortController();
  r.active.add(ac);
  // The client going away (socket closed before we finished) cancels this request and only it.
  const onClose = (): void => {
    if (!res.writableFinished) ac.abort();
  };
  res.on("close", onClose);
  try {
    if (input.stream) {
      const events = new CompletionEventStream(res, id);
      const out = await dispatchCompletion(r.dispatcher, input, id.id, ac.signal, (text) => events.text(text), hooks, model);
      events.finish(out, input.includeUsage);
      recordCompleted(r, model, input, out, t0);
    } else {
      const out = await dispatchCompletion(r.dispatcher, input, id.id, ac.signal, () => undefined, hooks, model);
      sendJson(res, 200, completionBody(id, out));
      recordCompleted(r, model, input, out, t0);
    }
  } catch (err) {
    const e = toKvbridgeError(asModelNotFound(err));
    recordRouterRequest(r.metrics, ac.signal.aborted ? "cancelled" : failureReason(e));
    if (ac.signal.aborted) {
      r.log.info({ requestId: id.id }, "client went away; request cancelled");
      return;
    }
    r.log.error({ requestId: id.id, err: e.message, code: e.code }, "request failed");
    sendError(res, e);
  } finally {
    tracker.ended();
    res.off("close", onClose);
    r.active.delete(ac);
    r.ended();
  }
}
