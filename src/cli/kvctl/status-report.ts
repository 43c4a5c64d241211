// What `kvctl status` and `kvctl watch` say about a node, built from its Inspect answers and health.
// Pure: the same report renders as a human block or as JSON, and tests build it from known values.
import { toKvbridgeError, type ErrorCode } from "../../errors/kvbridge-error.js";
import type { ModelStats__Output } from "../../wire/generated/kvbridge/v1/ModelStats.js";
import type { RequestInfo__Output } from "../../wire/generated/kvbridge/v1/RequestInfo.js";
import type { Stats__Output } from "../../wire/generated/kvbridge/v1/Stats.js";
import { formatBytes, formatDuration, formatPercent, formatRate } from "./human-units.js";
import { printable } from "./terminal-text.js";
import type { HealthStatus } from "./node-client.js";

/** One GetStats answer and when it arrived (ms, the caller's clock). */
export interface StatsSample {
  stats: Stats__Output;
  at: number;
}

export interface SlotCounts {
  total: number;
  free: number;
  reserved: number;
  writing: number;
  ready: number;
  quarantined: number;
}

/** One model of the node: its state, and while resident its engine's sequences and prefix cache. */
export interface ModelStatus {
  id: string;
  state: string;
  sequences_in_use: number;
  sequences_total: number;
  prefix_cache: { chunks: number; bytes: number; budget_bytes: number; lookups: number; hit_chunks: number };
}

export function modelStatus(m: ModelStats__Output): ModelStatus {
  return {
    id: m.id,
    state: m.state,
    sequences_in_use: m.sequencesInUse,
    sequences_total: m.sequencesTotal,
    prefix_cache: { chunks: m.prefixCacheChunks, bytes: m.prefixCacheBytes, budget_bytes: m.prefixCacheBudgetBytes, lookups: m.prefixCacheLookups, hit_chunks: m.prefixCacheHitChunks },
  };
}

export interface NodeStatus {
  address: string;
  ok: true;
  node_id: string;
  role: string;
  version: string;
  protocol_version: number;
  health: HealthStatus;
  transports: string[];
  /** Decode: the data planes the node has but does not offer, and why (what Hello tells senders). */
  transports_not_offered: Array<{ transport: string; reason: string; message: string }>;
  /** Decode: protocol capabilities senders may negotiate (data_plane_commit: Commit behind the last write). */
  capabilities: string[];
  fingerprint: string;
  generation: number;
  pool: { slot_bytes: number; slots: SlotCounts; bytes: SlotCounts };
  entries: number;
  /** Decode: requests holding KV in the pool; prefill: Prefill calls running. */
  active_requests: number;
  /** Decode: Generate calls running (waiting for KV, loading it, decoding). */
  active_generations: number;
  /** Prefill: Prefill calls running (evaluating, pushing). */
  pushes_in_flight: number;
  models: ModelStatus[];
  /** Allocating requests whose lease ends within near_expiry_ms (a stalled sender looks like this). */
  leases_near_expiry: number;
  near_expiry_ms: number;
  dedup: { hits: number; misses: number; hit_rate: number | null };
  /** Data-plane bytes the node received (TCP as frames land, UCX at each request's commit), and their rate between two samples. */
  transfer: { bytes_received: number; rate_bytes_per_second: number | null; sample_ms: number | null };
  requests_committed: number;
  requests_aborted: number;
  leases_expired: number;
  evictions: number;
}

export interface NodeFailure {
  address: string;
  ok: false;
  /** The one error shape of kvctl (command-runner.ts ErrorBody): `node` is the address. */
  error: { code: ErrorCode; message: string; node: string | null };
}

export type NodeReport = NodeStatus | NodeFailure;

export function failureReport(address: string, err: unknown): NodeFailure {
  const e = toKvbridgeError(err);
  return { address, ok: false, error: { code: e.code, message: e.message, node: address } };
}

