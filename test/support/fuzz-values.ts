// Hostile field values for the fuzzers (fast-check arbitraries): strings around and beyond the
// protocol's limits, unicode that counts differently in UTF-16 units and UTF-8 bytes, lone
// surrogates, control bytes, and numbers that do not fit the wire type (negative, fractional, NaN,
// infinities, past 2^32 and 2^53).
import fc from "fast-check";

/** A weighted choice, the way fc.oneof takes it. */
export function weighted<T>(...choices: Array<[number, fc.Arbitrary<T>]>): fc.Arbitrary<T> {
  return fc.oneof(...choices.map(([weight, arbitrary]) => ({ weight, arbitrary })));
}

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));

/** Strings a careful edge must refuse or carry safely. `huge` allows strings up to 100k characters. */
export function hostileString(opts: { huge?: boolean } = {}): fc.Arbitrary<string> {
  const choices: Array<[number, fc.Arbitrary<string>]> = [
    [4, fc.string({ maxLength: 12 })],
    [2, fc.constant("")],
    [2, fc.string({ unit: "binary", maxLength: 24 })],
    [1, fc.string({ unit: "grapheme", maxLength: 24 })],
    [1, fc.string({ unit: loneSurrogate, minLength: 1, maxLength: 4 })],
    [1, fc.string({ unit: "binary-ascii", maxLength: 16 })],
    // Around the 256 limit, counted in UTF-16 units (store) and in UTF-8 bytes (TCP data plane).
    [2, fc.integer({ min: 250, max: 262 }).map((n) => "k".repeat(n))],
    [1, fc.integer({ min: 124, max: 132 }).map((n) => "é".repeat(n))],
    [1, fc.integer({ min: 60, max: 132 }).map((n) => "\u{1F600}".repeat(n))],
    [1, fc.constantFrom("\u0000", "a\u0000b", "\r\n", "%s%n%x", "../../../etc/passwd", "' OR 1=1 --", "\u202e", "\ufeff", "null", "-1", "NaN")],
  ];
  // Huge ASCII, and huge non-ASCII (9 bytes per character once percent-encoded in a status message).
  if (opts.huge) choices.push([1, fc.integer({ min: 1_000, max: 100_000 }).map((n) => "x".repeat(n))], [1, fc.integer({ min: 1_000, max: 40_000 }).map((n) => "\ufffd".repeat(n))]);
  return weighted(...choices);
}

/** Values for a uint32 wire field: mostly valid, often not. */
export function hostileUint32(valid: fc.Arbitrary<number> = fc.nat({ max: 16 })): fc.Arbitrary<number> {
  return weighted<number>(
    [6, valid],
    [3, fc.constantFrom(0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, -1, -(2 ** 31), 0.5, 1.5, NaN, Infinity, -Infinity)],
    [1, fc.integer()],
    [1, fc.double()],
  );
}

/** Values for a uint64 wire field (decoded as Number by the node). */
export function hostileUint64(valid: fc.Arbitrary<number> = fc.nat({ max: 1 << 20 })): fc.Arbitrary<number> {
  return weighted<number>(
    [6, valid],
    [3, fc.constantFrom(0, 1, -1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, 2 ** 64 - 1, 0.5, NaN, Infinity, -Infinity, Number.MAX_VALUE)],
    [1, fc.maxSafeInteger()],
    [1, fc.double()],
  );
}

/** Random bytes, sometimes large. */
export function hostileBytes(maxLength = 64): fc.Arbitrary<Uint8Array> {
  return weighted<Uint8Array>([8, fc.uint8Array({ maxLength })], [1, fc.integer({ min: 1024, max: 64 * 1024 }).map((n) => new Uint8Array(n).fill(0xff))]);
}
