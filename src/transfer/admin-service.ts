// gRPC handlers of the Admin service (kvctl evict / abort) over a KvReceiver, and the guard in front
// of them. A caller must present the node's admin token; a node without a token accepts loopback
// callers only (an operator on the pod, or behind `kubectl port-forward`). No action can free a slot
// out from under a request: eviction takes only unpinned READY entries (the store refuses the rest)
// and abort takes only unfinished requests, whose slots go to quarantine like any other abort.
import { createHash, timingSafeEqual } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { AdminHandlers } from "../rpc/generated/kvbridge/v1/Admin.js";
import { unaryHandler } from "../rpc/unary.js";
import { MAX_ID_LENGTH } from "../store/kv-store.js";
import type { KvReceiver } from "./receiver.js";

/** gRPC metadata entry carrying the admin token (kvctl --admin-token / KVBRIDGE_ADMIN_TOKEN). */
export const ADMIN_TOKEN_METADATA_KEY = "kvbridge-admin-token";

export interface AdminServiceOptions {
  /** The node's admin token; empty or absent: loopback callers only. */
  token?: string;
  logger?: Logger;
}

/** The host part of a grpc-js peer string ("127.0.0.1:5000", "::1:5000", "[::1]:5000", "unknown"). */
export function peerHost(peer: string): string {
  const m = /^(.*):(\d+)$/.exec(peer);
  const host = m ? m[1]! : peer;
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

export function isLoopbackHost(host: string): boolean {
  return host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host) || /^::ffff:127\.\d+\.\d+\.\d+$/i.test(host);
}

function sameToken(a: string, b: string): boolean {
  // Compared through fixed-length digests in constant time: neither length nor prefix leaks.
  const da = createHash("sha256").update(a).digest();
  const db = createHash("sha256").update(b).digest();
  return timingSafeEqual(da, db);
}

/**
 * Throws PERMISSION_DENIED unless the caller may use admin actions on `nodeId`: with a token
 * configured, the caller's token must match; without one, the caller must be on loopback.
 */
export function checkAdminCaller(nodeId: string, configuredToken: string | undefined, presented: string | undefined, peer: string): void {
  if (configuredToken) {
    if (!presented) {
      throw new KvbridgeError(
        "PERMISSION_DENIED",
        `admin action refused: node ${nodeId} requires an admin token; pass --admin-token or set KVBRIDGE_ADMIN_TOKEN to the node's token`,
      );
    }
    if (!sameToken(presented, configuredToken)) {
      throw new KvbridgeError("PERMISSION_DENIED", `admin action refused: the admin token does not match node ${nodeId}'s; check KVBRIDGE_ADMIN_TOKEN`);
    }
    return;
  }
  if (!isLoopbackHost(peerHost(peer))) {
    throw new KvbridgeError(
      "PERMISSION_DENIED",
      `admin action refused: node ${nodeId} has no admin token, so it accepts admin calls from loopback only, and this call came from ${peerHost(peer)}; ` +
        `run kvctl on the node (or through kubectl port-forward), or start the node with --admin-token and pass the same token to kvctl`,
    );
  }
}

function presentedToken(call: grpc.ServerUnaryCall<unknown, unknown>): string | undefined {
  const v = call.metadata.get(ADMIN_TOKEN_METADATA_KEY)[0];
  if (v === undefined) return undefined;
  return typeof v === "string" ? v : v.toString("utf8");
}

export function adminHandlers(rx: KvReceiver, opts: AdminServiceOptions = {}): AdminHandlers {
  const token = opts.token || undefined;
  const guard = (call: grpc.ServerUnaryCall<unknown, unknown>, action: string): string => {
    const peer = call.getPeer();
    try {
      checkAdminCaller(rx.nodeId, token, presentedToken(call), peer);
    } catch (err) {
      opts.logger?.warn({ peer, action }, "admin action refused");
      throw err;
    }
    return peer;
  };
  return {
    Evict: unaryHandler((req, call) => {
      const key = req.key;
      if (req.allUnpinned === (key.length > 0)) {
        throw new KvbridgeError("INVALID_ARGUMENT", "Evict needs exactly one of: a key, or all_unpinned");
      }
      if (key.length > MAX_ID_LENGTH) throw new KvbridgeError("INVALID_ARGUMENT", `key is ${key.length} characters; the most is ${MAX_ID_LENGTH}`);
      const peer = guard(call as grpc.ServerUnaryCall<unknown, unknown>, req.allUnpinned ? "evict unpinned" : `evict ${key}`);
      let evicted: number;
      if (req.allUnpinned) {
        evicted = rx.store.evictUnpinned();
      } else {
        // The store refuses WRITING and pinned entries: an admin can never take a slot a request uses.
        rx.store.evict(key);
        evicted = 1;
      }
      opts.logger?.warn({ peer, key: key || undefined, allUnpinned: req.allUnpinned, evicted }, "admin: evicted");
      return { evicted, slotsFree: rx.store.stats().slotsFree };
    }),
    AbortRequest: unaryHandler((req, call) => {
      const id = req.requestId;
      if (id.length === 0 || id.length > MAX_ID_LENGTH) throw new KvbridgeError("INVALID_ARGUMENT", `request_id must be 1..${MAX_ID_LENGTH} characters`);
      const peer = guard(call as grpc.ServerUnaryCall<unknown, unknown>, `abort ${id}`);
      const phase = rx.store.requestPhase(id);
      if (phase === undefined) {
        throw new KvbridgeError("NOT_FOUND", `request ${id} is not on node ${rx.nodeId} (finished, aborted or expired already); see kvctl requests`);
      }
      if (phase === "committed") {
        // Its KV is complete and may be in use by the engine right now: dropping its pins could let
        // its slots be evicted mid-read. It gives them back on Release or after --hold-ms.
        throw new KvbridgeError(
          "FAILED_PRECONDITION",
          `request ${id} is committed: its chunks are complete and may be in use; it releases its pins when consumed or when its hold expires`,
        );
      }
      const reason = req.reason ? `admin (${peer}): ${req.reason.slice(0, 200)}` : `admin (${peer})`;
      const r = rx.abort(id, reason);
      opts.logger?.warn({ peer, requestId: id, reason, ...r }, "admin: request aborted");
      return { slotsReleased: r.slotsReleased, pinsReleased: r.pinsReleased };
    }),
  };
}
