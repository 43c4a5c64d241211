// Whether this process can use UCX at all, as a value: callers fall back to TCP with one log line.
import { loadUcx, type LoadUcxOptions } from "../../../native-bindings/ucx/ucx-library.js";

export type UcxAvailability = { available: true; version: string } | { available: false; reason: string };

/**
 * Loads libucp (once per path; $KVBRIDGE_LIBUCP or opts.libraryPath override the default soname)
 * and reports its version, or why it cannot be used. Never throws.
 */
export function ucxAvailability(opts: LoadUcxOptions = {}): UcxAvailability {
  const r = loadUcx(opts);
  return r.available ? { available: true, version: r.ucx.version.text } : { available: false, reason: r.reason };
}
