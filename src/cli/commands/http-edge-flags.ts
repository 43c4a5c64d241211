// The router's HTTP edge flags, shared by `kvbridge router` and `kvbridge up`: API keys (--api-key,
// --api-key-file, KVBRIDGE_API_KEY), whether they also guard the probes, and the CORS origins.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { Logger } from "pino";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { envOption } from "../env-option.js";

export interface HttpEdgeFlags {
  apiKey?: string[];
  apiKeyFile?: string;
  apiKeyProtectAll?: boolean;
  allowedOrigins?: string[];
}

export interface HttpEdgeOptions {
  apiKeys: string[];
  apiKeyProtectAll: boolean;
  allowedOrigins?: string[];
}

/** A comma list, added to what earlier uses of the flag gave (--api-key may be repeated). */
function listArg(v: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...v.split(",").map((s) => s.trim()).filter((s) => s.length > 0)];
}

/** --api-key-file: one key per line; blank lines and lines starting with # are skipped. */
function keysFromFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new KvbridgeError("INVALID_ARGUMENT", `--api-key-file ${file}: ${(err as Error).message}`, { cause: err, details: { param: "api-key-file" } });
  }
  const keys = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0 && !l.startsWith("#"));
  if (keys.length === 0) throw new KvbridgeError("INVALID_ARGUMENT", `--api-key-file ${file} holds no key`, { details: { param: "api-key-file" } });
  return keys;
}

export function addHttpEdgeOptions(cmd: Command): Command {
  return cmd
    .addOption(envOption("--api-key <keys>", "require Authorization: Bearer <key> with one of these keys (comma list; the flag may be repeated)").argParser(listArg))
    .addOption(envOption("--api-key-file <path>", "API keys, one per line (# comments), added to --api-key"))
    .addOption(envOption("--api-key-protect-all", "with API keys, also require one on /health, /healthz, /readyz, /version and /metrics"))
    .addOption(envOption("--allowed-origins <list>", "origins allowed by CORS (comma list, or *); default: none (no CORS headers, preflights refused)").argParser(listArg));
}

/** The router's edge options from the flags (the key file read now: a bad path fails the start). */
export function httpEdgeFromFlags(flags: HttpEdgeFlags, log: Logger): HttpEdgeOptions {
  const apiKeys = [...(flags.apiKey ?? []), ...(flags.apiKeyFile ? keysFromFile(flags.apiKeyFile) : [])];
  if (apiKeys.length > 0) log.info({ keys: apiKeys.length, protectAll: flags.apiKeyProtectAll === true }, "API key required");
  return { apiKeys, apiKeyProtectAll: flags.apiKeyProtectAll === true, allowedOrigins: flags.allowedOrigins };
}
