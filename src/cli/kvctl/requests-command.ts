// `kvctl requests ADDR...`: every request the node holds work for. KV a decode node holds (kind kv:
// phase, keys written / deduped / still pending on another writer, bytes landed, age, lease or hold
// left, the sender's address), a decode node's generations (kind generate: receiving, loading,
// decoding; tokens so far; model) and a prefill node's pushes (kind prefill: evaluating, pushing).
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
  /** "kv" (KV held by the receiver), "generate" (a decode node's Generate), "prefill" (a prefill node's Prefill). */
  kind: string;
  /**
   * kv: "allocating" (chunks being written, under a lease) or "committed" (complete, held for decode);
   * generate: "receiving" (waiting for its KV), "loading" (its KV into a sequence), "decoding";
   * prefill: "evaluating" (the prompt), "pushing" (its KV to the decode node).
   */
  phase: string;
  /** generate, prefill: the model ("" for kv). */
  model: string;
  /** generate, prefill: the prompt's tokens (0 until tokenized). */
  prompt_tokens: number;
  /** generate: tokens generated so far. */
  tokens_generated: number;
  /** prefill (pushing): KV chunks being pushed. */
  chunks: number;
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
    // A node before kinds were listed held KV requests only.
    kind: r.kind || "kv",
    phase: r.phase,
    model: r.model,
    prompt_tokens: r.promptTokens,
    tokens_generated: r.tokensGenerated,
    chunks: r.chunks,
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

const isKv = (r: RequestRow): boolean => r.kind === "kv";
/** A KV column's cell: "-" on a generation's or a push's row, which holds no pool keys. */
const kv = (f: (r: RequestRow) => string) => (r: RequestRow): string => (isKv(r) ? f(r) : "-");

const [REQUEST, PHASE, ...KV_COLUMNS]: ReadonlyArray<Column<RequestRow>> = [
  { header: "REQUEST", value: (r) => r.request_id },
  { header: "PHASE", value: (r) => r.phase.toUpperCase() },
  { header: "WRITTEN", value: kv((r) => String(r.keys_written)), align: "right" },
  { header: "DEDUPED", value: kv((r) => String(r.keys_deduped)), align: "right" },
  { header: "PENDING", value: kv((r) => String(r.keys_pending)), align: "right" },
  { header: "BYTES", value: kv((r) => formatBytes(r.bytes)), align: "right" },
  { header: "AGE", value: (r) => formatDuration(r.age_ms), align: "right" },
  { header: "LEASE LEFT", value: kv((r) => (r.phase === "committed" ? `hold ${formatDuration(r.lease_left_ms)}` : formatDuration(r.lease_left_ms))), align: "right" },
  { header: "PEER", value: (r) => r.peer || "-" },
];

/** Shown when a generation or a push is listed: what kind of work, on which model, how many tokens. */
const WORK_COLUMNS: ReadonlyArray<Column<RequestRow>> = [
  { header: "KIND", value: (r) => r.kind },
  { header: "MODEL", value: (r) => r.model || "-" },
  { header: "TOKENS", value: (r) => (r.kind === "generate" ? String(r.tokens_generated) : "-"), align: "right" },
];

/** The table's columns (the KV columns alone while only KV requests are listed). */
export const REQUEST_COLUMNS: ReadonlyArray<Column<RequestRow>> = [REQUEST!, PHASE!, ...KV_COLUMNS];

/** -o wide: the exact byte count, age and lease in milliseconds (for comparing with logs). */
export const REQUEST_COLUMNS_WIDE: ReadonlyArray<Column<RequestRow>> = [
  ...REQUEST_COLUMNS,
  { header: "BYTES (EXACT)", value: kv((r) => String(r.bytes)), align: "right" },
  { header: "AGE MS", value: (r) => String(r.age_ms), align: "right" },
  { header: "LEASE MS", value: kv((r) => String(r.lease_left_ms)), align: "right" },
];

const WORK_COLUMNS_WIDE: ReadonlyArray<Column<RequestRow>> = [
  { header: "PROMPT TOKENS", value: (r) => (isKv(r) ? "-" : String(r.prompt_tokens)), align: "right" },
  { header: "CHUNKS", value: (r) => (r.kind === "prefill" ? String(r.chunks) : "-"), align: "right" },
];

/** The columns for these rows: KIND, MODEL and TOKENS join once a generation or a push is listed. */
export function requestColumns(rows: readonly RequestRow[], wide: boolean): ReadonlyArray<Column<RequestRow>> {
  const base = wide ? REQUEST_COLUMNS_WIDE : REQUEST_COLUMNS;
  if (rows.every(isKv)) return base;
  const [req, phase, ...rest] = base;
  return [req!, ...WORK_COLUMNS.slice(0, 1), phase!, ...WORK_COLUMNS.slice(1), ...rest, ...(wide ? WORK_COLUMNS_WIDE : [])];
}

export function requestsCommand(): Command {
  const cmd = new Command("requests")
    .description("list in-flight requests: KV held (phase, keys written/deduped/pending, bytes, lease left, peer), generations (receiving, loading, decoding; tokens so far) and prefill pushes (evaluating, pushing)")
    .argument("[addr...]", "node gRPC addresses (host:port)");
  return addCommonOptions(cmd)
    .addHelpText(
      "after",
      `
A decode node lists the KV it holds per request (kind kv: ALLOCATING, COMMITTED) and its generations
(kind generate: RECEIVING its KV, LOADING it, DECODING, with TOKENS so far); a prefill node its pushes
(kind prefill: EVALUATING the prompt, PUSHING its KV; PEER is the decode node). A request being
decoded may appear twice on a decode node: its KV (until loaded) and its generation.
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
          else out.push(r.requests.length > 0 ? renderTable(requestColumns(r.requests, format === "wide"), r.requests) : "no requests in flight\n");
        }
        writeText(out.join(nodes.length > 1 ? "\n" : ""));
        return exit;
      });
    });
}
