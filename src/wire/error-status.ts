// The one place where KvbridgeError codes meet gRPC status codes (and HTTP statuses), and where an
// error's code and structured details are written into gRPC trailers and read back from them.
import * as grpc from "@grpc/grpc-js";
import { isReasonKind, KvbridgeError, type ErrorCode, type ErrorDetails, toKvbridgeError } from "../errors/kvbridge-error.js";

const TO_GRPC: Record<ErrorCode, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  CANCELLED: grpc.status.CANCELLED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  INCOMPATIBLE: grpc.status.FAILED_PRECONDITION,
  KV_FAILED: grpc.status.ABORTED,
  INTERNAL: grpc.status.INTERNAL,
};

const TO_HTTP: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 409,
  RESOURCE_EXHAUSTED: 429,
  DEADLINE_EXCEEDED: 504,
  CANCELLED: 499,
  UNAVAILABLE: 503,
  PERMISSION_DENIED: 403,
  INCOMPATIBLE: 409,
  KV_FAILED: 502,
  INTERNAL: 500,
};

const FROM_GRPC: Partial<Record<grpc.status, ErrorCode>> = {
  [grpc.status.INVALID_ARGUMENT]: "INVALID_ARGUMENT",
  [grpc.status.NOT_FOUND]: "NOT_FOUND",
  [grpc.status.ALREADY_EXISTS]: "ALREADY_EXISTS",
  [grpc.status.FAILED_PRECONDITION]: "FAILED_PRECONDITION",
  [grpc.status.RESOURCE_EXHAUSTED]: "RESOURCE_EXHAUSTED",
  [grpc.status.DEADLINE_EXCEEDED]: "DEADLINE_EXCEEDED",
  [grpc.status.CANCELLED]: "CANCELLED",
  [grpc.status.UNAVAILABLE]: "UNAVAILABLE",
  [grpc.status.PERMISSION_DENIED]: "PERMISSION_DENIED",
  [grpc.status.ABORTED]: "KV_FAILED",
  [grpc.status.UNAUTHENTICATED]: "PERMISSION_DENIED",
};

/** Metadata key carrying the exact KvbridgeError code (several codes share one gRPC status). */
export const CODE_METADATA_KEY = "kvbridge-code";

/**
 * Metadata key carrying the error's details as UTF-8 JSON. Binary (-bin, base64 on the wire) because a
 * param may hold any character, and a plain metadata value with a non-ASCII one makes grpc-js throw
 * instead of sending the status.
 */
export const DETAILS_METADATA_KEY = "kvbridge-details-bin";

/** Longest param carried; kvbridge's own are short field paths ("messages[3].content"). */
const MAX_PARAM_CHARS = 200;

export function httpStatusOf(code: ErrorCode): number {
  return TO_HTTP[code];
}

/** A KvbridgeError (or anything thrown) as the error object a grpc-js handler callback takes. */
export function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  const e = toKvbridgeError(err);
  const metadata = new grpc.Metadata();
  metadata.set(CODE_METADATA_KEY, e.code);
  const details = checkedDetails(e.details);
  if (Object.keys(details).length > 0) metadata.set(DETAILS_METADATA_KEY, Buffer.from(JSON.stringify(details), "utf8"));
  return { code: TO_GRPC[e.code], details: boundedDetails(e.message), metadata };
}

/**
 * Only the fields ErrorDetails defines, each of its type and bounded: applied to what a peer sent
 * (which may be anything: another version, a hostile server) and to what we send.
 */
