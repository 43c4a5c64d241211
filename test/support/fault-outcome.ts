// How a promise settled and how long it took: fault tests assert both the error code and the bound.
import { toKvbridgeError } from "../../src/errors/kvbridge-error.js";

export type Outcome<T> = { ok: true; value: T; ms: number } | { ok: false; code: string; message: string; ms: number };

/** Never rejects; `ms` counts from the call (or from `since`, a performance.now() value). */
export async function settle<T>(p: Promise<T>, since = performance.now()): Promise<Outcome<T>> {
  try {
    const value = await p;
    return { ok: true, value, ms: performance.now() - since };
  } catch (err) {
    const e = toKvbridgeError(err);
    return { ok: false, code: e.code, message: e.message, ms: performance.now() - since };
  }
}

/** The error code of an outcome, or "OK". */
export function codeOf(o: Outcome<unknown>): string {
  return o.ok ? "OK" : o.code;
}
