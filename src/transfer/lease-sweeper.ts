// The single owner of expiry: one timer per receiver that calls the store's sweep. Nothing else
// expires leases, so there is never a second, racing cleanup path.

export interface LeaseSweeperOptions {
  intervalMs: number;
  sweep: () => void;
}

export class LeaseSweeper {
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly opts: LeaseSweeperOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.opts.sweep(), this.opts.intervalMs);
    // The sweeper never keeps a process alive on its own.
    this.timer.unref();
  }

  /** Idempotent. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
