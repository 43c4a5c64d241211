// gRPC handlers of the KvReceiver and Inspect services over a KvReceiver. Input is validated here
// (the edge); the store only ever sees well-formed values.
import type * as grpc from "@grpc/grpc-js";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { PROTOCOL_VERSION } from "../wire/proto.js";
import { callSignal, unaryHandler } from "../wire/unary.js";
import type { KvReceiverHandlers } from "../wire/generated/kvbridge/v1/KvReceiver.js";
import type { InspectHandlers } from "../wire/generated/kvbridge/v1/Inspect.js";
import type { KeyState as WireKeyState } from "../wire/generated/kvbridge/v1/KeyState.js";
import { MAX_ID_LENGTH, type EntryState } from "../store/kv-store.js";
import { offerToWire } from "../transfer/offer-codec.js";
import type { KvReceiver } from "../transfer/receiver.js";
import { wellFormed } from "../wire/error-status.js";

export const MAX_AWAIT_MS = 120_000;

export interface NodeIdentity {
  role: string;
  version: string;
  /** False while loading or draining: new work is refused with UNAVAILABLE. */
  serving: () => boolean;
}

function requireId(value: string, what: string): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new KvbridgeError("INVALID_ARGUMENT", `${what} is empty; every call needs one`);
  }
  if (value.length > MAX_ID_LENGTH) {
    throw new KvbridgeError("INVALID_ARGUMENT", `${what} is ${value.length} characters; the most is ${MAX_ID_LENGTH}`);
  }
  return value;
}

const WIRE_STATE: Record<string, WireKeyState> = {
  writing: "KEY_STATE_WRITING",
  ready: "KEY_STATE_READY",
  failed: "KEY_STATE_FAILED",
};

