// pino JSON logs on stderr (stdout stays clean for command output such as `kvbridge send --json`).
import { pino, type Logger } from "pino";

export type { Logger } from "pino";

/** `level` comes from the command's --log-level (or KVBRIDGE_LOG_LEVEL, read by the CLI). */
export function createLogger(opts: { level: string; name: string; base?: Record<string, unknown> }): Logger {
  return pino({ name: opts.name, level: opts.level, base: { pid: process.pid, ...opts.base } }, pino.destination(2));
}

/** A logger that writes nothing, for library use and tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
