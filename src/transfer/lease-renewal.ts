// Keeping a request's lease alive on the receiver while its sender pushes: a Renew every period, never
// more than one in flight (a stalled connection, e.g. a network partition, must not pile them up to
// land in a burst when it heals), and none after the receiver said the lease expired or forgot the
// request (no later Renew can succeed; the Commit then reports it).
import { toKvbridgeError } from "../errors/kvbridge-error.js";

/** Starts renewing every `periodMs`; the returned function stops it (idempotent). */
export function startLeaseRenewal(renew: () => Promise<unknown>, periodMs: number): () => void {
  let inFlight = false;
  let stopped = false;
  const timer = setInterval(() => {
    if (inFlight || stopped) return;
    inFlight = true;
    renew().then(
      () => {
        inFlight = false;
      },
      (err: unknown) => {
        inFlight = false;
        const e = toKvbridgeError(err);
        if (e.details.reason === "lease_expired" || e.code === "NOT_FOUND") stop();
      },
    );
  }, periodMs);
  timer.unref();
  const stop = (): void => {
    stopped = true;
    clearInterval(timer);
  };
  return stop;
}
