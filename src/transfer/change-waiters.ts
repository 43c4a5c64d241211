// Waiting for the receiver's state to change (a key turning READY or FAILED, a request ending), with
// a bound and the caller's signal: every waiter is woken on each change and looks again itself.
import { KvbridgeError } from "../errors/kvbridge-error.js";

export class ChangeWaiters {
  private readonly waiters = new Set<() => void>();

  /** Wakes every waiter (each re-checks what it waits for). */
  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Resolves at the next change or after timeoutMs; rejects CANCELLED on the signal and UNAVAILABLE
   * when `closed()` holds (checked before waiting and on waking).
   */
  wait(timeoutMs: number, signal: AbortSignal | undefined, closed: () => boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new KvbridgeError("CANCELLED", "wait cancelled"));
        return;
      }
      if (closed()) {
        reject(new KvbridgeError("UNAVAILABLE", "receiver closed while waiting"));
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", onAbort);
        if (closed()) reject(new KvbridgeError("UNAVAILABLE", "receiver closed while waiting"));
        else resolve();
      };
      const onAbort = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        reject(new KvbridgeError("CANCELLED", "wait cancelled"));
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}
