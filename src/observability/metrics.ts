// The Prometheus metrics of a kvbridge process: one typed set per registry, shared by the decode
// node (receiver), the prefill node (sender) and the router. Names follow Prometheus conventions
// (`kvbridge_..._total` counters, `_seconds` and `_bytes` units, low-cardinality labels only) and pass
// `promtool check metrics`. The vLLM-style serving series (tokens, latency, queue) are in
// serving-metrics.ts; setting kvbridge_node_info{role} registers the ones of that role.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type LabelValues } from "prom-client";
import { toKvbridgeError, type ErrorCode } from "../errors/kvbridge-error.js";
import { servingMetrics, type ServingRole } from "./serving-metrics.js";

export { Registry } from "prom-client";

/** "sent" is counted by senders (prefill nodes), "received" by receivers (decode nodes). */
export type TransferDirection = "sent" | "received";

/** Pool slot states as exported: they add up to the pool's slot count. */
export const POOL_SLOT_STATES = ["free", "reserved", "writing", "ready", "quarantined"] as const;
export type PoolSlotState = (typeof POOL_SLOT_STATES)[number];

/** Values a receiver reports at scrape time (read from its store; nothing is counted twice). */
export interface ReceiverSnapshot {
  slots: Record<PoolSlotState, number>;
  slotBytes: number;
  activeRequests: number;
  entries: number;
  dedupHits: number;
  dedupMisses: number;
  leasesExpired: number;
  holdsExpired: number;
  requestsCommitted: number;
  evictions: number;
  /** 1 when grpc.health.v1 says SERVING. */
  serving: boolean;
}

/**
 * Outcome of a router request, the label value of kvbridge_router_requests_total: "ok", "cancelled"
 * (the client went away), or the failure's error code in lowercase ("unavailable", "invalid_argument"...).
 */
export type RouterOutcome = "ok" | "cancelled" | Lowercase<ErrorCode>;

export type TransferLabel = "transport" | "direction" | "model_name";

type NodeInfoLabel = "node_id" | "role" | "version" | "protocol_version";

/**
 * Default process_ and nodejs_ series that fail `promtool check metrics` (gauges named `_total`).
 * Dropped: each is the sum of the per-type gauge next to it (sum(nodejs_active_handles) is the
 * handle total), so nothing is lost.
 */
export const DROPPED_DEFAULT_METRICS = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"] as const;

function isServingRole(role: unknown): role is ServingRole {
  return role === "router" || role === "decode" || role === "prefill";
}

/** kvbridge_node_info, whose `role` label, once set, registers that role's serving series. */
class NodeInfoGauge extends Gauge<NodeInfoLabel> {
  constructor(registry: Registry) {
    super({ name: "kvbridge_node_info", help: "Identity of this node (value is always 1)", labelNames: ["node_id", "role", "version", "protocol_version"], registers: [registry] });
    this.onRole = (role) => servingMetrics(registry).registerRole(role);
  }
  private readonly onRole: (role: ServingRole) => void;
  override set(value: number): void;
  override set(labels: LabelValues<NodeInfoLabel>, value: number): void;
  override set(a: number | LabelValues<NodeInfoLabel>, b?: number): void {
    if (typeof a === "number") return super.set(a);
    if (isServingRole(a.role)) this.onRole(a.role);
    super.set(a, b ?? 1);
  }
}

export interface NodeMetrics {
  readonly registry: Registry;
  /**
   * kvbridge_transfer_bytes_total{transport,direction,model_name}: KV payload bytes moved (deduped
   * chunks excluded); model_name only once the node declared its model (declareModel).
   */
  readonly transferBytes: Counter<TransferLabel>;
  /** kvbridge_transfer_seconds{transport,direction,model_name}: per request, time spent moving its chunks. */
  readonly transferSeconds: Histogram<TransferLabel>;
  /** kvbridge_dedup_hits_total: Alloc keys already present (pinned, not sent). Counted by receivers. */
  readonly dedupHits: Counter;
  /** kvbridge_dedup_misses_total: Alloc keys that needed a fresh slot. Counted by receivers. */
  readonly dedupMisses: Counter;
  /** kvbridge_pool_slots{state}: the receiver's pool by slot state (collected at scrape time). */
  readonly poolSlots: Gauge<"state">;
  /** kvbridge_leases_expired_total: allocating requests released by the lease sweeper. */
  readonly leasesExpired: Counter;
  /** kvbridge_aborts_total{reason}: requests a receiver aborted, by end-reason kind (sender_abort, admin, connection_lost, decode_incomplete). */
  readonly aborts: Counter<"reason">;
  /** kvbridge_failures_total{op,reason}: failed operations by operation and error code (lowercase). */
  readonly failures: Counter<"op" | "reason">;
  /** kvbridge_alloc_seconds: time to answer one Alloc batch on the receiver. */
  readonly allocSeconds: Histogram;
  /** kvbridge_router_ttft_seconds: router time to first token, per request. */
  readonly routerTtftSeconds: Histogram;
  /** kvbridge_router_requests_total{outcome}: router requests by outcome (see RouterOutcome). */
  readonly routerRequests: Counter<"outcome">;
  /** kvbridge_node_info{node_id,role,version,protocol_version}: always 1; joins names onto series. */
  readonly nodeInfo: Gauge<NodeInfoLabel>;
  /**
   * Makes a receiver's store-derived values (pool slots, dedup, leases...) part of every scrape.
   * Returns a detach function. Several attached receivers are summed.
   */
  attachReceiver(snapshot: () => ReceiverSnapshot): () => void;
}

