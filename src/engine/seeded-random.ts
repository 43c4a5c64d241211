// A small seeded PRNG (xoshiro128**) for the model writer: the same seed must give the same weights
// on every machine and Node version, which Math.random cannot promise. The fill methods run the
// generator over a typed array with the state in locals (hundreds of millions of values for the
// medium model); they give exactly the values nextUint32 would, in the same order.

export class SeededRandom {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    // splitmix32 spreads a small integer seed over the 128-bit state; an all-zero state would
    // make xoshiro emit zeros forever.
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Fills `out` with the next out.length values of nextUint32. */
  fillUint32(out: Uint32Array): void {
    let s0 = this.s0 | 0;
    let s1 = this.s1 | 0;
    let s2 = this.s2 | 0;
    let s3 = this.s3 | 0;
    for (let i = 0; i < out.length; i++) {
      const m = Math.imul(s1, 5);
      out[i] = Math.imul((m << 7) | (m >>> 25), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
    }
    this.s0 = s0 >>> 0;
    this.s1 = s1 >>> 0;
    this.s2 = s2 >>> 0;
    this.s3 = s3 >>> 0;
  }

  /** Fills `out` with values uniform in [-scale, scale) (one nextUint32 per value, in order). */
  fillUniform(out: Float32Array, scale: number): void {
    // (u / 2^32) * 2scale == u * (2scale / 2^32): scaling by a power of two is exact.
    const step = (2 * scale) / 4294967296;
    const bits = new Uint32Array(Math.min(out.length, FILL_BLOCK));
    for (let start = 0; start < out.length; start += bits.length) {
      const n = Math.min(bits.length, out.length - start);
      const view = n === bits.length ? bits : bits.subarray(0, n);
      this.fillUint32(view);
      toUniform(out, start, view, step, scale);
    }
  }
}

const FILL_BLOCK = 1 << 16;

function toUniform(out: Float32Array, start: number, bits: Uint32Array, step: number, scale: number): void {
  for (let i = 0; i < bits.length; i++) out[start + i] = bits[i]! * step - scale;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
