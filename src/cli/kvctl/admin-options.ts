// The credential of kvctl's admin actions: the node's admin token, from --admin-token or the same
// KVBRIDGE_ADMIN_TOKEN variable the node reads (so one Secret serves both in a pod).
import { Command, Option } from "commander";

export interface AdminFlags {
  adminToken?: string;
}

export function addAdminOptions(cmd: Command): Command {
  return cmd.addOption(
    new Option("--admin-token <token>", "the node's admin token (nodes without one accept admin calls from loopback only)").env("KVBRIDGE_ADMIN_TOKEN"),
  );
}

export const ADMIN_HELP = `
Admin actions are guarded: the node must have been started with the same --admin-token
(KVBRIDGE_ADMIN_TOKEN), or, when it has none, kvctl must run on the node itself (loopback,
or through kubectl port-forward). On a node with mutual TLS, kvctl's client certificate
(--tls-cert/--tls-key/--tls-ca) is the credential: any certificate from the node's CA, or one
named in the node's --admin-identity; a matching token also admits. A refused call exits 4.`;
