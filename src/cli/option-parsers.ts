// Flag value parsers for commander: each turns a string into a well-formed value or throws
// commander's InvalidArgumentError with a message that says what to type instead.
import { InvalidArgumentError } from "commander";
import { parseHostPort, type HostPort } from "../roles/host-port.js";

export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer in ${min}..${max}, got "${v}"`);
    return n;
  };
}

export function fractionArg(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`expected a fraction in 0..1, got "${v}"`);
  return n;
}

const UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1e6, mib: 1024 ** 2, g: 1024 ** 3, gb: 1e9, gib: 1024 ** 3 };

/** "1048576", "256KiB", "1MiB", "4M" (binary for bare K/M/G). */
export function bytesArg(v: string): number {
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(v.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InvalidArgumentError(`expected a byte size like 1048576, 256KiB or 4MiB, got "${v}"`);
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`byte size "${v}" is out of range`);
  return n;
}

export function hostPortArg(v: string): HostPort {
  try {
    return parseHostPort(v, "address");
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function choiceArg<T extends string>(choices: readonly T[]): (v: string) => T {
  return (v) => {
    if (!(choices as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${choices.join(", ")}, got "${v}"`);
    return v as T;
  };
}

export function lockArg(v: string): boolean | "auto" {
  if (v === "auto") return "auto";
  if (v === "true") return true;
  if (v === "false") return false;
  throw new InvalidArgumentError(`expected auto, true or false, got "${v}"`);
}