// Sub-millisecond to tens of seconds: an Alloc is microseconds on loopback, a transfer of a long
// prompt over TCP can take seconds.
const TRANSFER_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const ALLOC_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const byRegistry = new WeakMap<Registry, NodeMetrics>();

/** Creates a metric on first use, so a process exports only the series of the parts it runs. */
function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

/**
 * The metric set of `registry`, created on first use (prom-client refuses a name registered twice,
 * so every part of a process asks here instead of creating its own). Each metric is registered the
 * first time it is used, and the receiver's when one is attached: a router exports no pool series.
 * `defaultMetrics` adds the standard process_ and nodejs_ series once per registry.
 */
export function nodeMetrics(registry: Registry = new Registry(), opts: { defaultMetrics?: boolean } = {}): NodeMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;

  const sources = new Set<() => ReceiverSnapshot>();
  const snapshots = (): ReceiverSnapshot[] => [...sources].map((s) => s());
  const sum = (pick: (s: ReceiverSnapshot) => number): number | undefined => {
    const all = snapshots();
    return all.length === 0 ? undefined : all.reduce((acc, s) => acc + pick(s), 0);
  };
  /** A counter mirrored from a receiver's own monotonic count: set, not incremented, at scrape. */
  const mirroredCounter = (name: string, help: string, pick: (s: ReceiverSnapshot) => number): (() => Counter) =>
    lazy(
      () =>
        new Counter({
          name,
          help,
          registers: [registry],
          collect() {
            const v = sum(pick);
            if (v === undefined) return;
            this.reset();
            this.inc(v);
          },
        }),
    );
  const mirroredGauge = (name: string, help: string, pick: (s: ReceiverSnapshot) => number): (() => Gauge) =>
    lazy(
      () =>
        new Gauge({
          name,
          help,
          registers: [registry],
          collect() {
            const v = sum(pick);
            if (v !== undefined) this.set(v);
          },
        }),
    );

  const transferBytes = lazy(
    () =>
      new Counter({
        name: "kvbridge_transfer_bytes_total",
        help: "KV payload bytes moved between nodes (deduped chunks are not moved and not counted)",
        labelNames: ["transport", "direction", "model_name"] as const,
        registers: [registry],
      }),
  );
  const transferSeconds = lazy(
    () =>
      new Histogram({
        name: "kvbridge_transfer_seconds",
        help: "Per request: seconds spent moving its KV chunks (sender: data-plane writes; receiver: first Alloc to Commit)",
        labelNames: ["transport", "direction", "model_name"] as const,
        buckets: TRANSFER_BUCKETS,
        registers: [registry],
      }),
  );
  const poolSlots = lazy(
    () =>
      new Gauge({
        name: "kvbridge_pool_slots",
        help: "Receiver pool slots by state (free + reserved + writing + ready + quarantined = pool size)",
        labelNames: ["state"] as const,
        registers: [registry],
        collect() {
          const all = snapshots();
          if (all.length === 0) return;
          for (const state of POOL_SLOT_STATES) this.set({ state }, all.reduce((acc, s) => acc + s.slots[state], 0));
        },
      }),
  );
  const aborts = lazy(
    () =>
      new Counter({
        name: "kvbridge_aborts_total",
        help: "Requests aborted on the receiver, by reason (sender_abort, admin, connection_lost, decode_incomplete)",
        labelNames: ["reason"] as const,
        registers: [registry],
      }),
  );
  const failures = lazy(
    () =>
      new Counter({
        name: "kvbridge_failures_total",
        help: "Failed operations by operation and error code",
        labelNames: ["op", "reason"] as const,
        registers: [registry],
      }),
  );
  const allocSeconds = lazy(
    () => new Histogram({ name: "kvbridge_alloc_seconds", help: "Seconds the receiver took to answer one Alloc batch", buckets: ALLOC_BUCKETS, registers: [registry] }),
  );
  const routerTtftSeconds = lazy(
    () =>
      new Histogram({
        name: "kvbridge_router_ttft_seconds",
        help: "Router: seconds from receiving a completion request to its first token",
        buckets: TTFT_BUCKETS,
        registers: [registry],
      }),
  );
  const routerRequests = lazy(
    () =>
      new Counter({
        name: "kvbridge_router_requests_total",
        help: "Router: completion requests by outcome (ok, cancelled, or the error code in lowercase)",
        labelNames: ["outcome"] as const,
        registers: [registry],
      }),
  );
  const nodeInfo = lazy(() => new NodeInfoGauge(registry));
  const dedupHits = mirroredCounter("kvbridge_dedup_hits_total", "Alloc keys already present on the receiver: pinned instead of sent", (s) => s.dedupHits);
  const dedupMisses = mirroredCounter("kvbridge_dedup_misses_total", "Alloc keys that needed a fresh slot", (s) => s.dedupMisses);
  const leasesExpired = mirroredCounter("kvbridge_leases_expired_total", "Allocating requests whose lease ran out; their writes were released", (s) => s.leasesExpired);
  const receiverSeries = [
    poolSlots,
    dedupHits,
    dedupMisses,
    leasesExpired,
    mirroredCounter("kvbridge_holds_expired_total", "Committed requests never consumed: their pins were released after --hold-ms", (s) => s.holdsExpired),
    mirroredCounter("kvbridge_requests_committed_total", "Requests whose chunks were all written and committed", (s) => s.requestsCommitted),
    mirroredCounter("kvbridge_evictions_total", "READY entries evicted (LRU for room, or by an admin)", (s) => s.evictions),
    mirroredGauge("kvbridge_requests_active", "Requests holding slots or pins on the receiver", (s) => s.activeRequests),
    mirroredGauge("kvbridge_entries", "KV entries in the receiver store (any state)", (s) => s.entries),
    mirroredGauge("kvbridge_pool_slot_size_bytes", "Bytes per pool slot", (s) => s.slotBytes),
    mirroredGauge("kvbridge_serving", "1 when grpc.health.v1 reports SERVING, else 0", (s) => (s.serving ? 1 : 0)),
  ];

  const m: NodeMetrics = {
    registry,
    get transferBytes() {
      return transferBytes();
    },
    get transferSeconds() {
      return transferSeconds();
    },
    get dedupHits() {
      return dedupHits();
    },
    get dedupMisses() {
      return dedupMisses();
    },
    get poolSlots() {
      return poolSlots();
    },
    get leasesExpired() {
      return leasesExpired();
    },
    get aborts() {
      return aborts();
    },
    get failures() {
      return failures();
    },
    get allocSeconds() {
      return allocSeconds();
    },
    get routerTtftSeconds() {
      return routerTtftSeconds();
    },
    get routerRequests() {
      return routerRequests();
    },
    get nodeInfo() {
      return nodeInfo();
    },
    attachReceiver(snapshot) {
      for (const make of receiverSeries) make();
      sources.add(snapshot);
      // The same pool seen as vLLM sees its KV cache: usage ratio and prefix-cache lookups.
      const serving = servingMetrics(registry);
      serving.registerRole("decode");
      const pool = (): { slotsTotal: number; slotsFree: number; prefixQueries: number; prefixHits: number } => {
        const s = snapshot();
        const total = POOL_SLOT_STATES.reduce((acc, state) => acc + s.slots[state], 0);
        return { slotsTotal: total, slotsFree: s.slots.free, prefixQueries: s.dedupHits + s.dedupMisses, prefixHits: s.dedupHits };
      };
      serving.pools.add(pool);
      return () => {
        sources.delete(snapshot);
        serving.pools.delete(pool);
      };
    },
  };
  if (opts.defaultMetrics) {
    collectDefaultMetrics({ register: registry });
    for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  }
  byRegistry.set(registry, m);
  return m;
}

