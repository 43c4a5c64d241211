// Every node flag can also come from the environment: --pool-slots <n> reads KVBRIDGE_POOL_SLOTS
// (flags win). One helper builds such options so the names never drift apart.
import { Option } from "commander";

export function envName(flags: string): string {
  const long = /--(?:no-)?([a-z0-9-]+)/.exec(flags)?.[1];
  if (!long) throw new Error(`option "${flags}" has no long name`);
  return `KVBRIDGE_${long.replace(/-/g, "_").toUpperCase()}`;
}

export function envOption<T>(flags: string, description: string, parse?: (v: string) => T, defaultValue?: T, defaultDescription?: string): Option {
  const opt = new Option(flags, description).env(envName(flags));
  if (parse) opt.argParser((v: string) => parse(v));
  if (defaultValue !== undefined) opt.default(defaultValue, defaultDescription);
  return opt;
}
