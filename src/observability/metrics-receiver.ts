// Metrics of a receiver (decode node), listening to it rather than reaching into it: its counts read
// at scrape time through its queries, and its events counted as they happen (committed transfers by
// transport, aborts by end-reason kind). Call latency and failures are the server interceptors'.
import type { KvReceiver, ReceiverEventMap } from "../transfer/receiver.js";
import { transferLabels, type NodeMetrics, type ReceiverSnapshot } from "./metrics.js";

/** The scrape-time view of a receiver; `serving` is the node's health. */
export function receiverSnapshot(rx: KvReceiver, serving: () => boolean): () => ReceiverSnapshot {
  return () => {
    const s = rx.stats();
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

/**
 * Counts a receiver's events into `m`: on each request's first Commit, its written bytes by transport
 * (TCP: the bytes the receiver counted arriving; UCX: the rest, one-sided puts it never saw) and its
 * first-Alloc-to-Commit time; every abort by its reason kind. Returns the detach function.
 */
export function countReceiverEvents(rx: KvReceiver, m: NodeMetrics): () => void {
  // Registered now, so a fresh node already exports them (a dashboard tells "idle" from "missing").
  void [m.transferBytes, m.transferSeconds, m.aborts];
  const committed = ({ bytes, viaTcpBytes, seconds }: ReceiverEventMap["committed"][0]): void => {
    if (bytes === 0) return; // every chunk deduped: nothing moved
    if (viaTcpBytes > 0) m.transferBytes.inc(transferLabels(m, "tcp", "received"), viaTcpBytes);
    if (bytes > viaTcpBytes) m.transferBytes.inc(transferLabels(m, "ucx", "received"), bytes - viaTcpBytes);
    m.transferSeconds.observe(transferLabels(m, viaTcpBytes > 0 ? "tcp" : "ucx", "received"), seconds);
  };
  const aborted = ({ reason }: ReceiverEventMap["aborted"][0]): void => {
    m.aborts.inc({ reason: reason.kind });
  };
  rx.events.on("committed", committed);
  rx.events.on("aborted", aborted);
  return () => {
    rx.events.off("committed", committed);
    rx.events.off("aborted", aborted);
  };
}
