// Metrics of a receiver (decode node): its store's counts read at scrape time, plus what only the
// gRPC edge sees (Alloc latency, failures by code, bytes and seconds per committed request).
// The handlers themselves stay untouched: each one is wrapped, its answer passed through as is.
import * as grpc from "@grpc/grpc-js";
import { CODE_METADATA_KEY } from "../wire/error-status.js";
import type { KvReceiverHandlers } from "../wire/generated/kvbridge/v1/KvReceiver.js";
import type { KvReceiver } from "../transfer/receiver.js";
import type { NodeMetrics, ReceiverSnapshot } from "./metrics.js";

/** The scrape-time view of a receiver; `serving` is the node's health. */
export function receiverSnapshot(rx: KvReceiver, serving: () => boolean): () => ReceiverSnapshot {
  return () => {
    const s = rx.store.stats();
    return {
      slots: {
        // The free list includes slots promised to batched requests: exported apart so the states add up.
        free: s.slotsFree - s.slotsReserved,
        reserved: s.slotsReserved,
        writing: s.slotsWriting,
        ready: s.slotsReady,
        quarantined: s.slotsQuarantined,
      },
      slotBytes: rx.memory.slotBytes,
      activeRequests: s.activeRequests,
      entries: s.entries,
      dedupHits: s.dedupHits,
      dedupMisses: s.dedupMisses,
      leasesExpired: s.leasesExpired,
      holdsExpired: s.holdsExpired,
      requestsCommitted: s.requestsCommitted,
      evictions: s.evictions,
      serving: serving(),
    };
  };
}

/** Low-cardinality label for a receiver-side abort reason (the free text goes to the log). */
export function abortReasonLabel(reason: string): "connection_lost" | "admin" | "requested" {
  if (reason.startsWith("data connection lost")) return "connection_lost";
  if (reason.startsWith("admin")) return "admin";
  return "requested";
}

/**
 * Counts every abort the receiver performs (sender Abort, lost data connection, admin) by reason.
 * Chains onto the receiver's existing event hooks, so set other hooks before calling this.
 */
export function countReceiverAborts(rx: KvReceiver, m: NodeMetrics): void {
  void m.aborts;
  const prev = rx.events;
  rx.events = {
    ...prev,
    onAborted(requestId, reason) {
      m.aborts.inc({ reason: abortReasonLabel(reason) });
      prev.onAborted?.(requestId, reason);
    },
  };
}

/** The KvbridgeError code (lowercase) carried by a handler's error answer. */
function errorReason(err: Partial<grpc.StatusObject> | grpc.ServiceError): string {
  const carried = err.metadata?.get(CODE_METADATA_KEY)[0];
  if (typeof carried === "string") return carried.toLowerCase();
  return (grpc.status[err.code ?? grpc.status.UNKNOWN] ?? "unknown").toLowerCase();
}

type Observer<Req> = {
  op: string;
  /** Runs before the handler (state it needs may be gone after); returns what to record on success. */
  before?: (req: Req) => (() => void) | undefined;
  seconds?: (s: number) => void;
};

function observe<Req, Res>(m: NodeMetrics, h: grpc.handleUnaryCall<Req, Res>, o: Observer<Req>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const t0 = performance.now();
    const onSuccess = o.before?.(call.request);
    h(call, (err, value, ...rest) => {
      o.seconds?.((performance.now() - t0) / 1000);
      if (err) m.failures.inc({ op: o.op, reason: errorReason(err) });
      else onSuccess?.();
      callback(err, value, ...rest);
    });
  };
}

/**
 * Wraps the KvReceiver handlers: Alloc latency, failures of every call by code, and on each first
 * Commit the request's written bytes and its first-Alloc-to-Commit time. The transport is "tcp" when
 * any of its bytes came through the TCP data plane (the receiver sees those), else "ucx" (one-sided
 * puts land without the receiver's CPU).
 */
export function instrumentReceiverHandlers(handlers: KvReceiverHandlers, rx: KvReceiver, m: NodeMetrics): KvReceiverHandlers {
  // Registered now, so a fresh node already exports them (a dashboard tells "idle" from "missing").
  void [m.allocSeconds, m.transferBytes, m.transferSeconds, m.failures];
  const commitTransfer = (requestId: string): (() => void) | undefined => {
    const rec = rx.store.internals().requests.get(requestId);
    if (!rec || rec.phase !== "allocating") return undefined; // a retried Commit counts nothing twice
    const entries = rx.store.internals().entries;
    let bytes = 0;
    let viaTcp = false;
    for (const hold of rec.holds.values()) {
      if (hold.role !== "writer") continue;
      const e = entries.get(hold.entryId);
      if (!e || e.status.state !== "writing") continue;
      bytes += e.size;
      if (e.bytesWritten > 0) viaTcp = true;
    }
    if (bytes === 0) return undefined;
    const startedAt = rec.createdAt;
    const labels = { transport: viaTcp ? "tcp" : "ucx", direction: "received" };
    return () => {
      m.transferBytes.inc(labels, bytes);
      m.transferSeconds.observe(labels, Math.max(0, rx.now() - startedAt) / 1000);
    };
  };
  return {
    ...handlers,
    Hello: observe(m, handlers.Hello, { op: "hello" }),
    Alloc: observe(m, handlers.Alloc, { op: "alloc", seconds: (s) => m.allocSeconds.observe(s) }),
    Commit: observe(m, handlers.Commit, { op: "commit", before: (req) => commitTransfer(req.requestId) }),
    Abort: observe(m, handlers.Abort, { op: "abort" }),
    Renew: observe(m, handlers.Renew, { op: "renew" }),
    AwaitReady: observe(m, handlers.AwaitReady, { op: "await_ready" }),
    Release: observe(m, handlers.Release, { op: "release" }),
  };
}
