// Waiting on shared work for one request: the request's AbortSignal ends its own wait (CANCELLED)
// without touching the shared work or the others waiting on it; and a sleep a signal cuts short.

import { KvbridgeError } from "../errors/kvbridge-error.js";

/**
 * Waits for a shared promise on behalf of one request: the request's signal rejects this wait with
 * CANCELLED but leaves the shared work (and everyone else waiting on it) untouched.
 */
export function raceSignal<T>(p: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new KvbridgeError("CANCELLED", `${what} cancelled`));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new KvbridgeError("CANCELLED", `${what} cancelled`));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

export function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new KvbridgeError("CANCELLED", "cancelled"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
