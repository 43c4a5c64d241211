// Options every kvctl command takes: where the nodes are, how long to wait for each, the output
// format (tables for people, -o json|yaml for scripts, -o wide), and the mutual-TLS certificate.
import { Command, Option } from "commander";
import { KVCTL_TIMEOUT_MS } from "../../config/defaults.js";
import { intArg } from "../option-parsers.js";
import { addTlsOptions, tlsFromFlags, type TlsFlags } from "../commands/tls-flags.js";
import type { NodeClientOptions } from "./node-client.js";
import { NODES_ENV } from "./node-targets.js";
import { addOutputOptions, type OutputFlags } from "./output-format.js";

export interface CommonFlags extends TlsFlags, OutputFlags {
  node?: string[];
  timeout: number;
}

export function addCommonOptions(cmd: Command): Command {
  addTlsOptions(cmd).addOption(
    new Option("-n, --node <host:port>", `node address (repeatable); default: the ADDR arguments, else ${NODES_ENV}`).argParser((v: string, prev: string[] = []) => [...prev, v]),
  );
  return addOutputOptions(cmd).addOption(new Option("--timeout <ms>", "bound on each call to a node").argParser(intArg(1, 600_000)).default(KVCTL_TIMEOUT_MS).env("KVCTL_TIMEOUT"));
}

/** Throws INVALID_ARGUMENT (exit 2) when the --tls-* files are incomplete or unusable. */
export function clientOptions(flags: CommonFlags, extra: Partial<NodeClientOptions> = {}): NodeClientOptions {
  return { timeoutMs: flags.timeout, tls: tlsFromFlags(flags), ...extra };
}
