// kvctl's exit codes: a script can tell "the node is down" from "you may not do that" from "that key
// is pinned" without parsing messages. Documented in `kvctl --help` and docs/operations.md.
import type { ErrorCode } from "../../errors/kvbridge-error.js";

export const EXIT = {
  OK: 0,
  /** Anything unexpected (a bug, a malformed answer). */
  ERROR: 1,
  /** Bad flags or arguments. */
  USAGE: 2,
  /** A node could not be reached or did not answer in time. */
  UNREACHABLE: 3,
  /** An admin action without the right credential (token, loopback, client certificate), or a node with mutual TLS refused us. */
  DENIED: 4,
  /** The key or request is not on the node. */
  NOT_FOUND: 5,
  /** Refused because of state: the key is pinned or being written, the request is committed. */
  REFUSED: 6,
  /** `kvctl status`: every node answered but at least one is not serving (loading, draining, pool stuck). */
  NOT_SERVING: 7,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case "UNAVAILABLE":
    case "DEADLINE_EXCEEDED":
    case "CANCELLED":
      return EXIT.UNREACHABLE;
    case "PERMISSION_DENIED":
      return EXIT.DENIED;
    case "NOT_FOUND":
      return EXIT.NOT_FOUND;
    case "FAILED_PRECONDITION":
    case "RESOURCE_EXHAUSTED":
      return EXIT.REFUSED;
    case "INVALID_ARGUMENT":
      return EXIT.USAGE;
    case "ALREADY_EXISTS":
    case "INCOMPATIBLE":
    case "KV_FAILED":
    case "INTERNAL":
      return EXIT.ERROR;
  }
}
