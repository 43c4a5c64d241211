// `kvctl abort ADDR --request R`: gives up one unfinished request, releasing exactly what it holds
// (its WRITING slots go to quarantine first, its pins are dropped). Committed requests are refused:
// their KV may be in use by the decode engine.
import { Command } from "commander";
import { addAdminOptions, ADMIN_HELP, type AdminFlags } from "./admin-options.js";
import { runFormatted, writeStructured, writeText } from "./command-runner.js";
import { addCommonOptions, clientOptions, type CommonFlags } from "./common-options.js";
import { EXIT } from "./exit-codes.js";
import { NodeClient } from "./node-client.js";
import { resolveNodes, singleNode } from "./node-targets.js";
import { isStructured } from "./output-format.js";
import { printable } from "./terminal-text.js";

interface AbortFlags extends CommonFlags, AdminFlags {
  request: string;
  reason: string;
}

export function abortCommand(): Command {
  const cmd = new Command("abort")
    .description("abort one unfinished request on a node: release its WRITING slots (to quarantine) and its pins")
    .argument("[addr]", "node gRPC address (host:port)")
    .requiredOption("--request <id>", "the request to abort (see kvctl requests)")
    .option("--reason <text>", "why, recorded in the node's log", "operator");
  addAdminOptions(cmd);
  return addCommonOptions(cmd)
    .addHelpText(
      "after",
      `${ADMIN_HELP}
Requests that deduped this request's chunks see them FAILED and recompute (or fail, by policy).
A committed request is refused (exit 6); an unknown one exits 5.

Examples:
  kvctl abort 127.0.0.1:50061 --request req-42 --reason "sender hung"`,
    )
    .action(async (addr: string | undefined, flags: AbortFlags) => {
      await runFormatted(flags, async (format, ctx) => {
        const address = singleNode(resolveNodes(addr ? [addr] : [], flags.node), "abort");
        ctx.node = address;
        const c = new NodeClient(address, clientOptions(flags, { adminToken: flags.adminToken }));
        try {
          const res = await c.abortRequest(flags.request, flags.reason);
          if (isStructured(format)) writeStructured(format, { address, request_id: flags.request, slots_released: res.slotsReleased, pins_released: res.pinsReleased });
          else {
            writeText(
              `aborted request ${printable(flags.request)} on ${address}: ${res.slotsReleased} slot(s) released to quarantine, ${res.pinsReleased} pin(s) dropped\n`,
            );
          }
          return EXIT.OK;
        } finally {
          c.close();
        }
      });
    });
}
