// The options a model is loaded with (context size, threads, sequences, chunk tokens), how a caller's
// partial options combine with the node's defaults, and when two loads count as "the same options":
// a declarative load with the same options is a no-op, with others a reload.
import { KvbridgeError } from "../errors/kvbridge-error.js";

export interface ModelLoadOptions {
  /** Tokens per sequence (prompt + output); unset: the engine's own choice for the model. */
  readonly contextSize?: number;
  /** CPU threads per evaluation. */
  readonly threads?: number;
  /** Requests evaluated at once (one context each). */
  readonly maxSequences?: number;
  /** Tokens per KV chunk; part of the fingerprint, so prefill and decode must agree. */
  readonly chunkTokens?: number;
}

export const MODEL_OPTION_KEYS = ["contextSize", "threads", "maxSequences", "chunkTokens"] as const satisfies ReadonlyArray<keyof ModelLoadOptions>;

const OPTION_LIMITS: Readonly<Record<keyof ModelLoadOptions, readonly [number, number]>> = {
  contextSize: [1, 1 << 24],
  threads: [1, 256],
  maxSequences: [1, 256],
  chunkTokens: [1, 65_536],
};

/**
 * Checks options from outside (an HTTP body, a gRPC request, flags): each set one a whole number in
 * its range, no other keys. Returns a frozen copy without the unset keys. For the edges; the
 * registry receives only what this returned.
 */
export function validateModelOptions(input: unknown, param = "options"): ModelLoadOptions {
  if (input === undefined || input === null) return Object.freeze({});
  if (typeof input !== "object" || Array.isArray(input)) {
    throw new KvbridgeError("INVALID_ARGUMENT", `${param} must be an object of ${MODEL_OPTION_KEYS.join(", ")}`, { details: { param } });
  }
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(input)) {
    if (!(MODEL_OPTION_KEYS as readonly string[]).includes(key)) {
      throw new KvbridgeError("INVALID_ARGUMENT", `unknown model option "${key}"; known: ${MODEL_OPTION_KEYS.join(", ")}`, { details: { param: `${param}.${key}` } });
    }
    if (value === undefined || value === null) continue;
    const [min, max] = OPTION_LIMITS[key as keyof ModelLoadOptions];
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      throw new KvbridgeError("INVALID_ARGUMENT", `model option ${key} must be an integer in ${min}..${max}, got ${JSON.stringify(value)}`, {
        details: { param: `${param}.${key}` },
      });
    }
    out[key] = value;
  }
  return Object.freeze(out);
}

/** The caller's options over the node's defaults (a caller's unset key takes the default). Frozen. */
export function withDefaults(options: ModelLoadOptions, defaults: ModelLoadOptions): ModelLoadOptions {
  const out: Record<string, number> = {};
  for (const key of MODEL_OPTION_KEYS) {
    const v = options[key] ?? defaults[key];
    if (v !== undefined) out[key] = v;
  }
  return Object.freeze(out);
}

/** Same options, key by key (both already combined with the defaults). */
export function sameModelOptions(a: ModelLoadOptions, b: ModelLoadOptions): boolean {
  return MODEL_OPTION_KEYS.every((key) => a[key] === b[key]);
}
