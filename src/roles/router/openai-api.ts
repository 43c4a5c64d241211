// The OpenAI-compatible requests the router accepts, validated at the edge into one CompletionInput
// (the field at fault travels as the error's details.param, OpenAI's `param`). Chat messages are
// counted before any prompt is built from them. Sampling, logprobs and response_format are checked
// with the engine's validators (openai-params.ts); fields kvbridge cannot honour are refused there.
import { builtinChatPrompt } from "../../engine/builtin-chat-format.js";
import { MAX_CHAT_MESSAGES } from "../../config/defaults.js";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { decodingFields, refuseUnsupported, type DecodingFields, type LogprobsRequest } from "./openai-params.js";

export interface CompletionInput {
  kind: "completion" | "chat";
  prompt: string;
  maxTokens: number;
  stop: string[];
  stream: boolean;
  model: string | undefined;
  includeUsage: boolean;
  /** Sampling, logprobs and response format, as the Generate request's fields (absent: greedy, free text). */
  decoding?: DecodingFields;
  /** Present when the client asked for log-probabilities: the shape of the answer's and how many alternatives. */
  logprobs?: LogprobsRequest;
  /** A chat's validated messages: the prefill node renders them with its model's chat template (RenderChat), which replaces `prompt`. */
  messages?: Array<{ role: string; content: string }>;
}

export const DEFAULT_MAX_TOKENS = 16;
export const MAX_MAX_TOKENS = 8192;

function bad(message: string, param?: string): KvbridgeError {
  return new KvbridgeError("INVALID_ARGUMENT", message, { details: param ? { param } : undefined });
}

function commonFields(body: Record<string, unknown>, kind: CompletionInput["kind"]): Pick<CompletionInput, "maxTokens" | "stop" | "stream" | "model" | "includeUsage" | "decoding" | "logprobs"> {
  refuseUnsupported(body, kind);
  // Errors name the field the client sent (max_completion_tokens is chat's current name).
  const sent = body.max_completion_tokens !== undefined && body.max_completion_tokens !== null ? "max_completion_tokens" : "max_tokens";
  const mt = body[sent] ?? DEFAULT_MAX_TOKENS;
  if (typeof mt !== "number" || !Number.isInteger(mt) || mt < 1 || mt > MAX_MAX_TOKENS) {
    throw bad(`${sent} must be an integer in 1..${MAX_MAX_TOKENS}`, sent);
  }
  let stop: string[] = [];
  if (typeof body.stop === "string") stop = [body.stop];
  else if (Array.isArray(body.stop)) {
    if (!body.stop.every((s) => typeof s === "string") || body.stop.length > 4) throw bad("stop must be a string or up to 4 strings", "stop");
    stop = body.stop as string[];
  } else if (body.stop !== undefined && body.stop !== null) throw bad("stop must be a string or an array of strings", "stop");
  stop = stop.filter((s) => s.length > 0);
  if (body.stream !== undefined && typeof body.stream !== "boolean") throw bad("stream must be a boolean", "stream");
  if (body.model !== undefined && typeof body.model !== "string") throw bad("model must be a string", "model");
  const so = body.stream_options as { include_usage?: unknown } | undefined;
  const { decoding, logprobs } = decodingFields(body, kind);
  return { maxTokens: mt, stop, stream: body.stream === true, model: body.model as string | undefined, includeUsage: so?.include_usage === true, decoding, ...(logprobs ? { logprobs } : {}) };
}

export function parseCompletion(body: unknown): CompletionInput {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw bad("the request body must be a JSON object");
  const b = body as Record<string, unknown>;
  let prompt = b.prompt;
  if (Array.isArray(prompt)) {
    if (prompt.length !== 1 || typeof prompt[0] !== "string") throw bad("prompt must be a string or an array of one string", "prompt");
    prompt = prompt[0];
  }
  if (typeof prompt !== "string" || prompt.length === 0) throw bad("prompt must be a non-empty string", "prompt");
  return { kind: "completion", prompt, ...commonFields(b, "completion") };
}

/**
 * A chat in kvbridge's builtin format: what the router measures and sends when the prefill node cannot
 * render the model's own template (the node renders it otherwise: docs/api.md).
 */
export const chatPrompt = builtinChatPrompt;

export function parseChat(body: unknown): CompletionInput {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw bad("the request body must be a JSON object");
  const b = body as Record<string, unknown>;
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw bad("messages must be a non-empty array", "messages");
  if (b.messages.length > MAX_CHAT_MESSAGES) {
    throw new KvbridgeError("INVALID_ARGUMENT", `messages holds ${b.messages.length} messages; at most ${MAX_CHAT_MESSAGES} are accepted`, {
      details: { reason: "prompt_too_long", param: "messages", limit: MAX_CHAT_MESSAGES },
    });
  }
  const fields = commonFields(b, "chat");
  const messages = b.messages.map((m, i) => chatMessage(m, i));
  return { kind: "chat", prompt: chatPrompt(messages), messages, ...fields };
}

/**
 * One chat message as role and text. Text parts are joined; any other part (image, audio, file) and
 * the turns of function calling (an assistant's tool_calls, tool results) are refused naming the
 * message, since kvbridge can honour neither.
 */
function chatMessage(m: unknown, i: number): { role: string; content: string } {
  const msg = m as { role?: unknown; content?: unknown; tool_calls?: unknown; function_call?: unknown };
  if (!msg || typeof msg !== "object" || typeof msg.role !== "string" || !["system", "user", "assistant", "developer", "tool", "function"].includes(msg.role)) {
    throw bad(`messages[${i}].role must be system, developer, user or assistant`, `messages[${i}].role`);
  }
  if (msg.role === "tool" || msg.role === "function") {
    throw bad(`messages[${i}] is a ${msg.role} result; kvbridge does no function calling, so tool results cannot be sent`, `messages[${i}].role`);
  }
  if (msg.tool_calls !== undefined && msg.tool_calls !== null && !(Array.isArray(msg.tool_calls) && msg.tool_calls.length === 0)) {
    throw bad(`messages[${i}].tool_calls: kvbridge does no function calling, so assistant tool calls cannot be sent`, `messages[${i}].tool_calls`);
  }
  if (msg.function_call !== undefined && msg.function_call !== null) {
    throw bad(`messages[${i}].function_call: kvbridge does no function calling`, `messages[${i}].function_call`);
  }
  let content = msg.content;
  if (Array.isArray(content)) {
    content = content
      .map((p: unknown, j) => {
        const part = p as { type?: unknown; text?: unknown; refusal?: unknown };
        if (part?.type === "text" && typeof part.text === "string") return part.text;
        if (part?.type === "refusal" && typeof part.refusal === "string" && msg.role === "assistant") return part.refusal;
        throw bad(`messages[${i}].content[${j}] is of type ${JSON.stringify(part?.type)}; kvbridge's models take text parts only`, `messages[${i}].content[${j}].type`);
      })
      .join("");
  }
  if (typeof content !== "string") throw bad(`messages[${i}].content must be a string or an array of text parts`, `messages[${i}].content`);
  return { role: msg.role, content };
}
