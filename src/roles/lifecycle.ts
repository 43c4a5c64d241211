// One lifecycle for every role (decode, prefill, router): resources are pushed on a cleanup stack as
// they are acquired, a failed start unwinds exactly what was acquired, a drain stops admissions and
// waits (bounded, woken by the work itself, not polled), and close runs once however often it is called.
import type { Logger } from "pino";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";

export type Cleanup = () => Promise<void> | void;

export type LifecyclePhase = "starting" | "serving" | "draining" | "closing" | "closed";

export class RoleLifecycle {
  private readonly cleanups: Cleanup[] = [];
  private readonly idleWaiters = new Set<() => void>();
  private phaseValue: LifecyclePhase = "starting";
  private closing: Promise<void> | undefined;

  constructor(
    private readonly log: Logger,
    /** What the role calls itself in log lines ("decode node", "router"...). */
    private readonly what: string,
    /** Work still in flight; a drain waits for it to reach 0. */
    private readonly inFlight: () => number,
  ) {}

  get phase(): LifecyclePhase {
    return this.phaseValue;
  }

  /** True only between started() and drain()/close(): the gate every admission checks. */
  get accepting(): boolean {
    return this.phaseValue === "serving";
  }

  /** Registers a resource's release; released in reverse order of acquisition. */
  defer(cleanup: Cleanup): void {
    // A resource acquired after close would never be released: the start that acquired it fails instead.
    if (this.phaseValue === "closed") throw new KvbridgeError("CANCELLED", `${this.what}: closed while starting`, { details: { reason: "draining" } });
    this.cleanups.push(cleanup);
  }

  /**
   * Runs the start sequence; if it throws, everything already deferred is released (a role whose
   * metrics port fails to bind leaves no gRPC server, sender or timer behind) and the error rethrown.
   */
  async start<T>(build: () => Promise<T>): Promise<T> {
    try {
      const built = await build();
      // A drain or close that came while starting wins: the role never turns serving behind it.
      if (this.phaseValue !== "starting") throw new KvbridgeError("CANCELLED", `${this.what}: closed while starting`, { details: { reason: "draining" } });
      this.phaseValue = "serving";
      return built;
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** Tells drains that in-flight work went down: call whenever a request of the role ends. */
  workEnded(): void {
    if (this.inFlight() > 0) return;
    for (const wake of [...this.idleWaiters]) wake();
  }

  /**
   * Stops admissions, waits for in-flight work to end (at most `timeoutMs`), then closes. Returns how
   * many were still in flight at the deadline (released by close).
   */
  async drain(timeoutMs: number): Promise<number> {
    if (this.phaseValue === "serving" || this.phaseValue === "starting") this.phaseValue = "draining";
    const left = await this.waitIdle(timeoutMs);
    if (left > 0) this.log.warn({ left }, `${this.what}: drain timeout, releasing work still in flight`);
    else this.log.info(`${this.what}: drained, nothing in flight`);
    await this.close();
    return left;
  }

  /** Resolves when nothing is in flight or the bound passes; returns what is still in flight. */
  waitIdle(timeoutMs: number): Promise<number> {
    if (this.inFlight() === 0 || timeoutMs <= 0) return Promise.resolve(this.inFlight());
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve(this.inFlight());
      };
      const timer = setTimeout(done, timeoutMs);
      this.idleWaiters.add(done);
    });
  }

  /** Idempotent: releases everything deferred, in reverse order; a failing cleanup is logged and the rest still run. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.phaseValue = "closing";
      for (const wake of [...this.idleWaiters]) wake();
      while (this.cleanups.length > 0) {
        const c = this.cleanups.pop()!;
        try {
          await c();
        } catch (err) {
          this.log.error({ err: toKvbridgeError(err).message }, `${this.what}: cleanup failed`);
        }
      }
      this.phaseValue = "closed";
    })();
    return this.closing;
  }
}
