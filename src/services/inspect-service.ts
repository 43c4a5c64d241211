// gRPC handlers of the read-only Inspect service (kvctl, tests) over a KvReceiver: the node's stats,
// its entries and requests, and checksums of READY keys. Nothing here changes the store.
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { EntryState } from "../store/kv-store.js";
import type { KvReceiver } from "../transfer/receiver.js";
import type { InspectHandlers } from "../wire/generated/kvbridge/v1/Inspect.js";
import { PROTOCOL_VERSION } from "../wire/proto.js";
import { unaryHandler } from "./unary-handler.js";

/** What Inspect reports about the node around its receiver. */
export interface InspectedNode {
  role: string;
  version: string;
  /** The data planes the node offers ("ucx", "tcp"). */
  transports: readonly string[];
  /** What grpc.health.v1 says now (SERVING). */
  serving: () => boolean;
}

const ENTRY_STATES: ReadonlySet<string> = new Set<EntryState>(["writing", "ready", "failed"]);
const MAX_LISTED = 10_000;
const MAX_CHECKSUM_KEYS = 65_536;

function isEntryState(s: string): s is EntryState {
  return ENTRY_STATES.has(s);
}

export function inspectHandlers(rx: KvReceiver, node: InspectedNode): InspectHandlers {
  return {
    GetStats: unaryHandler(() => {
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
    ListRequests: unaryHandler(() => ({ requests: rx.listRequests() })),
    ChecksumKeys: unaryHandler((req) => {
      if (req.keys.length > MAX_CHECKSUM_KEYS) throw new KvbridgeError("INVALID_ARGUMENT", `at most ${MAX_CHECKSUM_KEYS} keys per ChecksumKeys call`);
      return { checksums: rx.checksums(req.keys) };
    }),
  };
}
