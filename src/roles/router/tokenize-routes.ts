// POST /tokenize and POST /detokenize, in vLLM's shapes, answered by a prefill node serving the model
// (its Tokenize / Detokenize): tokenize {model?, prompt} or {model?, messages} (rendered by that node's
// RenderChat, the model's own chat template, as the chat completions are) -> {count, max_model_len,
// tokens}; detokenize {model?, tokens} -> {prompt}. The
// model is loaded first (LoadModel without options: at once when it is), which also gives
// max_model_len, the model's context size on that node.
import type http from "node:http";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import type { DetokenizeRequest } from "../../wire/generated/kvbridge/v1/DetokenizeRequest.js";
import type { DetokenizeResponse__Output } from "../../wire/generated/kvbridge/v1/DetokenizeResponse.js";
import type { ChatMessage } from "../../wire/generated/kvbridge/v1/ChatMessage.js";
import type { ModelInfo__Output } from "../../wire/generated/kvbridge/v1/ModelInfo.js";
import type { RenderChatRequest } from "../../wire/generated/kvbridge/v1/RenderChatRequest.js";
import type { RenderChatResponse__Output } from "../../wire/generated/kvbridge/v1/RenderChatResponse.js";
import type { TokenizeRequest } from "../../wire/generated/kvbridge/v1/TokenizeRequest.js";
import type { TokenizeResponse__Output } from "../../wire/generated/kvbridge/v1/TokenizeResponse.js";
import type { CallOptions } from "../../wire/unary-call.js";
import { readJsonBody } from "./http-server.js";
import type { ModelDirectory } from "./model-directory.js";
import { parseChat } from "./openai-api.js";
import { sendJson } from "./openai-response.js";
import { reservePrefill, servingTargets, type NodeStates } from "./routing-policy.js";

export interface TokenizeActions {
  loadModel(target: string, req: { model: string }, opts: CallOptions): Promise<ModelInfo__Output>;
  tokenize(target: string, req: TokenizeRequest, opts: CallOptions): Promise<TokenizeResponse__Output>;
  detokenize(target: string, req: DetokenizeRequest, opts: CallOptions): Promise<DetokenizeResponse__Output>;
  renderChat(target: string, req: RenderChatRequest, opts: CallOptions): Promise<RenderChatResponse__Output>;
}

export interface TokenizeRoute {
  directory: ModelDirectory;
  nodes: NodeStates;
  prefillTargets(): readonly string[];
  upstream: TokenizeActions;
  maxBodyBytes: number;
  /** Bound on one node call (a load included). */
  callTimeoutMs: number;
  /** Longest prompt accepted, in characters (the completions' --max-prompt-chars). */
  maxPromptChars: number;
}

function bad(message: string, param?: string): KvbridgeError {
  return new KvbridgeError("INVALID_ARGUMENT", message, { details: param ? { param } : undefined });
}

function jsonObject(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw bad("the request body must be a JSON object");
  return body as Record<string, unknown>;
}

function modelName(b: Record<string, unknown>): string | undefined {
  if (b.model === undefined || b.model === null) return undefined;
  if (typeof b.model !== "string") throw bad("model must be a string", "model");
  return b.model;
}

/** A prefill node of the model, reserved while `call` runs on it (the model loaded on it first). */
async function onPrefillOf<T>(r: TokenizeRoute, model: string, call: (target: string, info: ModelInfo__Output) => Promise<T>): Promise<T> {
  const node = reservePrefill(r.nodes, servingTargets(r.nodes, r.prefillTargets(), model));
  if (!node) throw new KvbridgeError("UNAVAILABLE", `no prefill node of model ${JSON.stringify(model)} is in rotation`);
  try {
    const info = await r.upstream.loadModel(node.target, { model }, { timeoutMs: r.callTimeoutMs, waitForReady: node.inRotation });
    return await call(node.target, info);
  } finally {
    node.release();
  }
}

export async function handleTokenize(r: TokenizeRoute, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const b = jsonObject(await readJsonBody(req, res, r.maxBodyBytes));
  const model = r.directory.resolve(modelName(b));
  let prompt: string | undefined;
  let messages: ChatMessage[] | undefined;
  if (b.messages !== undefined) {
    if (b.prompt !== undefined) throw bad("give either prompt or messages, not both", "prompt");
    messages = parseChat({ messages: b.messages }).messages;
  } else {
    if (typeof b.prompt !== "string") throw bad("prompt must be a string (or give messages)", "prompt");
    prompt = checkLength(r, b.prompt, "prompt");
  }
  const ast = b.add_special_tokens;
  if (ast !== undefined && typeof ast !== "boolean") throw bad("add_special_tokens must be a boolean", "add_special_tokens");
  const out = await onPrefillOf(r, model, async (target, info) => {
    // A chat's tokens are those of the prompt its completion would get: the node's model's own template.
    const text = prompt ?? checkLength(r, (await r.upstream.renderChat(target, { model, messages }, { timeoutMs: r.callTimeoutMs })).prompt, "messages");
    const t = await r.upstream.tokenize(target, { model, prompt: text, addSpecial: ast ?? true }, { timeoutMs: r.callTimeoutMs });
    return { count: t.tokens.length, max_model_len: info.contextSize, tokens: t.tokens };
  });
  sendJson(res, 200, out);
}

/** The prompt (or a chat's rendered prompt) within the router's --max-prompt-chars. */
function checkLength(r: TokenizeRoute, prompt: string, param: string): string {
  if (prompt.length > r.maxPromptChars) {
    throw new KvbridgeError("INVALID_ARGUMENT", `the ${param} of ${prompt.length} characters is over this router's ${r.maxPromptChars} (--max-prompt-chars)`, {
      details: { reason: "prompt_too_long", param, limit: r.maxPromptChars },
    });
  }
  return prompt;
}

export async function handleDetokenize(r: TokenizeRoute, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const b = jsonObject(await readJsonBody(req, res, r.maxBodyBytes));
  const model = r.directory.resolve(modelName(b));
  const tokens = b.tokens;
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === "number" && Number.isInteger(t) && t >= 0 && t <= 0xffff_ffff)) {
    throw bad("tokens must be an array of token ids (non-negative integers)", "tokens");
  }
  const out = await onPrefillOf(r, model, async (target) => {
    const d = await r.upstream.detokenize(target, { model, tokens: tokens as number[] }, { timeoutMs: r.callTimeoutMs });
    return { prompt: d.text };
  });
  sendJson(res, 200, out);
}
