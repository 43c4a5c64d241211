// One measured number of a benchmark, next to the baseline it is judged against.

export interface BenchFigure {
  /** What was measured, e.g. "tcp.throughput.1MiB". */
  bench: string;
  value: number;
  unit: string;
  /** The same quantity for the reference (bare socket, iperf3...), measured in the same run; null when none. */
  baseline: number | null;
  baselineName?: string;
  /** value / baseline; null when there is no baseline. */
  ratio: number | null;
}
