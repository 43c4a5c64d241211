// The OpenAI-compatible requests the router accepts, validated at the edge into one CompletionInput
// (the field at fault travels as the error's details.param, OpenAI's `param`). Chat messages are
// counted before any prompt is built from them.
import { MAX_CHAT_MESSAGES } from "../../config/defaults.js";
import { KvbridgeError } from "../../errors/kvbridge-error.js";

export interface CompletionInput {
  kind: "completion" | "chat";
  prompt: string;
  maxTokens: number;
  stop: string[];
  stream: boolean;
  model: string | undefined;
  includeUsage: boolean;
}

export const DEFAULT_MAX_TOKENS = 16;
export const MAX_MAX_TOKENS = 8192;

function bad(message: string, param?: string): KvbridgeError {
  return new KvbridgeError("INVALID_ARGUMENT", message, { details: param ? { param } : undefined });
}

function commonFields(body: Record<string, unknown>): Pick<CompletionInput, "maxTokens" | "stop" | "stream" | "model" | "includeUsage"> {
  const mt = body.max_tokens ?? body.max_completion_tokens ?? DEFAULT_MAX_TOKENS;
  if (typeof mt !== "number" || !Number.isInteger(mt) || mt < 1 || mt > MAX_MAX_TOKENS) {
    throw bad(`max_tokens must be an integer in 1..${MAX_MAX_TOKENS}`, "max_tokens");
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
  if (body.n !== undefined && body.n !== 1) throw bad("only n = 1 is supported", "n");
  const so = body.stream_options as { include_usage?: unknown } | undefined;
  return { maxTokens: mt, stop, stream: body.stream === true, model: body.model as string | undefined, includeUsage: so?.include_usage === true };
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
  return { kind: "completion", prompt, ...commonFields(b) };
}

/**
 * Chat messages become one prompt through a fixed plain-text template. Both nodes tokenize the same
 * text, so the template only has to be deterministic; it is documented in docs/architecture.md.
 */
export function chatPrompt(messages: ReadonlyArray<{ role: string; content: string }>): string {
  return messages.map((m) => `<|${m.role}|>\n${m.content}\n`).join("") + "<|assistant|>\n";
}

export function parseChat(body: unknown): CompletionInput {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw bad("the request body must be a JSON object");
  const b = body as Record<string, unknown>;
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw bad("messages must be a non-empty array", "messages");
  if (b.messages.length > MAX_CHAT_MESSAGES) {
    throw new KvbridgeError("INVALID_ARGUMENT", `messages holds ${b.messages.length} messages; at most ${MAX_CHAT_MESSAGES} are accepted`, {
      details: { reason: "prompt_too_long", param: "messages", limit: MAX_CHAT_MESSAGES },
    });
  }
  const messages = b.messages.map((m, i) => {
    const msg = m as { role?: unknown; content?: unknown };
    if (!msg || typeof msg.role !== "string" || !["system", "user", "assistant", "developer", "tool"].includes(msg.role)) {
      throw bad(`messages[${i}].role must be system, user, assistant, developer or tool`, "messages");
    }
    let content = msg.content;
    if (Array.isArray(content)) {
      content = content.map((p: { type?: string; text?: string }) => (p?.type === "text" && typeof p.text === "string" ? p.text : "")).join("");
    }
    if (typeof content !== "string") throw bad(`messages[${i}].content must be a string`, "messages");
    return { role: msg.role, content };
  });
  return { kind: "chat", prompt: chatPrompt(messages), ...commonFields(b) };
}