export function receiverHandlers(rx: KvReceiver, node: NodeIdentity): KvReceiverHandlers {
  const refuseWhenNotServing = (): void => {
    if (!node.serving()) throw new KvbridgeError("UNAVAILABLE", `node ${rx.nodeId} is not serving (starting or draining); use another node`);
  };
  return {
    Hello: unaryHandler((req) => {
      // While the engine loads (or once closed) the fingerprint is not final: say so, not "mismatch".
      refuseWhenNotServing();
      if (req.protocolVersion !== PROTOCOL_VERSION) {
        throw new KvbridgeError(
          "INCOMPATIBLE",
          `protocol version mismatch: sender speaks ${req.protocolVersion}, this node speaks ${PROTOCOL_VERSION}; run the same kvbridge version on both`,
        );
      }
      if (req.fingerprint !== rx.fingerprint) {
        throw new KvbridgeError(
          "INCOMPATIBLE",
          `model fingerprint mismatch: sender ${req.fingerprint || "(raw)"} vs receiver ${rx.fingerprint || "(raw)"}; both nodes must load the same model file with the same KV settings`,
        );
      }
      const wanted = new Set(req.transports);
      const offers = rx.getOffers().filter((o) => wanted.size === 0 || wanted.has(o.kind));
      return {
        protocolVersion: PROTOCOL_VERSION,
        fingerprint: rx.fingerprint,
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
      refuseWhenNotServing();
      requireId(req.requestId, "request_id");
      if (req.generation !== 0 && req.generation !== rx.generation) {
        throw new KvbridgeError(
          "FAILED_PRECONDITION",
          `receiver restarted: generation ${rx.generation}, sender handshaked with ${req.generation}; send Hello again`,
          { details: { reason: "receiver_restarted", generation: rx.generation } },
        );
      }
      if (req.fingerprint !== rx.fingerprint) {
        throw new KvbridgeError("INCOMPATIBLE", `model fingerprint mismatch in Alloc for ${req.requestId}`);
      }
      if (req.keys.length > rx.maxKeysPerAlloc) {
        throw new KvbridgeError("INVALID_ARGUMENT", `${req.keys.length} keys in one Alloc; the most is ${rx.maxKeysPerAlloc}, split into batches`);
      }
      const res = rx.alloc({
        requestId: req.requestId,
        keys: req.keys,
        sizes: req.sizes,
        batchSeq: req.batchSeq,
        totalChunks: req.totalChunks,
        isLastBatch: req.isLastBatch,
        peer: (call as grpc.ServerUnaryCall<unknown, unknown>).getPeer(),
      });
      return {
        remoteIndexes: res.remoteIndexes,
        alreadySentIndexes: res.alreadySentIndexes,
        writeTokens: res.writeTokens,
        slotBytes: rx.memory.slotBytes,
        leaseExpiresAtMs: res.leaseExpiresAt,
      };
    }),
    Commit: unaryHandler((req) => {
      const r = rx.commit(requireId(req.requestId, "request_id"));
      return { keysReady: r.ready, keysPending: r.pending, keysFailed: r.failed };
    }),
    Abort: unaryHandler((req) => {
      // The reason is logged and remembered for late calls: a sender's words, kept short.
      const r = rx.abort(requireId(req.requestId, "request_id"), { kind: "sender_abort", detail: req.reason ? wellFormed(req.reason.slice(0, 200)) : undefined });
      return { slotsReleased: r.slotsReleased, pinsReleased: r.pinsReleased };
    }),
    Renew: unaryHandler((req) => ({ leaseExpiresAtMs: rx.renew(requireId(req.requestId, "request_id")) })),
    AwaitReady: unaryHandler(async (req, call) => {
      const id = requireId(req.requestId, "request_id");
      const timeout = Math.min(req.timeoutMs || 10_000, MAX_AWAIT_MS);
      const st = await rx.awaitReady(id, timeout, callSignal(call as grpc.ServerUnaryCall<unknown, unknown>));
      return { allReady: st.allReady, keys: st.keys.map((k) => k.key), states: st.keys.map((k) => WIRE_STATE[k.state]!) };
    }),
    Release: unaryHandler((req) => ({ pinsReleased: rx.release(requireId(req.requestId, "request_id")).pinsReleased })),
  };
}

const ENTRY_STATES = new Set<EntryState>(["writing", "ready", "failed"]);

export function inspectHandlers(rx: KvReceiver, node: NodeIdentity, transports: () => string[]): InspectHandlers {
  return {
    GetStats: unaryHandler(() => {
      const s = rx.store.stats();
      return {
        nodeId: rx.nodeId,
        role: node.role,
        version: node.version,
        protocolVersion: PROTOCOL_VERSION,
        generation: rx.generation,
        transports: transports(),
        slotBytes: rx.memory.slotBytes,
        slotsTotal: s.slotsTotal,
        slotsFree: s.slotsFree,
        slotsWriting: s.slotsWriting,
        slotsReady: s.slotsReady,
        slotsQuarantined: s.slotsQuarantined,
        slotsReserved: s.slotsReserved,
        entries: s.entries,
        activeRequests: s.activeRequests,
        dedupHits: s.dedupHits,
        dedupMisses: s.dedupMisses,
        bytesReceived: rx.bytesReceived,
        leasesExpired: s.leasesExpired,
        requestsCommitted: s.requestsCommitted,
        requestsAborted: s.requestsAborted,
        evictions: s.evictions,
        fingerprint: rx.fingerprint,
        serving: node.serving(),
      };
    }),
    ListEntries: unaryHandler((req) => {
      if (req.state && !ENTRY_STATES.has(req.state as EntryState)) {
        throw new KvbridgeError("INVALID_ARGUMENT", `unknown state "${req.state}"; use writing, ready or failed`);
      }
      const all = rx.store.listEntries(rx.now(), {
        state: (req.state || undefined) as EntryState | undefined,
        pinnedOnly: req.pinnedOnly,
        prefix: req.prefix || undefined,
      });
      const limit = req.limit > 0 ? req.limit : 10_000;
      return {
        total: all.length,
        entries: all.slice(0, limit).map((e) => ({
          key: e.key,
          state: e.state,
          refcount: e.refcount,
          pinnedBy: e.pinnedBy,
          slot: e.slot ?? -1,
          size: e.size,
          ageMs: e.ageMs,
          leaseLeftMs: e.leaseLeftMs ?? -1,
          owner: e.owner ?? "",
        })),
      };
    }),
    ListRequests: unaryHandler(() => ({
      requests: rx.store.listRequests(rx.now()).map((r) => ({ ...r, requestId: r.requestId })),
    })),
    ChecksumKeys: unaryHandler((req) => {
      if (req.keys.length > 65_536) throw new KvbridgeError("INVALID_ARGUMENT", "at most 65536 keys per ChecksumKeys call");
      return { checksums: rx.checksums(req.keys) };
    }),
  };
}
