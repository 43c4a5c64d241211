// Which bytes of one WRITING entry its owner's admitted writes have covered, as disjoint ranges: a
// Commit trusts coverage, not a sum of lengths, so frames rewriting the same range cannot fake a
// complete chunk.

/** Most disjoint ranges one entry may be written in: a hostile sender cannot grow one without bound. */
export const MAX_WRITE_PIECES = 1024;

export class WriteCoverage {
  /** Sorted, disjoint, non-adjacent half-open ranges, flattened: [start0, end0, start1, end1, ...]. */
  private readonly ranges: number[] = [];
  private coveredBytes = 0;

  get covered(): number {
    return this.coveredBytes;
  }

  get pieces(): number {
    return this.ranges.length / 2;
  }

  /** How many ranges there would be after adding [offset, offset + length). */
  piecesAfter(offset: number, length: number): number {
    if (length <= 0) return this.pieces;
    const { first, last } = this.touching(offset, offset + length);
    return this.pieces - (last - first) + 1;
  }

  add(offset: number, length: number): void {
    if (length <= 0) return;
    let start = offset;
    let end = offset + length;
    const { first, last } = this.touching(start, end);
    let removed = 0;
    for (let i = first; i < last; i++) {
      const s = this.ranges[2 * i]!;
      const e = this.ranges[2 * i + 1]!;
      removed += e - s;
      if (s < start) start = s;
      if (e > end) end = e;
    }
    this.ranges.splice(2 * first, 2 * (last - first), start, end);
    this.coveredBytes += end - start - removed;
  }

  /** Ranges [first, last) that overlap or touch [start, end): they merge with it. */
  private touching(start: number, end: number): { first: number; last: number } {
    const n = this.pieces;
    // first: the first range whose end >= start.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ranges[2 * mid + 1]! < start) lo = mid + 1;
      else hi = mid;
    }
    const first = lo;
    // last: the first range whose start > end.
    hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ranges[2 * mid]! <= end) lo = mid + 1;
      else hi = mid;
    }
    return { first, last: lo };
  }
}
