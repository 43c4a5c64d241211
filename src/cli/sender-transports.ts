// The sender transports a process can use for a --transport choice: TCP always (unless UCX is
// forced), UCX when libucp loads here (a missing library is one log line, never a crash).
import type { Logger } from "pino";
import type { TransportPreference } from "../transfer/sender.js";
import { TcpSenderTransport } from "../transport/tcp/tcp-sender.js";
import type { SenderTransport, TransportKind } from "../transport/transport.js";
import { loadUcxSenderTransport } from "./ucx-loader.js";

export async function createSenderTransports(
  preference: TransportPreference,
  log: Logger,
  tcpConnections = 2,
): Promise<Partial<Record<TransportKind, SenderTransport>>> {
  const transports: Partial<Record<TransportKind, SenderTransport>> = {};
  if (preference !== "tcp") {
    const ucx = await loadUcxSenderTransport(log);
    if (ucx) transports.ucx = ucx;
    else if (preference === "ucx") throw new Error("--transport ucx was asked for but UCX is not available here (see the log line above)");
  }
  // TCP stays available under "ucx" too: it is the fallback when UCX fails for a peer.
  transports.tcp = new TcpSenderTransport({ connections: tcpConnections, logger: log });
  return transports;
}

export async function closeTransports(t: Partial<Record<TransportKind, SenderTransport>>): Promise<void> {
  await Promise.all(Object.values(t).map((x) => x.close()));
}