function checkedDetails(raw: unknown): ErrorDetails {
  if (typeof raw !== "object" || raw === null) return {};
  const r = raw as Record<string, unknown>;
  const out: ErrorDetails = {};
  if (isReasonKind(r.reason)) out.reason = r.reason;
  if (typeof r.param === "string" && r.param.length > 0) out.param = wellFormed(cutAtPair(r.param, MAX_PARAM_CHARS));
  if (isCount(r.generation)) out.generation = r.generation;
  if (isCount(r.limit)) out.limit = r.limit;
  return out;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Own keys only: `"constructor" in TO_GRPC` is true, and a peer chooses what it sends. */
function isErrorCode(v: unknown): v is ErrorCode {
  return typeof v === "string" && Object.hasOwn(TO_GRPC, v);
}

function detailsFrom(metadata: grpc.Metadata | undefined): ErrorDetails {
  const raw = metadata?.get(DETAILS_METADATA_KEY)[0];
  if (!Buffer.isBuffer(raw)) return {};
  try {
    return checkedDetails(JSON.parse(raw.toString("utf8")));
  } catch {
    // Unparseable details are dropped: the code and message still say what went wrong.
    return {};
  }
}

/** Longest status message sent, in UTF-16 units; kvbridge's own messages stay far below it. */
export const MAX_STATUS_DETAILS = 1024;

/**
 * Messages may quote what the caller sent (a fingerprint, a state name). The status travels as the
 * percent-encoded grpc-message trailer (up to 9 bytes per character), and a trailer past the peer's
 * header-list limit never arrives: the caller would see a deadline instead of the error, with its
 * HTTP/2 connection torn down. So the message is cut, at a character boundary, saying how much.
 */
function boundedDetails(raw: string): string {
  // A message may quote a string with a lone surrogate (protobuf decodes CESU-style bytes into one,
  // and a cut can split a pair): grpc-js percent-encodes the message with encodeURI, which throws on
  // such a string, and the status would never be sent. Replace them with U+FFFD first.
  const message = wellFormed(raw);
  if (message.length <= MAX_STATUS_DETAILS) return message;
  const kept = cutAtPair(message, MAX_STATUS_DETAILS);
  return `${kept}... (${message.length - kept.length} more characters cut)`;
}

/** At most `max` UTF-16 units of `text`, never ending inside a surrogate pair. */
function cutAtPair(text: string, max: number): string {
  if (text.length <= max) return text;
  const c = text.charCodeAt(max - 1);
  return text.slice(0, c >= 0xd800 && c <= 0xdbff ? max - 1 : max);
}

/** The string with every lone surrogate replaced by U+FFFD (String.prototype.toWellFormed, Node 20). */
export function wellFormed(text: string): string {
  return (text as string & { toWellFormed(): string }).toWellFormed();
}

/** A gRPC client error as a KvbridgeError with the server's code, message and details. */
export function fromServiceError(err: unknown, what: string): KvbridgeError {
  if (err instanceof KvbridgeError) return err;
  const se = err as Partial<grpc.ServiceError>;
  if (typeof se?.code !== "number") return toKvbridgeError(err);
  const carried = se.metadata?.get(CODE_METADATA_KEY)[0];
  const detail = se.details || se.message || grpc.status[se.code];
  // A carried code means a kvbridge node answered; without it the call never reached one.
  if (isErrorCode(carried)) {
    return new KvbridgeError(carried, `${what}: ${detail}`, { cause: err, remote: true, details: detailsFrom(se.metadata) });
  }
  const mapped = FROM_GRPC[se.code];
  if (mapped) return new KvbridgeError(mapped, `${what}: ${detail}`, { cause: err, remote: false });
  // No kvbridge node answered: something else listens there (an HTTP server, a proxy, another gRPC
  // service) or the HTTP/2 stream broke. That is the peer's address being wrong or unreachable, not a
  // kvbridge bug, so it is UNAVAILABLE (UNIMPLEMENTED: a node of another role or version), and says so.
  if (se.code === grpc.status.UNIMPLEMENTED) {
    return new KvbridgeError("INCOMPATIBLE", `${what}: ${detail} (the peer does not serve this call: not a kvbridge node of the expected role and version)`, { cause: err, remote: false });
  }
  return new KvbridgeError("UNAVAILABLE", `${what}: ${detail} (no kvbridge node answered there; check the address)`, { cause: err, remote: false });
}