function timesSlotBytes(c: SlotCounts, slotBytes: number): SlotCounts {
  return {
    total: c.total * slotBytes,
    free: c.free * slotBytes,
    reserved: c.reserved * slotBytes,
    writing: c.writing * slotBytes,
    ready: c.ready * slotBytes,
    quarantined: c.quarantined * slotBytes,
  };
}

export function buildStatus(
  address: string,
  sample: StatsSample,
  health: HealthStatus,
  requests: readonly RequestInfo__Output[],
  opts: { nearExpiryMs: number; previous?: StatsSample },
): NodeStatus {
  const s = sample.stats;
  const slots: SlotCounts = {
    total: s.slotsTotal,
    // The free list includes slots promised to batched requests: shown apart so the states add up.
    free: s.slotsFree - s.slotsReserved,
    reserved: s.slotsReserved,
    writing: s.slotsWriting,
    ready: s.slotsReady,
    quarantined: s.slotsQuarantined,
  };
  const bytes = timesSlotBytes(slots, s.slotBytes);
  const lookups = s.dedupHits + s.dedupMisses;
  const prev = opts.previous;
  // A rate needs two samples of the same process: a restarted node (new generation) starts over.
  const comparable = prev !== undefined && prev.stats.generation === s.generation && sample.at > prev.at;
  const rate = comparable ? Math.max(0, s.bytesReceived - prev.stats.bytesReceived) / ((sample.at - prev.at) / 1000) : null;
  return {
    address,
    ok: true,
    node_id: s.nodeId,
    role: s.role,
    version: s.version,
    protocol_version: s.protocolVersion,
    health,
    transports: s.transports,
    transports_not_offered: s.transportsNotOffered.map((n) => ({ transport: n.transport, reason: n.reason, message: n.message })),
    capabilities: s.capabilities,
    fingerprint: s.fingerprint,
    generation: s.generation,
    pool: { slot_bytes: s.slotBytes, slots, bytes },
    entries: s.entries,
    active_requests: s.activeRequests,
    active_generations: s.activeGenerations,
    pushes_in_flight: s.pushesInFlight,
    models: s.models.map(modelStatus),
    leases_near_expiry: requests.filter((r) => r.phase === "allocating" && r.leaseLeftMs < opts.nearExpiryMs).length,
    near_expiry_ms: opts.nearExpiryMs,
    dedup: { hits: s.dedupHits, misses: s.dedupMisses, hit_rate: lookups > 0 ? s.dedupHits / lookups : null },
    transfer: { bytes_received: s.bytesReceived, rate_bytes_per_second: rate, sample_ms: comparable ? sample.at - prev.at : null },
    requests_committed: s.requestsCommitted,
    requests_aborted: s.requestsAborted,
    leases_expired: s.leasesExpired,
    evictions: s.evictions,
  };
}

function slotsWithBytes(n: number, slotBytes: number): string {
  return n === 0 ? "0" : `${n} (${formatBytes(n * slotBytes)})`;
}

/** "m1 loaded 1/4 sequences, m2 unloaded": each model of the node on one line. */
function modelsLine(models: readonly ModelStatus[]): string {
  return models.map((m) => `${printable(m.id)} ${printable(m.state)}` + (m.sequences_total > 0 ? ` ${m.sequences_in_use}/${m.sequences_total} sequences` : "")).join(", ");
}

/** "tcp (commit on the data plane); ucx not offered: ucx_not_direct (why)": what senders get and why not the rest. */
function dataPlanesLine(r: NodeStatus): string {
  const offered = (r.transports.join(",") || "none") + (r.capabilities.includes("data_plane_commit") ? " (commit on the data plane)" : "");
  const not = r.transports_not_offered.map((n) => `${n.transport} not offered: ${n.reason} (${n.message})`);
  return printable([offered, ...not].join("; "));
}

