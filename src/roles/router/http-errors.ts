// Errors of the router's HTTP edge itself (before any node is asked): each carries the HTTP status
// and the OpenAI `code` it is answered with, so 401, 404, 405, 413 and 415 are told apart by
// programs without reading messages. The KvbridgeError code keeps the gRPC-side meaning.
import { KvbridgeError, type ErrorCode } from "../../errors/kvbridge-error.js";

/** Longest piece of a client's request (a path, a content type) quoted back in a message. */
const MAX_QUOTED_CHARS = 200;

/**
 * Built without a stack trace: these answer clients' mistakes (a 404 scan, a bad key), the stack
 * says nothing, and capturing it was most of the cost of a 404.
 */
function stackless(make: () => HttpEdgeError): HttpEdgeError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export class HttpEdgeError extends KvbridgeError {
  constructor(
    readonly status: number,
    readonly openAiCode: string,
    code: ErrorCode,
    message: string,
    /** Extra response headers (Allow on a 405, WWW-Authenticate on a 401). */
    readonly headers: Readonly<Record<string, string>> = {},
    limit?: number,
  ) {
    super(code, message, { details: limit === undefined ? undefined : { limit } });
    this.name = "HttpEdgeError";
  }
}

/** What the client sent, bounded and printable, for quoting in a message. */
export function quoted(text: string): string {
  const cut = text.length > MAX_QUOTED_CHARS ? `${text.slice(0, MAX_QUOTED_CHARS)}...` : text;
  return JSON.stringify(cut);
}

export function notFound(method: string, path: string, served: string): HttpEdgeError {
  return stackless(() => new HttpEdgeError(404, "not_found", "NOT_FOUND", `no route ${method} ${quoted(path)}; ${served}`));
}

export function methodNotAllowed(method: string, path: string, allowed: readonly string[]): HttpEdgeError {
  const allow = allowed.join(", ");
  return stackless(() => new HttpEdgeError(405, "method_not_allowed", "INVALID_ARGUMENT", `method ${method} is not allowed on ${quoted(path)}; use ${allow}`, { allow }));
}

export function bodyTooLarge(limit: number): HttpEdgeError {
  return stackless(() => new HttpEdgeError(413, "request_too_large", "INVALID_ARGUMENT", `the request body is over ${limit} bytes, the most this router accepts`, {}, limit));
}

export function unsupportedMediaType(contentType: string): HttpEdgeError {
  return stackless(() => new HttpEdgeError(415, "unsupported_media_type", "INVALID_ARGUMENT", `content-type ${quoted(contentType)} is not accepted; send the body as application/json`));
}

export function invalidApiKey(given: boolean): HttpEdgeError {
  const message = given ? "the API key is not valid" : "an API key is required: send it as Authorization: Bearer <key>";
  return stackless(() => new HttpEdgeError(401, "invalid_api_key", "PERMISSION_DENIED", message, { "www-authenticate": 'Bearer realm="kvbridge"' }));
}

export function originNotAllowed(origin: string): HttpEdgeError {
  return stackless(() => new HttpEdgeError(403, "origin_not_allowed", "PERMISSION_DENIED", `origin ${quoted(origin)} is not allowed (--allowed-origins)`));
}
