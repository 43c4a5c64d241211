// The OpenAI-compatible answers the router writes: a whole completion as JSON, a streamed one as
// server-sent events (chunks, the finish, optional usage, [DONE]), and errors in OpenAI's shape, as
// a status before the stream starts or as a last SSE event once it has. Errors of the HTTP edge
// keep their own status (401, 404, 405, 413, 415); every message sent has node addresses replaced.
// Log-probabilities, when the request asked for them, in the completions or chat shape (streamed:
// one chunk carrying them before the finish); system_fingerprint names the model's fingerprint.
import type http from "node:http";
import { toKvbridgeError } from "../../errors/kvbridge-error.js";
import { httpStatusOf } from "../../wire/error-status.js";
import type { GenerateOutcome } from "./generate-stream.js";
import { HttpEdgeError } from "./http-errors.js";
import { redactNodeAddresses } from "./http-redact.js";
import { chatLogprobs, completionLogprobs } from "./openai-logprobs.js";

export type CompletionKind = "completion" | "chat";

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export function openAiError(message: string, type: string, code: string | null, param: string | null = null): OpenAiErrorBody {
  return { error: { message, type, param, code } };
}

/** Any error as its HTTP status and OpenAI body; `param` is the field the error names, if any. */
export function errorResponse(err: unknown): { status: number; body: OpenAiErrorBody; headers: Readonly<Record<string, string>> } {
  const e = toKvbridgeError(err);
  const edge = e instanceof HttpEdgeError ? e : undefined;
  const status = edge?.status ?? httpStatusOf(e.code);
  // A refused prompt names its reason (prompt_too_long, context_overflow) as the code a client branches on.
  const code = edge?.openAiCode ?? (e.code === "INVALID_ARGUMENT" && e.details.reason ? e.details.reason : e.code.toLowerCase());
  const message = redactNodeAddresses(e.message);
  return { status, body: openAiError(message, status < 500 ? "invalid_request_error" : "server_error", code, e.details.param ?? null), headers: edge?.headers ?? {} };
}

export function openAiFinishReason(r: string): "stop" | "length" {
  return r === "length" ? "length" : "stop";
}

function usage(r: GenerateOutcome): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens };
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  if (res.headersSent) return;
  const data = JSON.stringify(body);
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

/** An error as a JSON response, or, when a stream has already started, as its last SSE event. */
export function sendError(res: http.ServerResponse, err: unknown): void {
  const { status, body, headers } = errorResponse(err);
  if (!res.headersSent) return sendJson(res, status, body, headers);
  if (!res.writableEnded) res.end(`data: ${JSON.stringify(body)}\n\n`);
}

/** Identity of one completion's answer: every chunk and the whole body carry it. */
export interface CompletionIdentity {
  kind: CompletionKind;
  id: string;
  created: number;
  /** Read when written: known once the first Plan answered. */
  model(): string;
}

/** The model's fingerprint as OpenAI's system_fingerprint ("fp_" and its first 16 hex digits), null when unknown. */
export function systemFingerprint(r: GenerateOutcome): string | null {
  return r.fingerprint ? `fp_${r.fingerprint.slice(0, 16)}` : null;
}

function logprobsOf(kind: CompletionKind, r: GenerateOutcome): object | null {
  if (!r.logprobs || r.logprobs.length === 0) return null;
  return kind === "chat" ? chatLogprobs(r.logprobs) : completionLogprobs(r.logprobs);
}

export function completionBody(c: CompletionIdentity, r: GenerateOutcome): object {
  const finish = openAiFinishReason(r.finishReason);
  const logprobs = logprobsOf(c.kind, r);
  const choice =
    c.kind === "chat"
      ? { index: 0, message: { role: "assistant", content: r.text, refusal: null }, logprobs, finish_reason: finish }
      : { index: 0, text: r.text, logprobs, finish_reason: finish };
  return {
    id: c.id,
    object: c.kind === "chat" ? "chat.completion" : "text_completion",
    created: c.created,
    model: c.model(),
    system_fingerprint: systemFingerprint(r),
    choices: [choice],
    usage: usage(r),
  };
}

/** A streamed completion: the head and (chat) the role chunk are written with the first text, or at the end. */
export class CompletionEventStream {
  private started = false;

  constructor(
    private readonly res: http.ServerResponse,
    private readonly c: CompletionIdentity,
  ) {}

  text(text: string): void {
    this.start();
    this.event(this.chunk(text, null));
  }

  finish(r: GenerateOutcome, includeUsage: boolean): void {
    this.start();
    const logprobs = logprobsOf(this.c.kind, r);
    // The decode node reports log-probabilities with its last event: one chunk carries them all.
    if (logprobs) {
      this.event(
        this.c.kind === "chat"
          ? { ...this.head(), choices: [{ index: 0, delta: { content: "" }, logprobs, finish_reason: null }] }
          : { ...this.head(), choices: [{ index: 0, text: "", logprobs, finish_reason: null }] },
      );
    }
    this.event({ ...this.chunk("", openAiFinishReason(r.finishReason)), system_fingerprint: systemFingerprint(r) });
    if (includeUsage) this.event({ ...this.head(), choices: [], usage: usage(r) });
    this.res.end("data: [DONE]\n\n");
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-request-id": this.c.id });
    if (this.c.kind === "chat") this.event({ ...this.head(), choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] });
  }

  private head(): { id: string; object: string; created: number; model: string } {
    return { id: this.c.id, object: this.c.kind === "chat" ? "chat.completion.chunk" : "text_completion", created: this.c.created, model: this.c.model() };
  }

  private chunk(text: string, finish: string | null): object {
    return this.c.kind === "chat"
      ? { ...this.head(), choices: [{ index: 0, delta: finish ? {} : { content: text }, finish_reason: finish }] }
      : { ...this.head(), choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] };
  }

  private event(body: object): void {
    this.res.write(`data: ${JSON.stringify(body)}\n\n`);
  }
}
