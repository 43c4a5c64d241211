// `kvctl requests ADDR...`: every request the node holds work for: phase, keys written / deduped /
// still pending on another writer, bytes landed, age, lease (or hold) left, and the sender's address.
import { Command } from "commander";
import type { RequestInfo__Output } from "../../wire/generated/kvbridge/v1/RequestInfo.js";
import { queryEachNode, runFormatted, writeStructured, writeText } from "./command-runner.js";
import { addCommonOptions, clientOptions, type CommonFlags } from "./common-options.js";
import { formatBytes, formatDuration } from "./human-units.js";
import { NodeClient } from "./node-client.js";
import { resolveNodes } from "./node-targets.js";
import { isStructured } from "./output-format.js";
import { renderTable, type Column } from "./table.js";
import { printable } from "./terminal-text.js";

export interface RequestRow {
  request_id: string;
  /** "allocating" (chunks being written, under a lease) or "committed" (complete, held for decode). */
  phase: string;
  keys_written: number;
  keys_deduped: number;
  /** Deduped keys whose writer (another request) has not committed yet, plus its own unwritten ones. */
  keys_pending: number;
  bytes: number;
  age_ms: number;
  /** Allocating: lease left; committed: hold left before its pins are dropped. */
  lease_left_ms: number;
  peer: string;
}

export function requestRow(r: RequestInfo__Output): RequestRow {
  return {
    request_id: r.requestId,
    phase: r.phase,
    keys_written: r.keysWritten,
    keys_deduped: r.keysDeduped,
    keys_pending: r.keysPending,
    bytes: r.bytes,
    age_ms: r.ageMs,
    lease_left_ms: r.leaseLeftMs,
    peer: r.peer,
  };
}

/** Oldest first: a stuck request is the one that has been there longest. */
export function sortRequests(rows: RequestRow[]): RequestRow[] {
  return rows.sort((a, b) => b.age_ms - a.age_ms || a.request_id.localeCompare(b.request_id));
}

export const REQUEST_COLUMNS: ReadonlyArray<Column<RequestRow>> = [
  { header: "REQUEST", value: (r) => r.request_id },
  { header: "PHASE", value: (r) => r.phase.toUpperCase() },
  { header: "WRITTEN", value: (r) => String(r.keys_written), align: "right" },
  { header: "DEDUPED", value: (r) => String(r.keys_deduped), align: "right" },
  { header: "PENDING", value: (r) => String(r.keys_pending), align: "right" },
  { header: "BYTES", value: (r) => formatBytes(r.bytes), align: "right" },
  { header: "AGE", value: (r) => formatDuration(r.age_ms), align: "right" },
  { header: "LEASE LEFT", value: (r) => (r.phase === "committed" ? `hold ${formatDuration(r.lease_left_ms)}` : formatDuration(r.lease_left_ms)), align: "right" },
  { header: "PEER", value: (r) => r.peer || "-" },
];

/** -o wide: the exact byte count, age and lease in milliseconds (for comparing with logs). */
export const REQUEST_COLUMNS_WIDE: ReadonlyArray<Column<RequestRow>> = [
  ...REQUEST_COLUMNS,
  { header: "BYTES (EXACT)", value: (r) => String(r.bytes), align: "right" },
  { header: "AGE MS", value: (r) => String(r.age_ms), align: "right" },
  { header: "LEASE MS", value: (r) => String(r.lease_left_ms), align: "right" },
];

export function requestsCommand(): Command {
  const cmd = new Command("requests")
    .description("list in-flight requests: phase, keys written/deduped/pending, bytes, age, lease left, peer")
    .argument("[addr...]", "node gRPC addresses (host:port)");
  return addCommonOptions(cmd)
    .addHelpText(
      "after",
      `
PENDING counts keys not READY yet: this request's own unwritten chunks, or deduped chunks whose
writer (another request) has not committed. LEASE LEFT of a COMMITTED request is its hold: the time
left before its pins are dropped if the decode side never consumes it.

Examples:
  kvctl requests 127.0.0.1:50061
  kvctl requests 127.0.0.1:50061 -o wide
  kvctl requests 127.0.0.1:50061 -o json | jq '.nodes[0].requests[] | select(.lease_left_ms < 1000)'`,
    )
    .action(async (addrs: string[], flags: CommonFlags) => {
      await runFormatted(flags, async (format) => {
        const nodes = resolveNodes(addrs, flags.node);
        const { results, exit } = await queryEachNode(
          nodes,
          (address) => new NodeClient(address, clientOptions(flags)),
          async (c) => ({ requests: sortRequests((await c.requests()).map(requestRow)) }),
        );
        if (isStructured(format)) {
          writeStructured(format, { nodes: results });
          return exit;
        }
        const out: string[] = [];
        for (const r of results) {
          if (nodes.length > 1) out.push(`== ${printable(r.address)} ==\n`);
          if (!r.ok) out.push(`UNREACHABLE: ${printable(r.error.message)}\n`);
          else out.push(r.requests.length > 0 ? renderTable(format === "wide" ? REQUEST_COLUMNS_WIDE : REQUEST_COLUMNS, r.requests) : "no requests in flight\n");
        }
        writeText(out.join(nodes.length > 1 ? "\n" : ""));
        return exit;
      });
    });
}
