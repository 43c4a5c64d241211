// The mutual-TLS flags every role and tool that talks to a node takes (--tls-cert, --tls-key,
// --tls-ca, --tls-server-name; KVBRIDGE_TLS_* in the environment), and what they turn into: the
// node's checked TLS material, or plaintext when none is given.
import type { Command } from "commander";
import type { Logger } from "pino";
import { loadTlsMaterial, type TlsMaterial } from "../../security/tls-material.js";
import { transportUnderTls, type TransportChoice } from "../../security/transport-policy.js";
import { TcpSenderTransport } from "../../transport/tcp/tcp-sender.js";
import type { SenderTransport, TransportKind } from "../../transport/transport.js";
import { envOption } from "../env-option.js";

export interface TlsFlags {
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsServerName?: string;
}

export interface PlaintextUcxFlags {
  allowPlaintextUcx?: boolean;
}

export const TLS_HELP = `
Mutual TLS: with --tls-cert, --tls-key and --tls-ca (all three), servers require a client
certificate signed by the CA and clients verify servers against it; without them, plaintext.`;

/** Adds --tls-cert/--tls-key/--tls-ca/--tls-server-name. */
export function addTlsOptions(cmd: Command): Command {
  return cmd
    .addOption(envOption("--tls-cert <pem>", "mutual TLS: this process's certificate chain (PEM); needs --tls-key and --tls-ca"))
    .addOption(envOption("--tls-key <pem>", "mutual TLS: the private key of --tls-cert (PEM, unencrypted)"))
    .addOption(envOption("--tls-ca <pem>", "mutual TLS: CA bundle (PEM) peers' certificates must chain to"))
    .addOption(envOption("--tls-server-name <name>", "mutual TLS: name servers' certificates must carry (default: the dialed host)"));
}

/** Adds --allow-plaintext-ucx (roles with a data plane). */
export function addPlaintextUcxOption(cmd: Command): Command {
  return cmd.addOption(
    envOption("--allow-plaintext-ucx", "with mutual TLS, still use UCX (its KV bytes are not encrypted); default: TLS over TCP only"),
  );
}

/** The checked TLS material of the flags; undefined for plaintext. Throws INVALID_ARGUMENT. */
export function tlsFromFlags(flags: TlsFlags): TlsMaterial | undefined {
  return loadTlsMaterial({ cert: flags.tlsCert, key: flags.tlsKey, ca: flags.tlsCa, serverName: flags.tlsServerName });
}

/** The --transport a TLS process actually uses (UCX only with --allow-plaintext-ucx); logs why. */
export function effectiveTransport<T extends TransportChoice>(requested: T, tls: TlsMaterial | undefined, flags: PlaintextUcxFlags, log: Logger): T | "tcp" {
  const d = transportUnderTls(requested, tls !== undefined, flags.allowPlaintextUcx === true);
  if (d.note) log.info({ requested }, d.note);
  else if (tls && flags.allowPlaintextUcx && requested !== "tcp") log.warn("--allow-plaintext-ucx: KV bytes sent over UCX are not encrypted; only the control plane and the TCP data plane are TLS");
  return d.transport as T | "tcp";
}

/**
 * Puts the TLS TCP data plane in place of the plaintext one that createSenderTransports made (it has
 * opened no connection yet, so closing it is immediate).
 */
export async function useTlsDataPlane(
  transports: Partial<Record<TransportKind, SenderTransport>>,
  tls: TlsMaterial | undefined,
  log: Logger,
  tcpConnections = 2,
): Promise<void> {
  if (!tls) return;
  await transports.tcp?.close();
  transports.tcp = new TcpSenderTransport({ connections: tcpConnections, logger: log, tls });
}
