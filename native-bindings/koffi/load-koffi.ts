// Loads koffi lazily so that a missing or broken native FFI module is a value callers can test
// (and fall back on), never an exception at import time.
import { createRequire } from "node:module";

export type Koffi = typeof import("koffi");

export type KoffiLoadResult = { ok: true; koffi: Koffi } | { ok: false; reason: string };

let cached: KoffiLoadResult | null = null;

/** Loads koffi once per process; later calls return the same result. */
export function loadKoffi(): KoffiLoadResult {
  if (cached) return cached;
  try {
    const require = createRequire(import.meta.url);
    const mod = require("koffi") as Koffi & { default?: Koffi };
    cached = { ok: true, koffi: mod.default ?? mod };
  } catch (err) {
    cached = { ok: false, reason: `koffi could not be loaded: ${err instanceof Error ? err.message : String(err)}` };
  }
  return cached;
}
