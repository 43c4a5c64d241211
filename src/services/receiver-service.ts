// gRPC handlers of the KvReceiver service (a sender's control plane) over a KvReceiver, thin: the
// store validates what it can see (ids, keys, sizes, batches, limits, leases) once, in its own step;
// here only what it cannot know: the sender's protocol version and model fingerprint (one of the
// models the node has loaded), and the
// receiver generation it handshaked with. Admission (loading, draining) is the gate interceptor's.
import { AWAIT_READY_MS } from "../config/defaults.js";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import { MAX_ID_LENGTH } from "../store/kv-store.js";
import { proofsByKey } from "../transfer/commit-proof.js";
import { offerToWire } from "../transfer/offer-codec.js";
import type { KvReceiver } from "../transfer/receiver.js";
import { offersDataPlaneCommit, type DataPlaneOffer } from "../transport/transport.js";
import { wellFormed } from "../wire/error-status.js";
import type { KvReceiverHandlers } from "../wire/generated/kvbridge/v1/KvReceiver.js";
import type { KeyState as WireKeyState } from "../wire/generated/kvbridge/v1/KeyState.js";
import type { TransportNotOffered } from "../wire/generated/kvbridge/v1/TransportNotOffered.js";
import { CAPABILITY_DATA_PLANE_COMMIT, MAX_RELEASE_IDS, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from "../wire/proto.js";
import { callSignal, unaryHandler } from "./unary-handler.js";

/** Longest AwaitReady a caller may ask for: a waiting call holds a handler, not a slot, but not forever. */
export const MAX_AWAIT_MS = 120_000;

/** Longest sender-given abort reason kept (logs and late answers quote it). */
const MAX_REASON_CHARS = 200;


/**
 * The capabilities this receiver uses with a sender that asked for them: the data-plane commit when
 * one of the data planes it offers takes commits (TCP COMMIT frames, or UCX COMMIT messages).
 */
function negotiatedCapabilities(asked: readonly string[], offers: readonly DataPlaneOffer[]): string[] {
  return asked.includes(CAPABILITY_DATA_PLANE_COMMIT) && offersDataPlaneCommit(offers) ? [CAPABILITY_DATA_PLANE_COMMIT] : [];
}

/** Calls after Alloc name an existing request; the store only looks them up, so malformed ids are refused here. */
function requireId(value: string, what: string): string {
  if (value.length === 0) throw new KvbridgeError("INVALID_ARGUMENT", `${what} is empty; every call needs one`);
  if (value.length > MAX_ID_LENGTH) {
    throw new KvbridgeError("INVALID_ARGUMENT", `${what} is ${value.length} characters; the most is ${MAX_ID_LENGTH}`);
  }
  return value;
}

const WIRE_STATE: Record<"writing" | "ready" | "failed", WireKeyState> = {
  writing: "KEY_STATE_WRITING",
  ready: "KEY_STATE_READY",
  failed: "KEY_STATE_FAILED",
};

/** The sender's fingerprint must be one of a model this node serves now (loaded); its KV is never used by another. */
function checkFingerprint(rx: KvReceiver, fingerprint: string, where: string): void {
  if (rx.accepts(fingerprint)) return;
  const served = [...rx.fingerprints];
  const ours = served.length === 0 ? "(no model loaded)" : served.map((f) => f || "(raw)").join(", ");
  throw new KvbridgeError(
    "INCOMPATIBLE",
    `model fingerprint mismatch in ${where}: sender ${fingerprint || "(raw)"} vs receiver ${ours}; both nodes must serve the same model file with the same KV settings (and the decode node must have it loaded)`,
    { details: { reason: "fingerprint_mismatch" } },
  );
}

export function receiverHandlers(rx: KvReceiver): KvReceiverHandlers {
  return {
    Hello: unaryHandler((req) => {
      if (req.protocolVersion < MIN_PROTOCOL_VERSION || req.protocolVersion > PROTOCOL_VERSION) {
        throw new KvbridgeError(
          "INCOMPATIBLE",
          `protocol version mismatch: sender speaks ${req.protocolVersion}, this node speaks ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}; run the same kvbridge version on both`,
          { details: { reason: "protocol_mismatch" } },
        );
      }
      checkFingerprint(rx, req.fingerprint, "Hello");
      const wanted = new Set(req.transports);
      const offers = rx.getOffers().filter((o) => wanted.size === 0 || wanted.has(o.kind));
      // Answered in the sender's version: a version-1 sender hears version 1 and none of 2's fields.
      const version = req.protocolVersion;
      const notOffered: TransportNotOffered[] = [
        ...rx.getNotOffered().map((n) => ({ transport: n.transport, reason: n.reason, message: n.message })),
        ...rx.getOffers()
          .filter((o) => !offers.includes(o))
          .map((o) => ({ transport: o.kind, reason: "not_requested", message: `the sender did not list ${o.kind} among its transports` })),
      ];
      return {
        protocolVersion: version,
        capabilities: version >= 2 ? negotiatedCapabilities(req.capabilities, offers) : [],
        notOffered: version >= 2 ? notOffered : [],
        // The sender's own, accepted: the one its KV may use here.
        fingerprint: req.fingerprint,
        nodeId: rx.nodeId,
        generation: rx.generation,
        offers: offers.map(offerToWire),
        slotBytes: rx.memory.slotBytes,
        slotsTotal: rx.memory.slots,
        leaseMs: rx.leaseMs,
        maxKeysPerAlloc: rx.maxKeysPerAlloc,
      };
    }),
    Alloc: unaryHandler((req, call) => {
      // Slot numbers and rkeys are only meaningful in the process that handed them out: an Alloc must
      // name the generation its sender handshaked with, and 0 (none) is no exception.
      if (req.generation !== rx.generation) {
        const why =
          req.generation === 0
            ? `Alloc for ${req.requestId} carries no receiver generation (0); send Hello first and pass the generation it answers`
            : `receiver restarted: generation ${rx.generation}, sender handshaked with ${req.generation}; send Hello again`;
        throw new KvbridgeError("FAILED_PRECONDITION", why, { details: { reason: "receiver_restarted", generation: rx.generation } });
      }
      checkFingerprint(rx, req.fingerprint, `Alloc for ${req.requestId}`);
      const input = {
        requestId: req.requestId,
        keys: req.keys,
        sizes: req.sizes,
        batchSeq: req.batchSeq,
        totalChunks: req.totalChunks,
        isLastBatch: req.isLastBatch,
        peer: call.getPeer(),
      };
      // A repair round re-allocates a committed request's failed deduped keys for its own sender.
      const res = req.repairRound > 0 ? rx.repairAlloc({ ...input, round: req.repairRound }) : rx.alloc(input, req.fingerprint);
      return {
        remoteIndexes: res.remoteIndexes,
        alreadySentIndexes: res.alreadySentIndexes,
        writeTokens: res.writeTokens,
        slotBytes: rx.memory.slotBytes,
        leaseExpiresAtMs: res.leaseExpiresAt,
      };
    }),
    Commit: unaryHandler((req) => {
      const r = rx.commit(requireId(req.requestId, "request_id"), proofsByKey(req.proofs));
      return { keysReady: r.ready, keysPending: r.pending, keysFailed: r.failed };
    }),
    Abort: unaryHandler((req) => {
      // The reason is logged and remembered for late calls: a sender's words, kept short.
      const detail = req.reason ? wellFormed(req.reason.slice(0, MAX_REASON_CHARS)) : undefined;
      const r = rx.abort(requireId(req.requestId, "request_id"), { kind: "sender_abort", detail });
      return { slotsReleased: r.slotsReleased, pinsReleased: r.pinsReleased };
    }),
    Renew: unaryHandler((req) => ({ leaseExpiresAtMs: rx.renew(requireId(req.requestId, "request_id")) })),
    AwaitReady: unaryHandler(async (req, call) => {
      const id = requireId(req.requestId, "request_id");
      const timeout = Math.min(req.timeoutMs || AWAIT_READY_MS, MAX_AWAIT_MS);
      const st = await rx.awaitReady(id, timeout, callSignal(call));
      return { allReady: st.allReady, keys: st.keys.map((k) => k.key), states: st.keys.map((k) => WIRE_STATE[k.state]) };
    }),
    Release: unaryHandler((req) => {
      if (req.requestIds.length === 0) return { pinsReleased: rx.release(requireId(req.requestId, "request_id")).pinsReleased, released: 1 };
      if (req.requestId) throw new KvbridgeError("INVALID_ARGUMENT", "Release takes request_id or request_ids, not both", { details: { param: "request_ids" } });
      if (req.requestIds.length > MAX_RELEASE_IDS) {
        throw new KvbridgeError("INVALID_ARGUMENT", `Release names ${req.requestIds.length} requests; at most ${MAX_RELEASE_IDS} per call`, {
          details: { param: "request_ids", limit: MAX_RELEASE_IDS },
        });
      }
      // Each request on its own: one that cannot be released (ended, not committed) is reported, the others go.
      let pinsReleased = 0;
      let released = 0;
      const failures: Array<{ requestId: string; code: string; message: string }> = [];
      for (const id of req.requestIds) {
        try {
          pinsReleased += rx.release(requireId(id, "request_ids entry")).pinsReleased;
          released++;
        } catch (err) {
          const e = toKvbridgeError(err);
          failures.push({ requestId: id.slice(0, MAX_ID_LENGTH), code: e.code, message: e.message });
        }
      }
      return { pinsReleased, released, failures };
    }),
  };
}
