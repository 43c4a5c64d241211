// gRPC handlers of the read-only Inspect service (kvctl, tests). A decode node's answers come from its
// KvReceiver (stats, entries, KV requests, checksums of READY keys) plus its Generate calls and models;
// a prefill node, which holds no KV store, answers GetStats (its models, sequences, prefix cache and
// pushes in flight) and ListRequests (its Prefill calls), and refuses ListEntries and ChecksumKeys
// (FAILED_PRECONDITION). Nothing here changes any state.
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { NodeModels } from "../models/node-models.js";
import type { EntryState } from "../store/kv-store.js";
import type { KvReceiver } from "../transfer/receiver.js";
import { offersDataPlaneCommit } from "../transport/transport.js";
import type { InspectHandlers } from "../wire/generated/kvbridge/v1/Inspect.js";
import type { ModelStats } from "../wire/generated/kvbridge/v1/ModelStats.js";
import type { RequestInfo } from "../wire/generated/kvbridge/v1/RequestInfo.js";
import type { Stats } from "../wire/generated/kvbridge/v1/Stats.js";
import { CAPABILITY_DATA_PLANE_COMMIT, PROTOCOL_VERSION } from "../wire/proto.js";
import type { GenerationView } from "./decode-service.js";
import type { PrefillView } from "./prefills-in-flight.js";
import { unaryHandler } from "./unary-handler.js";

/** What Inspect reports about the node around its receiver. */
export interface InspectedNode {
  role: string;
  version: string;
  /** The data planes the node offers ("ucx", "tcp"). */
  transports: readonly string[];
  /** What grpc.health.v1 says now (SERVING). */
  serving: () => boolean;
  /** The node's models (undefined while none are attached, or a node without an engine). */
  models?: () => NodeModels | undefined;
  /** Decode: the Generate calls running now. */
  generations?: () => readonly GenerationView[];
}

/** What Inspect reports about a prefill node. */
export interface InspectedPrefillNode {
  nodeId: string;
  version: string;
  /** The data planes it pushes over. */
  transports: readonly string[];
  serving: () => boolean;
  models: () => NodeModels;
  /** The default model's fingerprint. */
  fingerprint: () => string;
  prefills: () => readonly PrefillView[];
}

const ENTRY_STATES: ReadonlySet<string> = new Set<EntryState>(["writing", "ready", "failed"]);
const MAX_LISTED = 10_000;
const MAX_CHECKSUM_KEYS = 65_536;

function isEntryState(s: string): s is EntryState {
  return ENTRY_STATES.has(s);
}

/** Every model of the node, with its engine's sequences and prefix cache while resident. */
export function modelStats(models: NodeModels | undefined): ModelStats[] {
  if (!models) return [];
  return models.snapshots().map((m) => {
    const e = models.engineOf(m.id);
    const pc = e?.prefixCacheStats;
    return {
      id: m.id,
      state: m.state,
      sequencesInUse: e?.sequencesInUse ?? 0,
      sequencesTotal: e?.maxSequences ?? 0,
      prefixCacheChunks: pc?.chunks ?? 0,
      prefixCacheBytes: pc?.bytes ?? 0,
      prefixCacheBudgetBytes: pc?.budgetBytes ?? 0,
      prefixCacheLookups: pc?.lookups ?? 0,
      prefixCacheHitChunks: pc?.hitChunks ?? 0,
    };
  });
}

function generationInfo(g: GenerationView, now: number): RequestInfo {
  return { requestId: g.requestId, kind: "generate", phase: g.phase, model: g.model, promptTokens: g.promptTokens, tokensGenerated: g.tokensGenerated, ageMs: Math.max(0, now - g.startedAt), leaseLeftMs: -1 };
}

function prefillInfo(p: PrefillView, now: number): RequestInfo {
  return { requestId: p.requestId, kind: "prefill", phase: p.phase, model: p.model, promptTokens: p.promptTokens, chunks: p.chunks, peer: p.decodeTarget, ageMs: Math.max(0, now - p.startedAt), leaseLeftMs: -1 };
}

export function inspectHandlers(rx: KvReceiver, node: InspectedNode): InspectHandlers {
  return {
    GetStats: unaryHandler((): Stats => {
      const s = rx.stats();
      return {
        nodeId: rx.nodeId,
        role: node.role,
        version: node.version,
        protocolVersion: PROTOCOL_VERSION,
        generation: rx.generation,
        transports: [...node.transports],
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
        bytesReceived: s.bytesCommitted,
        leasesExpired: s.leasesExpired,
        requestsCommitted: s.requestsCommitted,
        requestsAborted: s.requestsAborted,
        evictions: s.evictions,
        fingerprint: rx.fingerprint,
        serving: node.serving(),
        activeGenerations: node.generations?.().length ?? 0,
        models: modelStats(node.models?.()),
        // The data planes not offered, and why; the capabilities senders may negotiate (Hello answers the same).
        transportsNotOffered: rx.getNotOffered().map((n) => ({ transport: n.transport, reason: n.reason, message: n.message })),
        capabilities: offersDataPlaneCommit(rx.getOffers()) ? [CAPABILITY_DATA_PLANE_COMMIT] : [],
      };
    }),
    ListEntries: unaryHandler((req) => {
      let state: EntryState | undefined;
      if (req.state) {
        if (!isEntryState(req.state)) throw new KvbridgeError("INVALID_ARGUMENT", `unknown state "${req.state}"; use writing, ready or failed`);
        state = req.state;
      }
      const all = rx.listEntries({ state, pinnedOnly: req.pinnedOnly, prefix: req.prefix || undefined });
      const limit = req.limit > 0 ? req.limit : MAX_LISTED;
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
    ListRequests: unaryHandler(() => {
      const now = Date.now();
      const kv: RequestInfo[] = rx.listRequests().map((r) => ({ ...r, kind: "kv" }));
      return { requests: [...kv, ...(node.generations?.() ?? []).map((g) => generationInfo(g, now))] };
    }),
    ChecksumKeys: unaryHandler((req) => {
      if (req.keys.length > MAX_CHECKSUM_KEYS) throw new KvbridgeError("INVALID_ARGUMENT", `at most ${MAX_CHECKSUM_KEYS} keys per ChecksumKeys call`);
      return { checksums: rx.checksums(req.keys) };
    }),
  };
}

export function prefillInspectHandlers(node: InspectedPrefillNode): InspectHandlers {
  const noStore = (): KvbridgeError =>
    new KvbridgeError("FAILED_PRECONDITION", `prefill node ${node.nodeId} holds no KV store (its prefix cache is in GetStats, kvctl status); ask a decode node`);
  return {
    GetStats: unaryHandler((): Stats => {
      const prefills = node.prefills();
      return {
        nodeId: node.nodeId,
        role: "prefill",
        version: node.version,
        protocolVersion: PROTOCOL_VERSION,
        transports: [...node.transports],
        activeRequests: prefills.length,
        pushesInFlight: prefills.length,
        fingerprint: node.fingerprint(),
        serving: node.serving(),
        models: modelStats(node.models()),
      };
    }),
    ListEntries: unaryHandler(() => {
      throw noStore();
    }),
    ListRequests: unaryHandler(() => {
      const now = Date.now();
      return { requests: node.prefills().map((p) => prefillInfo(p, now)) };
    }),
    ChecksumKeys: unaryHandler(() => {
      throw noStore();
    }),
  };
}
