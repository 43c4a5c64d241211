#!/usr/bin/env node
// kvctl: the operator's view into a kvbridge fleet (nodes, pool, keys, requests, live watch) and its
// guarded admin actions (evict, abort). Talks to nodes over their Inspect, health and Admin services.
import { Command, CommanderError } from "commander";
import { toKvbridgeError } from "../errors/kvbridge-error.js";
import { VERSION } from "../roles/version.js";
import { abortCommand } from "./kvctl/abort-command.js";
import { warn } from "./kvctl/command-runner.js";
import { evictCommand } from "./kvctl/evict-command.js";
import { EXIT } from "./kvctl/exit-codes.js";
import { keysCommand } from "./kvctl/keys-command.js";
import { modelsCommand } from "./kvctl/models-command.js";
import { NODES_ENV } from "./kvctl/node-targets.js";
import { nodesCommand } from "./kvctl/nodes-command.js";
import { requestsCommand } from "./kvctl/requests-command.js";
import { statusCommand } from "./kvctl/status-command.js";
import { watchCommand } from "./kvctl/watch-command.js";

const program = new Command("kvctl")
  .description("inspect and operate kvbridge nodes: status, nodes, keys, requests, watch; guarded evict and abort")
  .version(VERSION)
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride()
  .addHelpText(
    "after",
    `
Nodes are gRPC addresses (host:port): ADDR arguments, --node flags, or ${NODES_ENV}
(comma-separated), or --router URL (status, nodes: the nodes behind a kvbridge router). Tables for people by default; -o wide for more columns, -o json or -o yaml for
scripts (--json is -o json). Errors have one shape: {"error": {"code", "message", "node"}}, and in
listings each node is {"address", "ok": false, "error": {...}}. Nodes with mutual TLS need
--tls-cert, --tls-key and --tls-ca (KVBRIDGE_TLS_CERT/KEY/CA) on every command.

Exit codes:
  0  ok                            4  refused: admin credentials, or the node's mTLS
  1  unexpected error              5  key or request not found
  2  usage error                   6  refused by state (pinned key, committed request)
  3  node unreachable or timed out 7  status: a node answered but is not serving

Examples:
  kvctl status 127.0.0.1:50061
  kvctl nodes --router http://127.0.0.1:8080
  kvctl keys 127.0.0.1:50061 --state writing
  kvctl requests 127.0.0.1:50061 -o json
  kvctl models 127.0.0.1:50051 127.0.0.1:50061
  kvctl watch 127.0.0.1:50061
  kvctl evict 127.0.0.1:50061 --unpinned
  kvctl abort 127.0.0.1:50061 --request req-42`,
  );

for (const cmd of [statusCommand(), nodesCommand(), keysCommand(), requestsCommand(), modelsCommand(), watchCommand(), evictCommand(), abortCommand()]) {
  program.addCommand(cmd.exitOverride().showHelpAfterError("(run with --help for usage)"));
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Usage errors were already printed by commander; --help and --version exit 0.
    process.exit(err.exitCode === 0 ? EXIT.OK : EXIT.USAGE);
  }
  warn(toKvbridgeError(err).message);
  process.exit(EXIT.ERROR);
});
