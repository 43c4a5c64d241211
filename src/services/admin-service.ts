// gRPC handlers of the Admin service (kvctl evict / abort) over a KvReceiver, and the guard in front
// of them. A caller must present the node's admin token; a node without a token accepts loopback
// callers only (an operator on the pod, or behind `kubectl port-forward`). On a node with mutual TLS
// the caller's verified client certificate is the credential: any certificate from the node's CA,
// or only those named in --admin-identity; a configured token still admits. No action can free a slot
// out from under a request: eviction takes only unpinned READY entries (the store refuses the rest)
// and abort takes only unfinished requests, whose slots go to quarantine like any other abort.
import { createHash, timingSafeEqual } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { peerCertificateNames } from "../security/certificate-names.js";
import type { AdminHandlers } from "../wire/generated/kvbridge/v1/Admin.js";
import { describeEndReason, type EndReason } from "../store/end-reason.js";
import { MAX_ID_LENGTH } from "../store/kv-store.js";
import type { KvReceiver } from "../transfer/receiver.js";
import { wellFormed } from "../wire/error-status.js";
import { unaryHandler } from "./unary-handler.js";

/** gRPC metadata entry carrying the admin token (kvctl --admin-token / KVBRIDGE_ADMIN_TOKEN). */
export const ADMIN_TOKEN_METADATA_KEY = "kvbridge-admin-token";

export interface AdminServiceOptions {
  /** The node's admin token; empty or absent: loopback callers only (or, with mTLS, certificates). */
  token?: string;
  /**
   * Mutual TLS only: the client certificate names (subject CN, DNS or URI SAN) that may use admin
   * actions. Empty or absent: any certificate the node's CA signed, unless a token is configured,
   * which is then required.
   */
  identities?: readonly string[];
  logger?: Logger;
}

/** Who is calling: address, presented token, and the names of a CA-verified client certificate. */
export interface AdminCaller {
  peer: string;
  token?: string;
  /** Present only when the call came over mutual TLS with a verified client certificate. */
  certificateNames?: readonly string[];
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
 * Throws PERMISSION_DENIED unless the caller may use admin actions on `nodeId`. A matching token
 * always admits. A verified client certificate (mutual TLS) admits when its names include one of
 * `identities`, or, with no identities and no token configured, whatever its name: the node's CA
 * vouched for it. Otherwise: with a token configured it is required; without one, loopback only.
 */
export function checkAdminAccess(nodeId: string, policy: { token?: string; identities?: readonly string[] }, caller: AdminCaller): void {
  const configuredToken = policy.token || undefined;
  const identities = policy.identities ?? [];
  if (configuredToken && caller.token && sameToken(caller.token, configuredToken)) return;
  const names = caller.certificateNames;
  if (names !== undefined) {
    if (identities.length > 0) {
      if (names.some((n) => identities.includes(n))) return;
      throw new KvbridgeError(
        "PERMISSION_DENIED",
        `admin action refused: node ${nodeId} takes admin calls from certificates named ${identities.join(", ")}` +
          `${configuredToken ? " or with its admin token" : ""}, and this caller's certificate is ${names.length ? names.join(", ") : "unnamed"}; ` +
          `run kvctl with an admin certificate (--tls-cert/--tls-key)${configuredToken ? " or pass --admin-token" : ""}`,
      );
    }
    if (!configuredToken) return;
  }
  checkAdminCaller(nodeId, configuredToken, caller.token, caller.peer);
}

/**
 * The guard without certificates: with a token configured, the caller's token must match; without
 * one, the caller must be on loopback.
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

/** What the guard reads of a call: who, over what connection, with which metadata. */
type GuardedCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, "getPeer" | "metadata" | "getAuthContext">;

function presentedToken(call: GuardedCall): string | undefined {
  const v = call.metadata.get(ADMIN_TOKEN_METADATA_KEY)[0];
  if (v === undefined) return undefined;
  return typeof v === "string" ? v : v.toString("utf8");
}

/** Names of the caller's client certificate when the call came over mTLS and the node verified it. */
function verifiedCertificateNames(call: GuardedCall): string[] | undefined {
  // grpc-js fills sslPeerCertificate only for an authorized TLS socket (verified against our CA).
  const cert = call.getAuthContext?.().sslPeerCertificate;
  return cert ? peerCertificateNames(cert) : undefined;
}

export function adminHandlers(rx: KvReceiver, opts: AdminServiceOptions = {}): AdminHandlers {
  const policy = { token: opts.token || undefined, identities: opts.identities };
  const guard = (call: GuardedCall, action: string): string => {
    const peer = call.getPeer();
    const certificateNames = verifiedCertificateNames(call);
    try {
      checkAdminAccess(rx.nodeId, policy, { peer, token: presentedToken(call), certificateNames });
    } catch (err) {
      opts.logger?.warn({ peer, action, certificate: certificateNames }, "admin action refused");
      throw err;
    }
    // The audit line of every admin action names the certificate too, when there is one.
    return certificateNames?.length ? `${peer} ${certificateNames[0]}` : peer;
  };
  return {
    Evict: unaryHandler((req, call) => {
      const key = req.key;
      if (req.allUnpinned === (key.length > 0)) {
        throw new KvbridgeError("INVALID_ARGUMENT", "Evict needs exactly one of: a key, or all_unpinned");
      }
      if (key.length > MAX_ID_LENGTH) throw new KvbridgeError("INVALID_ARGUMENT", `key is ${key.length} characters; the most is ${MAX_ID_LENGTH}`);
      const peer = guard(call, req.allUnpinned ? "evict unpinned" : `evict ${key}`);
      let evicted: number;
      if (req.allUnpinned) {
        evicted = rx.evictUnpinned();
      } else {
        // The store refuses WRITING and pinned entries: an admin can never take a slot a request uses.
        rx.evict(key);
        evicted = 1;
      }
      opts.logger?.warn({ peer, key: key || undefined, allUnpinned: req.allUnpinned, evicted }, "admin: evicted");
      return { evicted, slotsFree: rx.stats().slotsFree };
    }),
    AbortRequest: unaryHandler((req, call) => {
      const id = req.requestId;
      if (id.length === 0 || id.length > MAX_ID_LENGTH) throw new KvbridgeError("INVALID_ARGUMENT", `request_id must be 1..${MAX_ID_LENGTH} characters`);
      const peer = guard(call, `abort ${id}`);
      const phase = rx.requestPhase(id);
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
      const reason: EndReason = { kind: "admin", detail: req.reason ? `${peer}: ${wellFormed(req.reason.slice(0, 200))}` : peer };
      const r = rx.abort(id, reason);
      opts.logger?.warn({ peer, requestId: id, reason: describeEndReason(reason), ...r }, "admin: request aborted");
      return { slotsReleased: r.slotsReleased, pinsReleased: r.pinsReleased };
    }),
  };
}
