// Requests waiting for a free sequence, first come first served: each wait is bounded in time and
// by its own request's signal (a cancel takes out that waiter only), and the pool hands a freed
// sequence to the oldest waiter. Shared by both sequence pools.
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { cancelled } from "./sequence-pool.js";

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: KvbridgeError): void;
}

export class WaiterQueue<T> {
  private readonly waiters: Waiter<T>[] = [];

  /** Waits for hand(); rejects with `timeout()` after waitMs, or CANCELLED/DEADLINE_EXCEEDED on the signal. */
  wait(waitMs: number, signal: AbortSignal | undefined, timeout: () => KvbridgeError): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
      };
      const waiter: Waiter<T> = {
        resolve: (value) => {
          done();
          resolve(value);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
      const onAbort = (): void => waiter.reject(cancelled("waiting for a free sequence", signal));
      const timer = setTimeout(() => waiter.reject(timeout()), waitMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** The oldest waiter, taken out of the queue (the caller resolves or rejects it), or undefined. */
  take(): Waiter<T> | undefined {
    return this.waiters.shift();
  }

  /** Rejects every waiter with `err`. */
  rejectAll(err: KvbridgeError): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}
