// Plain-text tables for kvctl: a header row and aligned columns separated by two spaces, like
// kubectl's. Numbers align right; nothing is truncated (keys are copied from here into commands),
// and every cell is made printable first, so a value cannot break its row or align on escapes.
import { printable } from "./terminal-text.js";

export interface Column<Row> {
  header: string;
  value: (row: Row) => string;
  align?: "left" | "right";
}

export function renderTable<Row>(columns: ReadonlyArray<Column<Row>>, rows: readonly Row[]): string {
  const cells = rows.map((r) => columns.map((c) => printable(c.value(r))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: readonly string[]): string =>
    values
      .map((v, i) => (columns[i]!.align === "right" ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join("\n") + "\n";
}

/** "KEY: value" lines with the keys padded to one width. */
export function renderPairs(pairs: ReadonlyArray<readonly [string, string]>): string {
  const safe = pairs.map(([k, v]) => [printable(k), printable(v)] as const);
  const w = Math.max(0, ...safe.map(([k]) => k.length));
  return safe.map(([k, v]) => `${(k + ":").padEnd(w + 1)} ${v}`).join("\n") + "\n";
}
