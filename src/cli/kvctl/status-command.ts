// `kvctl status ADDR...`: per node its identity, health, pool by slot state (slots and bytes),
// active requests and leases close to expiry, dedup hit rate and the data-plane transfer rate.
import { Command } from "commander";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { KVCTL_NEAR_EXPIRY_MS, KVCTL_SAMPLE_MS } from "../../config/defaults.js";
import { intArg } from "../option-parsers.js";
import { runFormatted, warn, writeStructured, writeText } from "./command-runner.js";
import { addCommonOptions, clientOptions, type CommonFlags } from "./common-options.js";
import { EXIT } from "./exit-codes.js";
import { NodeClient } from "./node-client.js";
import { collectReports } from "./node-reports.js";
import { resolveNodes } from "./node-targets.js";
import { addRouterOptions, type RouterFlags } from "./nodes-command.js";
import { isStructured } from "./output-format.js";
import { routerNodes } from "./router-nodes.js";
import { renderStatus, renderStatusWide, type NodeReport } from "./status-report.js";

interface StatusFlags extends CommonFlags, RouterFlags {
  sampleMs: number;
  nearExpiryMs: number;
}

/** 0 when every node answered and serves; 3 when one is unreachable; 7 when one is not serving. */
export function statusExitCode(reports: readonly NodeReport[]): number {
  if (reports.some((r) => !r.ok)) return EXIT.UNREACHABLE;
  if (reports.some((r) => r.ok && r.health !== "SERVING")) return EXIT.NOT_SERVING;
  return EXIT.OK;
}

export function statusCommand(): Command {
  const cmd = new Command("status")
    .description("per node: role, versions, health, transports, pool by slot state, requests, leases near expiry, dedup, transfer rate")
    .argument("[addr...]", "node gRPC addresses (host:port)")
    .option("--sample-ms <ms>", "measure the transfer rate over this long (0: skip)", intArg(0, 60_000), KVCTL_SAMPLE_MS)
    .option("--near-expiry-ms <ms>", "count allocating requests whose lease ends within this", intArg(1, 3_600_000), KVCTL_NEAR_EXPIRY_MS);
  return addRouterOptions(addCommonOptions(cmd))
    .addHelpText(
      "after",
      `
Exit codes: 0 all nodes serving, 3 a node unreachable, 7 a node answered but is not serving
(loading, draining, or its pool is stuck).

Examples:
  kvctl status 127.0.0.1:50061
  KVBRIDGE_NODES=10.0.0.7:50061,10.0.0.8:50061 kvctl status
  kvctl status --router http://127.0.0.1:8080          # every node behind a router
  kvctl status 127.0.0.1:50061 -o wide                # also fingerprint, generation, bytes by state
  kvctl status 127.0.0.1:50061 -o json | jq '.nodes[0].pool.slots'`,
    )
    .action(async (addrs: string[], flags: StatusFlags) => {
      await runFormatted(flags, async (format) => {
        // --router: the nodes behind it, then any given by address.
        const behind = flags.router ? (await routerNodes(flags.router, { apiKey: flags.apiKey, timeoutMs: flags.timeout })).nodes.map((n) => n.address) : [];
        const given = addrs.length > 0 || flags.node?.length || !flags.router ? resolveNodes(addrs, flags.node) : [];
        if (flags.router && behind.length === 0 && given.length === 0) {
          throw new KvbridgeError("UNAVAILABLE", `router ${flags.router} lists no nodes`, { details: { param: "router" } });
        }
        const clients = [...new Set([...behind.length > 0 ? resolveNodes(behind, undefined) : [], ...given])].map((a) => new NodeClient(a, clientOptions(flags)));
        try {
          const reports = (await collectReports(clients, { nearExpiryMs: flags.nearExpiryMs, sampleMs: flags.sampleMs })).map((v) => v.report);
          if (isStructured(format)) writeStructured(format, { nodes: reports });
          else writeText(reports.map(format === "wide" ? renderStatusWide : renderStatus).join("\n"));
          for (const r of reports) if (!r.ok) warn(`${r.address}: ${r.error.message}`);
          return statusExitCode(reports);
        } finally {
          for (const c of clients) c.close();
        }
      });
    });
}
