// Turning UCX statuses into KvbridgeErrors with messages that say what failed and what to do.
import { KvbridgeError, type ErrorCode } from "../../errors/kvbridge-error.js";
import {
  UCS_ERR_CANCELED,
  UCS_ERR_CONNECTION_RESET,
  UCS_ERR_ENDPOINT_TIMEOUT,
  UCS_ERR_TIMED_OUT,
  UCS_ERR_UNREACHABLE,
} from "../../../native-bindings/ucx/ucx-constants.js";
import type { UcxLibrary } from "../../../native-bindings/ucx/ucx-library.js";

/** Statuses that mean the peer is gone or cannot be reached (as opposed to a local misuse). */
const PEER_FAILURES = new Set([
  UCS_ERR_UNREACHABLE,
  UCS_ERR_CONNECTION_RESET,
  UCS_ERR_ENDPOINT_TIMEOUT,
  UCS_ERR_TIMED_OUT,
  UCS_ERR_CANCELED,
]);

/** The error code a failed UCX status maps to: a peer failure is UNAVAILABLE, anything else INTERNAL. */
export function codeForStatus(status: number): ErrorCode {
  return PEER_FAILURES.has(status) ? "UNAVAILABLE" : "INTERNAL";
}

/** `what` failed with `status`: a KvbridgeError naming the UCX status. */
export function ucxError(ucx: UcxLibrary, what: string, status: number, code: ErrorCode = codeForStatus(status)): KvbridgeError {
  return new KvbridgeError(code, `${what}: UCX ${ucx.describeStatus(status)}`);
}
