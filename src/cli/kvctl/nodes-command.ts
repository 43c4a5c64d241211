// `kvctl nodes --router URL`: the prefill and decode nodes behind a router (from its GET /health):
// role, address, in rotation or not, the router's last health answer. -o wide also asks each node
// (Inspect GetStats) for its id, version and models; -o json|yaml for scripts.
import { Command, Option } from "commander";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { runFormatted, writeStructured, writeText } from "./command-runner.js";
import { addCommonOptions, clientOptions, type CommonFlags } from "./common-options.js";
import { NodeClient } from "./node-client.js";
import { isStructured } from "./output-format.js";
import { routerNodes, type RouterNode } from "./router-nodes.js";
import { renderTable, type Column } from "./table.js";
import { printable } from "./terminal-text.js";

export const ROUTER_ENV = "KVBRIDGE_ROUTER";
export const API_KEY_ENV = "KVBRIDGE_API_KEY";

export interface RouterFlags {
  router?: string;
  apiKey?: string;
}

/** --router URL and --api-key KEY, for the commands that can find their nodes through a router. */
export function addRouterOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--router <url>", "a kvbridge router (http://host:port): its nodes, from GET /health").env(ROUTER_ENV))
    .addOption(new Option("--api-key <key>", "the router's API key (sent as Authorization: Bearer), for a router that protects /health").env(API_KEY_ENV));
}

interface WideNode extends RouterNode {
  node_id: string;
  version: string;
  models: string[];
}

const COLUMNS: ReadonlyArray<Column<RouterNode>> = [
  { header: "ROLE", value: (n) => n.role },
  { header: "ADDRESS", value: (n) => n.address },
  { header: "IN ROTATION", value: (n) => (n.in_rotation ? "yes" : "no") },
  { header: "HEALTH", value: (n) => n.health },
];

const WIDE_COLUMNS: ReadonlyArray<Column<WideNode>> = [
  ...COLUMNS,
  { header: "NODE ID", value: (n) => n.node_id || "-" },
  { header: "VERSION", value: (n) => n.version || "-" },
  { header: "MODELS", value: (n) => n.models.join(",") || "-" },
];

export function nodesCommand(): Command {
  const cmd = new Command("nodes").description("list the nodes behind a router (--router URL): role, address, in rotation, health");
  return addRouterOptions(addCommonOptions(cmd))
    .addHelpText(
      "after",
      `
The router's GET /health lists every node it follows, in rotation or not, with its last health
answer (SERVING, NOT_SERVING, unreachable, timeout). -o wide also asks each node for its id, version
and models (a node that does not answer shows "-"). A router started with --api-key-protect-all
needs --api-key (or ${API_KEY_ENV}).

Examples:
  kvctl nodes --router http://127.0.0.1:8080
  kvctl nodes --router http://router:8080 -o wide
  kvctl status --router http://127.0.0.1:8080            # every node behind it
  kvctl nodes --router http://127.0.0.1:8080 -o json | jq -r '.nodes[] | select(.role=="decode") | .address'`,
    )
    .action(async (flags: CommonFlags & RouterFlags) => {
      await runFormatted(flags, async (format) => {
        if (!flags.router) {
          throw new KvbridgeError("INVALID_ARGUMENT", `kvctl nodes needs --router http://host:port (or ${ROUTER_ENV})`, { details: { param: "router" } });
        }
        const view = await routerNodes(flags.router, { apiKey: flags.apiKey, timeoutMs: flags.timeout });
        if (isStructured(format)) {
          writeStructured(format, view);
          return 0;
        }
        const head = `router ${printable(view.router)}: ${view.status}${view.draining ? ", draining" : ""}\n`;
        if (view.nodes.length === 0) {
          writeText(head + "no nodes\n");
          return 0;
        }
        if (format !== "wide") {
          writeText(head + renderTable(COLUMNS, view.nodes));
          return 0;
        }
        const wide = await Promise.all(
          view.nodes.map(async (n): Promise<WideNode> => {
            const c = new NodeClient(n.address, clientOptions(flags));
            try {
              const s = await c.stats();
              return { ...n, node_id: s.nodeId, version: s.version, models: s.models.filter((m) => m.state === "loaded").map((m) => m.id) };
            } catch {
              return { ...n, node_id: "", version: "", models: [] };
            } finally {
              c.close();
            }
          }),
        );
        writeText(head + renderTable(WIDE_COLUMNS, wide));
        return 0;
      });
    });
}
