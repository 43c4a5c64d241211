// Loads the UCX transports when libucp is present; a machine without it runs on TCP with one clear
// log line, never a crash.
import type { Logger } from "pino";
import { toKvbridgeError } from "../errors/kvbridge-error.js";
import type { PoolMemory } from "../memory/pool-memory.js";
import { ucxAvailability, UcxReceiverDataPlane, UcxSenderTransport } from "../transport/ucx/index.js";
import type { ReceiverDataPlane, SenderTransport } from "../transport/transport.js";
import type { UcxCommitGate } from "../transport/ucx/ucx-commit-receiver.js";

export async function loadUcxSenderTransport(log: Logger): Promise<SenderTransport | undefined> {
  const avail = ucxAvailability();
  if (!avail.available) {
    log.info({ reason: avail.reason }, "UCX unavailable: using the TCP data plane");
    return undefined;
  }
  try {
    return UcxSenderTransport.create();
  } catch (err) {
    log.warn({ reason: toKvbridgeError(err).message }, "UCX sender could not start: using the TCP data plane");
    return undefined;
  }
}

/**
 * The receiver's UCX data plane over `memory`, taking commits through `commitGate` when given; throws
 * (the caller logs and keeps TCP) when UCX cannot serve it.
 */
export async function loadUcxReceiver(memory: PoolMemory, log: Logger, commitGate?: UcxCommitGate): Promise<ReceiverDataPlane> {
  const avail = ucxAvailability();
  if (!avail.available) throw new Error(`UCX unavailable: ${avail.reason}`);
  // UCX applies UCX_TLS itself; the plane only needs to know the operator chose the transports.
  const plane = UcxReceiverDataPlane.create(memory, { environmentTls: process.env.UCX_TLS, ...(commitGate ? { commitGate } : {}) });
  log.info({ ucx: avail.version, pool: memory.kind, directness: plane.directness() }, "UCX data plane registered the pool");
  if (plane.warning) log.warn(plane.warning);
  return plane;
}
