// Long-running node processes: SIGTERM/SIGINT drain then exit; a second signal exits at once.
import type { Logger } from "pino";

export function onShutdownSignal(log: Logger, drain: () => Promise<void>): void {
  let draining = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (draining) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    draining = true;
    log.info({ signal }, "draining");
    drain().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: (err as Error).message }, "drain failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
}
