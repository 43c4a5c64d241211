// What the store refuses before it decides anything: an Alloc's ids, keys, sizes and batch fields
// checked in one place (once: the gRPC adapter passes them through), and the errors and digest the
// store's operations share. Pure functions; the store calls them inside its synchronous steps.

import { KvbridgeError } from "../errors/kvbridge-error.js";
import { describeEndReason } from "./end-reason.js";
import { MAX_ID_LENGTH, type AllocInput, type StoreConfig } from "./store-types.js";

export function validateAllocInput(input: AllocInput, config: Readonly<StoreConfig>): void {
  const { requestId, keys, sizes } = input;
  if (typeof requestId !== "string" || requestId.length === 0 || requestId.length > MAX_ID_LENGTH) {
    throw new KvbridgeError("INVALID_ARGUMENT", `request_id must be 1..${MAX_ID_LENGTH} characters`);
  }
  refuseControl(requestId, "request_id", "request_id");
  if (keys.length === 0) throw new KvbridgeError("INVALID_ARGUMENT", "an Alloc needs at least one key");
  if (keys.length !== sizes.length) {
    throw new KvbridgeError("INVALID_ARGUMENT", `keys and sizes differ in length (${keys.length} keys, ${sizes.length} sizes); send one size per key`);
  }
  if (keys.length > config.maxKeysPerAlloc) {
    throw new KvbridgeError(
      "INVALID_ARGUMENT",
      `${keys.length} keys in one Alloc; the most is ${config.maxKeysPerAlloc}: split the request into batches`,
    );
  }
  if (!Number.isInteger(input.batchSeq) || input.batchSeq < 0) {
    throw new KvbridgeError("INVALID_ARGUMENT", `batch_seq must be a non-negative integer`);
  }
  if (!Number.isInteger(input.totalChunks) || input.totalChunks < 0) {
    throw new KvbridgeError("INVALID_ARGUMENT", `total_chunks must be a non-negative integer`);
  }
  const seen = new Set<string>();
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (typeof key !== "string" || key.length === 0 || key.length > MAX_ID_LENGTH) {
      throw new KvbridgeError("INVALID_ARGUMENT", `key at position ${i} must be 1..${MAX_ID_LENGTH} characters`);
    }
    refuseControl(key, `key at position ${i}`, "keys");
    if (seen.has(key)) throw new KvbridgeError("INVALID_ARGUMENT", `key ${key} appears twice in one Alloc`);
    seen.add(key);
    const size = sizes[i]!;
    if (!Number.isInteger(size) || size < 1 || size > config.slotBytes) {
      throw new KvbridgeError(
        "INVALID_ARGUMENT",
        `size ${size} of key ${key} is outside 1..${config.slotBytes} (the slot size); use smaller chunks or raise --slot-bytes`,
      );
    }
  }
}

export function leaseExpiredError(op: string, requestId: string): KvbridgeError {
  return new KvbridgeError(
    "FAILED_PRECONDITION",
    `${op}: request ${requestId} ${describeEndReason({ kind: "lease_expired" })}; start over with a new request id`,
    { details: { reason: "lease_expired" } },
  );
}

export function unprovenError(op: string, requestId: string, detail: string): KvbridgeError {
  return new KvbridgeError(
    "FAILED_PRECONDITION",
    `${op}: request ${requestId} ${describeEndReason({ kind: "commit_unproven", detail })}; nothing was made READY and its slots ` +
      `were quarantined: write every byte of every chunk before Commit, and start over with a new request id`,
    { details: { reason: "commit_unproven" } },
  );
}

/**
 * C0 controls, DEL and C1 controls: never in a key or request id. They would reach logs, metrics
 * and kvctl's terminal (escape sequences), and a NUL could blur where one key ends.
 */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

function refuseControl(value: string, what: string, param: string): void {
  const m = CONTROL_CHARACTER.exec(value);
  if (!m) return;
  const code = m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
  throw new KvbridgeError(
    "INVALID_ARGUMENT",
    `${what} contains the control character U+${code} at index ${m.index}; keys and request ids must be printable`,
    { details: { reason: "key_invalid", param } },
  );
}

/**
 * A digest of one batch's content, to tell a retry from a conflicting reuse of (request, batch).
 * Each key is length-prefixed, so two key lists differing only in where a boundary falls differ.
 */
export function batchDigest(keys: readonly string[], sizes: readonly number[], total: number, last: boolean): string {
  return `${total}|${last ? 1 : 0}|${keys.length}|${keys.map((k) => `${k.length}:${k}`).join("")}|${sizes.join(",")}`;
}