/** The label value for an error: its KvbridgeError code in lowercase ("resource_exhausted"). */
export function failureReason(err: unknown): Lowercase<ErrorCode> {
  return toKvbridgeError(err).code.toLowerCase() as Lowercase<ErrorCode>;
}

/**
 * The labels of a transfer series: model_name only once the node declared its model, so a raw
 * (engine-less) node exports exactly {transport, direction}.
 */
export function transferLabels(m: NodeMetrics, transport: string, direction: TransferDirection): Partial<Record<TransferLabel, string>> {
  const model = servingMetrics(m.registry).model;
  return model ? { transport, direction, model_name: model } : { transport, direction };
}

/** Sender side: one finished push (fields as in the sender's PushResult). */
export function recordPush(m: NodeMetrics, push: { transport: string; bytesSent: number; writeMs: number }): void {
  if (push.bytesSent <= 0) return;
  const labels = transferLabels(m, push.transport, "sent");
  m.transferBytes.inc(labels, push.bytesSent);
  m.transferSeconds.observe(labels, push.writeMs / 1000);
}

/** Any side: one failed operation (`op` is a short verb: push, alloc, commit, generate, route). */
export function recordFailure(m: NodeMetrics, op: string, err: unknown): void {
  m.failures.inc({ op, reason: failureReason(err) });
}

/** Router: one finished completion request; `ttftSeconds` when a first token was produced. */
export function recordRouterRequest(m: NodeMetrics, outcome: RouterOutcome, ttftSeconds?: number | null): void {
  m.routerRequests.inc({ outcome });
  if (ttftSeconds !== undefined && ttftSeconds !== null) m.routerTtftSeconds.observe(ttftSeconds);
}
