// Numbers as an operator reads them at a glance: sizes in binary units, durations in the largest
// unit that keeps them short, rates per second. Used by kvctl's human tables (never in --json).

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** 0 -> "0 B", 1536 -> "1.5 KiB", 268435456 -> "256 MiB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "-";
  let v = n;
  let u = 0;
  while (v >= 1024 && u < BYTE_UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${v} B`;
  const digits = v >= 100 || Number.isInteger(v) ? 0 : 1;
  return `${v.toFixed(digits)} ${BYTE_UNITS[u]}`;
}

/** 950 -> "950ms", 12_300 -> "12.3s", 125_000 -> "2m05s", 7_500_000 -> "2h05m"; negative -> "expired". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  if (ms < 0) return "expired";
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  const s = Math.floor(ms / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  const m = Math.floor(s / 60);
  if (m < 1_440) return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(m / 1_440)}d${String(Math.floor((m % 1_440) / 60)).padStart(2, "0")}h`;
}

/** Bytes per second: "0 B/s", "312 MiB/s"; null (not measured) -> "-". */
export function formatRate(bytesPerSecond: number | null): string {
  if (bytesPerSecond === null) return "-";
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** A ratio in 0..1 as a percentage; null (nothing to divide) -> "-". */
export function formatPercent(ratio: number | null): string {
  if (ratio === null || !Number.isFinite(ratio)) return "-";
  return `${(ratio * 100).toFixed(1)}%`;
}
