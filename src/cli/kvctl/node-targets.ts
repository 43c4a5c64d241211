// Which nodes a kvctl command talks to: the ADDR arguments, then --node flags, else KVBRIDGE_NODES
// (comma- or space-separated host:port list, e.g. exported once per shell or set in a debug pod).
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { formatHostPort, parseHostPort } from "../../roles/host-port.js";

export const NODES_ENV = "KVBRIDGE_NODES";

/** Validated, de-duplicated host:port strings, in the order given. */
export function resolveNodes(args: readonly string[], flags: readonly string[] | undefined, env: string | undefined = process.env[NODES_ENV]): string[] {
  let raw = [...args, ...(flags ?? [])];
  if (raw.length === 0 && env) raw = env.split(/[\s,]+/);
  const out: string[] = [];
  for (const r of raw.map((s) => s.trim()).filter((s) => s.length > 0)) {
    const hp = parseHostPort(r, "node address");
    // ":50061" means all interfaces for a listener; for a client it can only mean this host.
    const addr = formatHostPort(hp.host === "0.0.0.0" ? { host: "127.0.0.1", port: hp.port } : hp);
    if (!out.includes(addr)) out.push(addr);
  }
  if (out.length === 0) {
    throw new KvbridgeError("INVALID_ARGUMENT", `no node given: pass ADDR (host:port), --node host:port, or set ${NODES_ENV}=host:port[,host:port...]`);
  }
  return out;
}

/** Admin actions name exactly one node: a fleet-wide evict or abort must be a deliberate loop. */
export function singleNode(nodes: readonly string[], command: string): string {
  if (nodes.length !== 1) {
    throw new KvbridgeError("INVALID_ARGUMENT", `kvctl ${command} acts on exactly one node; ${nodes.length} were given (${nodes.join(", ")})`);
  }
  return nodes[0]!;
}
