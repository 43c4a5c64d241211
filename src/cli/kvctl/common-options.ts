// Options every kvctl command takes: where the nodes are, how long to wait for each, and whether to
// print JSON for scripts instead of tables for people.
import { Command, Option } from "commander";
import { intArg } from "../option-parsers.js";
import type { NodeClientOptions } from "./node-client.js";
import { NODES_ENV } from "./node-targets.js";

export interface CommonFlags {
  node?: string[];
  json: boolean;
  timeout: number;
}

export function addCommonOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("-n, --node <host:port>", `node address (repeatable); default: the ADDR arguments, else ${NODES_ENV}`).argParser((v: string, prev: string[] = []) => [...prev, v]))
    .option("--json", "print JSON (one object) instead of a table", false)
    .addOption(new Option("--timeout <ms>", "bound on each call to a node").argParser(intArg(1, 600_000)).default(5_000).env("KVCTL_TIMEOUT"));
}

export function clientOptions(flags: CommonFlags, extra: Partial<NodeClientOptions> = {}): NodeClientOptions {
  return { timeoutMs: flags.timeout, ...extra };
}