/** A prefill node's block: its models, their prefix caches, its pushes in flight. */
function renderPrefillStatus(r: NodeStatus, identity: string[]): string {
  const cached = r.models.filter((m) => m.sequences_total > 0);
  const cache = cached.length === 0
    ? "no model resident"
    : cached
        .map((m) => {
          const pc = m.prefix_cache;
          const on = pc.budget_bytes > 0 ? `${pc.chunks} chunks, ${formatBytes(pc.bytes)} of ${formatBytes(pc.budget_bytes)}, ${pc.hit_chunks} chunk(s) found in ${pc.lookups} lookup(s)` : "off";
          return (r.models.length > 1 ? `${printable(m.id)}: ` : "") + on;
        })
        .join("; ");
  const lines = [
    identity.join("  "),
    `  models       ${modelsLine(r.models) || "none"}`,
    `  prefix cache ${cache}`,
    `  pushes       ${r.pushes_in_flight} in flight`,
  ];
  return lines.join("\n") + "\n";
}

/** The human block of one node: an identity line, then one labelled line per concern. Text a node chose is made printable. */
export function renderStatus(r: NodeReport): string {
  if (!r.ok) return `${printable(r.address)}  UNREACHABLE\n  error        ${r.error.code}: ${printable(r.error.message)}\n`;
  const sb = r.pool.slot_bytes;
  const p = r.pool.slots;
  const identity = [r.address, r.node_id, r.role, `v${r.version}`, `protocol ${r.protocol_version}`, r.health, r.transports.join(",") || "no data plane"].map(printable);
  if (r.role === "prefill") return renderPrefillStatus(r, identity);
  const engine = r.models.length > 0 || r.active_generations > 0;
  const lines = [
    identity.join("  "),
    `  pool         ${p.total} slots x ${formatBytes(sb)} = ${formatBytes(p.total * sb)}, ${formatPercent(p.total > 0 ? (p.total - p.free) / p.total : null)} in use`,
    `               free ${slotsWithBytes(p.free, sb)}  reserved ${slotsWithBytes(p.reserved, sb)}  writing ${slotsWithBytes(p.writing, sb)}  ready ${slotsWithBytes(p.ready, sb)}  quarantined ${slotsWithBytes(p.quarantined, sb)}`,
    `  requests     ${r.active_requests} active, ${r.leases_near_expiry} lease(s) ending within ${formatDuration(r.near_expiry_ms)}; ${r.requests_committed} committed, ${r.requests_aborted} aborted, ${r.leases_expired} expired so far`,
    `  keys         ${r.entries} entries, ${r.evictions} evicted so far`,
    `  dedup        ${r.dedup.hits} hits / ${r.dedup.misses} misses (${formatPercent(r.dedup.hit_rate)} hit rate)`,
    `  transfer     ${formatBytes(r.transfer.bytes_received)} received, ${formatRate(r.transfer.rate_bytes_per_second)}` +
      (r.transfer.sample_ms !== null ? ` over the last ${formatDuration(r.transfer.sample_ms)}` : " (rate not sampled)"),
    `  data planes  ${dataPlanesLine(r)}`,
    ...(engine ? [`  generating   ${r.active_generations} active generation(s)`, `  models       ${modelsLine(r.models) || "none"}`] : []),
  ];
  return lines.join("\n") + "\n";
}

/** -o wide: the human block plus the node's fingerprint and generation and the pool's bytes by state. */
export function renderStatusWide(r: NodeReport): string {
  const base = renderStatus(r);
  if (!r.ok) return base;
  if (r.role === "prefill") return base + `  identity     fingerprint ${printable(r.fingerprint) || "(none)"}\n`;
  const b = r.pool.bytes;
  const extra = [
    `  identity     fingerprint ${printable(r.fingerprint) || "(none: raw transfers only)"}, generation ${r.generation}`,
    `  pool bytes   total ${b.total}  free ${b.free}  reserved ${b.reserved}  writing ${b.writing}  ready ${b.ready}  quarantined ${b.quarantined}`,
    `  transfer     ${r.transfer.bytes_received} bytes received in all`,
  ];
  return base + extra.join("\n") + "\n";
}
