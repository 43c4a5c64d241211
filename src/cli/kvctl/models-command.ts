// `kvctl models ADDR...`: the models each engine node (prefill or decode) can serve: state, options,
// requests in flight, last used, loads, and why the last load failed. Read through the node's Models
// service; -o json / yaml for scripts, like every kvctl listing.
import { Command } from "commander";
import { channelCredentialsFor } from "../../security/grpc-credentials.js";
import type { ModelInfo__Output } from "../../wire/generated/kvbridge/v1/ModelInfo.js";
import { ModelsClient } from "../../wire/models-client.js";
import { errorBody, runFormatted, warn, writeStructured, writeText, type PerNode } from "./command-runner.js";
import { addCommonOptions, clientOptions, type CommonFlags } from "./common-options.js";
import { EXIT, exitCodeFor } from "./exit-codes.js";
import { formatDuration } from "./human-units.js";
import { resolveNodes } from "./node-targets.js";
import { isStructured } from "./output-format.js";
import { renderTable, type Column } from "./table.js";
import { printable } from "./terminal-text.js";

export interface ModelRow {
  model: string;
  aliases: string[];
  default: boolean;
  state: string;
  /** Loaded (or loading, or last failed) with; null when unloaded. */
  options: { context_size: number | null; threads: number | null; max_sequences: number | null; chunk_tokens: number | null } | null;
  requests_in_flight: number;
  /** ms since the epoch; null when never used. */
  last_used_ms: number | null;
  loads: number;
  fingerprint: string;
  failure: { code: string; message: string } | null;
}

export function modelRow(m: ModelInfo__Output): ModelRow {
  const o = m.options;
  return {
    model: m.id,
    aliases: m.aliases,
    default: m.isDefault,
    state: m.state,
    options: o ? { context_size: o.contextSize || null, threads: o.threads || null, max_sequences: o.maxSequences || null, chunk_tokens: o.chunkTokens || null } : null,
    requests_in_flight: m.requestsInFlight,
    last_used_ms: m.lastUsedMs || null,
    loads: m.loads,
    fingerprint: m.fingerprint,
    failure: m.failure ? { code: m.failure.code, message: m.failure.message } : null,
  };
}

function optionsText(o: ModelRow["options"]): string {
  if (!o) return "-";
  const parts = [
    o.context_size !== null ? `ctx=${o.context_size}` : "",
    o.threads !== null ? `threads=${o.threads}` : "",
    o.max_sequences !== null ? `seqs=${o.max_sequences}` : "",
    o.chunk_tokens !== null ? `chunk=${o.chunk_tokens}` : "",
  ].filter((p) => p !== "");
  return parts.length > 0 ? parts.join(" ") : "defaults";
}

const now = (): number => Date.now();

export const MODEL_COLUMNS: ReadonlyArray<Column<ModelRow>> = [
  { header: "MODEL", value: (r) => printable(r.default ? `${r.model} (default)` : r.model) },
  { header: "STATE", value: (r) => r.state.toUpperCase() },
  { header: "OPTIONS", value: (r) => optionsText(r.options) },
  { header: "IN FLIGHT", value: (r) => String(r.requests_in_flight), align: "right" },
  { header: "LAST USED", value: (r) => (r.last_used_ms === null ? "never" : `${formatDuration(Math.max(0, now() - r.last_used_ms))} ago`), align: "right" },
  { header: "LOADS", value: (r) => String(r.loads), align: "right" },
  { header: "FAILURE", value: (r) => (r.failure ? printable(`${r.failure.code}: ${r.failure.message}`) : "-") },
];

/** -o wide: aliases and the loaded engine's fingerprint too. */
export const MODEL_COLUMNS_WIDE: ReadonlyArray<Column<ModelRow>> = [
  ...MODEL_COLUMNS,
  { header: "ALIASES", value: (r) => printable(r.aliases.join(",")) || "-" },
  { header: "FINGERPRINT", value: (r) => r.fingerprint.slice(0, 16) || "-" },
];

type NodeModels = { role: string; default_model: string; models_max: number; models: ModelRow[] };

export function modelsCommand(): Command {
  const cmd = new Command("models")
    .description("list each node's models: state, options, requests in flight, last used, loads, failure")
    .argument("[addr...]", "prefill or decode node gRPC addresses (host:port)");
  return addCommonOptions(cmd)
    .addHelpText(
      "after",
      `
States: unloaded, loading, loaded, draining (a reload or unload waits for requests in flight),
unloading, failed (the next request retries the load). OPTIONS are what the model is loaded with.

Examples:
  kvctl models 127.0.0.1:50051 127.0.0.1:50061
  kvctl models 127.0.0.1:50061 -o json | jq '.nodes[].models[] | select(.state == "failed")'`,
    )
    .action(async (addrs: string[], flags: CommonFlags) => {
      await runFormatted(flags, async (format) => {
        const nodes = resolveNodes(addrs, flags.node);
        const opts = clientOptions(flags);
        let exit: number = EXIT.OK;
        const results = await Promise.all(
          nodes.map(async (address): Promise<PerNode<NodeModels>> => {
            const c = new ModelsClient(address, opts.credentials ?? channelCredentialsFor(opts.tls));
            try {
              const r = await c.listModels({ timeoutMs: opts.timeoutMs, signal: opts.signal });
              return { address, ok: true as const, role: r.role, default_model: r.defaultModel, models_max: r.modelsMax, models: r.models.map(modelRow) };
            } catch (err) {
              const body = errorBody(err, address);
              if (exit === EXIT.OK) exit = exitCodeFor(body.code);
              warn(`${address}: ${body.message}`);
              return { address, ok: false as const, error: body };
            } finally {
              c.close();
            }
          }),
        );
        if (isStructured(format)) {
          writeStructured(format, { nodes: results });
          return exit;
        }
        const out: string[] = [];
        for (const r of results) {
          if (nodes.length > 1) out.push(`== ${printable(r.address)}${r.ok ? ` (${r.role}, models-max ${r.models_max})` : ""} ==\n`);
          if (!r.ok) out.push(`UNREACHABLE: ${printable(r.error.message)}\n`);
          else out.push(renderTable(format === "wide" ? MODEL_COLUMNS_WIDE : MODEL_COLUMNS, r.models));
        }
        writeText(out.join(nodes.length > 1 ? "\n" : ""));
        return exit;
      });
    });
}
