// `kvctl keys ADDR...`: the node's KV entries with state, refcount, the requests pinning them, slot,
// size, age and the lease left on WRITING ones; filters by state, pinned, key prefix.
import { Command, Option } from "commander";
import type { EntryInfo__Output } from "../../wire/generated/kvbridge/v1/EntryInfo.js";
import { intArg } from "../option-parsers.js";
import { queryEachNode, runFormatted, writeStructured, writeText } from "./command-runner.js";
import { addCommonOptions, clientOptions, type CommonFlags } from "./common-options.js";
import { formatBytes, formatDuration } from "./human-units.js";
import { NodeClient, type EntryFilter } from "./node-client.js";
import { resolveNodes } from "./node-targets.js";
import { isStructured } from "./output-format.js";
import { renderTable, type Column } from "./table.js";
import { printable } from "./terminal-text.js";

interface KeysFlags extends CommonFlags {
  state?: "writing" | "ready" | "failed";
  pinned: boolean;
  prefix?: string;
  limit: number;
}

export interface KeyRow {
  key: string;
  state: string;
  refcount: number;
  pinned_by: string[];
  /** null when the entry holds no slot (FAILED). */
  slot: number | null;
  size: number;
  age_ms: number;
  /** null unless WRITING. */
  lease_left_ms: number | null;
  /** The writing request, when WRITING. */
  owner: string | null;
}

export function keyRow(e: EntryInfo__Output): KeyRow {
  return {
    key: e.key,
    state: e.state,
    refcount: e.refcount,
    pinned_by: e.pinnedBy,
    slot: e.slot < 0 ? null : e.slot,
    size: e.size,
    age_ms: e.ageMs,
    lease_left_ms: e.leaseLeftMs < 0 ? null : e.leaseLeftMs,
    owner: e.owner || null,
  };
}

/** Up to three pinning requests, then a count: a hot prefix can be pinned by hundreds. */
function pinners(ids: readonly string[]): string {
  if (ids.length === 0) return "-";
  return ids.length <= 3 ? ids.join(",") : `${ids.slice(0, 3).join(",")} +${ids.length - 3}`;
}

export const KEY_COLUMNS: ReadonlyArray<Column<KeyRow>> = [
  { header: "KEY", value: (r) => r.key },
  { header: "STATE", value: (r) => r.state.toUpperCase() },
  { header: "REFS", value: (r) => String(r.refcount), align: "right" },
  { header: "PINNED BY", value: (r) => pinners(r.pinned_by) },
  { header: "SLOT", value: (r) => (r.slot === null ? "-" : String(r.slot)), align: "right" },
  { header: "SIZE", value: (r) => formatBytes(r.size), align: "right" },
  { header: "AGE", value: (r) => formatDuration(r.age_ms), align: "right" },
  { header: "LEASE LEFT", value: (r) => (r.lease_left_ms === null ? "-" : formatDuration(r.lease_left_ms)), align: "right" },
];

/** -o wide: every pinning request, the exact size in bytes, and the writing request. */
export const KEY_COLUMNS_WIDE: ReadonlyArray<Column<KeyRow>> = [
  ...KEY_COLUMNS.map((c) => (c.header === "PINNED BY" ? { ...c, value: (r: KeyRow) => (r.pinned_by.length > 0 ? r.pinned_by.join(",") : "-") } : c)),
  { header: "BYTES", value: (r) => String(r.size), align: "right" },
  { header: "OWNER", value: (r) => r.owner ?? "-" },
];

export function keysCommand(): Command {
  const cmd = new Command("keys")
    .description("list a node's KV entries: key, state, refcount, pinning requests, slot, size, age, lease left")
    .argument("[addr...]", "node gRPC addresses (host:port)")
    .addOption(new Option("--state <state>", "only entries in this state").choices(["writing", "ready", "failed"]))
    .option("--pinned", "only entries some request pins (refcount > 0)", false)
    .option("--prefix <p>", "only keys starting with this")
    .option("--limit <n>", "at most this many entries per node", intArg(1, 1_000_000), 1_000);
  return addCommonOptions(cmd)
    .addHelpText(
      "after",
      `
Examples:
  kvctl keys 127.0.0.1:50061
  kvctl keys 127.0.0.1:50061 --state writing          # transfers in progress, with their lease left
  kvctl keys 127.0.0.1:50061 --pinned --prefix 3fa2   # who holds this prefix
  kvctl keys 127.0.0.1:50061 -o wide                  # every pinning request, exact bytes, writer
  kvctl keys 127.0.0.1:50061 -o json | jq -r '.nodes[0].entries[] | select(.refcount == 0) | .key'`,
    )
    .action(async (addrs: string[], flags: KeysFlags) => {
      await runFormatted(flags, async (format) => {
        const filter: EntryFilter = { state: flags.state, pinnedOnly: flags.pinned, prefix: flags.prefix, limit: flags.limit };
        const nodes = resolveNodes(addrs, flags.node);
        const { results, exit } = await queryEachNode(
          nodes,
          (address) => new NodeClient(address, clientOptions(flags)),
          async (c) => {
            const res = await c.entries(filter);
            return { total: res.total, entries: res.entries.map(keyRow) };
          },
        );
        if (isStructured(format)) {
          writeStructured(format, { nodes: results });
          return exit;
        }
        const out: string[] = [];
        for (const r of results) {
          if (nodes.length > 1) out.push(`== ${printable(r.address)} ==\n`);
          if (!r.ok) {
            out.push(`UNREACHABLE: ${printable(r.error.message)}\n`);
            continue;
          }
          out.push(r.entries.length > 0 ? renderTable(format === "wide" ? KEY_COLUMNS_WIDE : KEY_COLUMNS, r.entries) : "no entries match\n");
          if (r.total > r.entries.length) out.push(`(${r.entries.length} of ${r.total} shown; raise --limit or narrow with --state/--prefix)\n`);
        }
        writeText(out.join(nodes.length > 1 ? "\n" : ""));
        return exit;
      });
    });
}
