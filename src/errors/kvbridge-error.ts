// The one error family of kvbridge. Every layer throws KvbridgeError with a code; the edges
// (gRPC handlers, HTTP routes, the CLI) map the code to a status in one place (error-status.ts).

export type ErrorCode =
  | "INVALID_ARGUMENT" // malformed input: fix the request
  | "NOT_FOUND" // unknown request, key or node
  | "ALREADY_EXISTS" // a retried call whose content differs from the first
  | "FAILED_PRECONDITION" // valid input, wrong state (commit before last batch, after abort...)
  | "RESOURCE_EXHAUSTED" // pool full, too many requests
  | "DEADLINE_EXCEEDED" // a bounded wait ran out
  | "CANCELLED" // the request's own AbortSignal fired
  | "UNAVAILABLE" // a peer is unreachable or draining
  | "PERMISSION_DENIED" // admin action without credentials, bad write token
  | "INCOMPATIBLE" // protocol version or model fingerprint mismatch
  | "KV_FAILED" // a KV chunk the request needs was lost (its writer failed or expired)
  | "INTERNAL"; // a bug: kvbridge broke one of its own invariants

/**
 * Why, in a word a program can branch on, when the code alone is not enough (several reasons share
 * FAILED_PRECONDITION). Listed once here: the type and the check of what a peer sent both come from
 * it. A peer's reason not in this list (a newer version) is dropped, never trusted.
 */
export const REASON_KINDS = [
  "receiver_restarted", // the receiver's generation differs from the handshake's: Hello again
  "fingerprint_mismatch", // the peer runs another model
  "protocol_mismatch", // the peer speaks another wire version
  "lease_expired", // the request's lease ran out before it committed
  "never_fits", // the request needs more than the whole pool (or a limit): retrying cannot help
  "pool_full", // no free slot right now: retrying later can help
  "draining", // the node is shutting down
  "loading", // the node's engine is still loading
  "commit_unproven", // a Commit whose bytes the receiver cannot account for
  "request_id_reused", // a request id the store still remembers
  "context_overflow", // prompt plus completion exceed the model's context
  "prompt_too_long", // the prompt exceeds a configured limit (characters, tokens, messages)
  "key_invalid", // a chunk key with forbidden characters
  "model_not_found", // the request names a model this node (or router) does not serve
  "models_busy", // no room to load a model: every resident model has requests in flight
  "model_load_failed", // the model's last load failed; a later request retries it
  "proof_invalid", // a Commit proof that is malformed or contradicts itself
  "repair_invalid", // a repair Alloc naming keys that are not the request's failed ones
  "ucx_not_direct", // UCX would emulate puts here (tcp, an unmapped pool): the TCP data plane is used
] as const;

export type ReasonKind = (typeof REASON_KINDS)[number];

/** Data an error carries for programs (routers, senders, kvctl); the message is for people. */
export interface ErrorDetails {
  reason?: ReasonKind;
  /** The request field at fault (OpenAI's `param`, e.g. "messages" or "max_tokens"). */
  param?: string;
  /** The receiver generation the error is about (receiver_restarted: the current one). */
  generation?: number;
  /** The limit that was crossed (characters, tokens, slots ...), so a client can size its retry. */
  limit?: number;
}

export function isReasonKind(value: unknown): value is ReasonKind {
  return typeof value === "string" && (REASON_KINDS as readonly string[]).includes(value);
}

export class KvbridgeError extends Error {
  readonly code: ErrorCode;
  /** True when a kvbridge peer answered with this error (as opposed to the call never reaching one). */
  readonly remote: boolean;
  /** Always an object (empty when the error carries none), so callers read `err.details.reason` directly. */
  readonly details: Readonly<ErrorDetails>;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; remote?: boolean; details?: ErrorDetails }) {
    super(message, options);
    this.name = "KvbridgeError";
    this.code = code;
    this.remote = options?.remote ?? false;
    this.details = Object.freeze({ ...options?.details });
  }
}

export function isKvbridgeError(err: unknown): err is KvbridgeError {
  return err instanceof KvbridgeError;
}

/** Wraps anything thrown into a KvbridgeError, keeping the original as `cause`. */
export function toKvbridgeError(err: unknown, fallback: ErrorCode = "INTERNAL"): KvbridgeError {
  if (err instanceof KvbridgeError) return err;
  if (err instanceof Error && err.name === "AbortError") {
    return new KvbridgeError("CANCELLED", err.message || "cancelled", { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new KvbridgeError(fallback, message, { cause: err });
}
