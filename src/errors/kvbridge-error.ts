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

export class KvbridgeError extends Error {
  readonly code: ErrorCode;
  /** True when a kvbridge peer answered with this error (as opposed to the call never reaching one). */
  readonly remote: boolean;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; remote?: boolean }) {
    super(message, options);
    this.name = "KvbridgeError";
    this.code = code;
    this.remote = options?.remote ?? false;
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
