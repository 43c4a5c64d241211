// What a fuzz run saw: inputs per category and outcome, and findings (broken expectations) grouped by
// signature with the first example kept, so a run reports every distinct problem once with its input.

export interface Finding {
  signature: string;
  count: number;
  /** The first input that produced it, and what happened, for reproduction. */
  example: string;
}

export class FuzzTally {
  readonly seed: number;
  private readonly counts = new Map<string, Map<string, number>>();
  private readonly found = new Map<string, Finding>();
  inputs = 0;
  /** The slowest input (answer and checks), to spot a handler that blocks the node. */
  slowest: { ms: number; example: string } = { ms: 0, example: "" };

  constructor(seed: number) {
    this.seed = seed;
  }

  /** One input of `category` (an RPC, a frame kind) ended with `outcome` (OK, a status, ACK, NACK code...). */
  count(category: string, outcome: string, n = 1): void {
    let byOutcome = this.counts.get(category);
    if (!byOutcome) this.counts.set(category, (byOutcome = new Map()));
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + n);
  }

  latency(ms: number, example: () => string): void {
    if (ms > this.slowest.ms) this.slowest = { ms, example: example().slice(0, 300) };
  }

  /** Records a broken expectation. Numbers in the signature are masked so one bug is one finding. */
  finding(signature: string, example: string): void {
    const key = signature.replace(/\d+/g, "#").slice(0, 300);
    const f = this.found.get(key);
    if (f) f.count++;
    else this.found.set(key, { signature: key, count: 1, example: example.slice(0, 2_000) });
  }

  get findings(): Finding[] {
    return [...this.found.values()];
  }

  /** Outcomes per category, e.g. { Alloc: { OK: 12, INVALID_ARGUMENT: 40 } }. */
  outcomes(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [cat, m] of [...this.counts].sort(([a], [b]) => a.localeCompare(b))) out[cat] = Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)));
    return out;
  }

  /** Total of one outcome across categories (e.g. how many inputs were answered OK). */
  total(outcome?: string): number {
    let n = 0;
    for (const m of this.counts.values()) for (const [o, c] of m) if (outcome === undefined || o === outcome) n += c;
    return n;
  }

  /** A human-readable report: seed, inputs, outcomes per category, findings with their examples. */
  report(title: string): string {
    const lines = [`${title}: ${this.inputs} inputs, seed ${this.seed}, ${this.found.size} finding(s)`];
    if (this.slowest.ms > 0) lines.push(`  slowest input: ${Math.round(this.slowest.ms)} ms: ${this.slowest.example}`);
    for (const [cat, m] of Object.entries(this.outcomes())) {
      lines.push(`  ${cat}: ${Object.entries(m).map(([o, c]) => `${o}=${c}`).join(" ")}`);
    }
    for (const f of this.found.values()) lines.push(`  FINDING x${f.count}: ${f.signature}\n    example: ${f.example}`);
    return lines.join("\n");
  }
}

/** The seed of a fuzz run: KVBRIDGE_FUZZ_SEED when set (to replay a run), else a fresh one. */
export function fuzzSeed(): number {
  const env = process.env.KVBRIDGE_FUZZ_SEED;
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n)) throw new Error(`KVBRIDGE_FUZZ_SEED must be an integer, got ${env}`);
    return n;
  }
  return (Date.now() ^ (process.pid << 16)) | 0;
}

/** A short, printable rendering of an input for a finding's example (long strings are elided). */
export function describeInput(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === "string" && v.length > 80) return `${JSON.stringify(v.slice(0, 40)).slice(1, -1)}...(${v.length} chars)`;
    if (typeof v === "number" && !Number.isFinite(v)) return String(v);
    if (v instanceof Uint8Array || (typeof v === "object" && v !== null && (v as { type?: string }).type === "Buffer")) {
      const b = v instanceof Uint8Array ? Buffer.from(v) : Buffer.from((v as { data: number[] }).data);
      return b.length > 64 ? `hex:${b.subarray(0, 64).toString("hex")}...(${b.length} bytes)` : `hex:${b.toString("hex")}`;
    }
    if (Array.isArray(v) && v.length > 20) return [...v.slice(0, 20), `...(${v.length} items)`];
    return v;
  });
}
